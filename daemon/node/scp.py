"""The receiving edge: C-ECHO and C-STORE SCP.

The C-STORE handler is thin: pynetdicom writes the dataset as it arrives to a
temporary file in the spool's tmp/ (its chunked receive; pixel data is never
decoded), the handler reads the header up to the pixel data, fsyncs the file,
renames it into the spool, fsyncs the directory, has the row committed by the
`Recorder`, and only then answers 0x0000. The fsyncs and the rename run on a
worker thread while the recorder executes the row's statements; the row is
committed only after the directory's fsync returned. Statuses (PS3.4 B.2.3):

- 0x0000 stored, or already stored (the same SOP Instance UID again: idempotent)
- 0xA700 out of resources: free space below `store.min_free_bytes`, or a write failed
- 0xA701 out of resources: the database could not record the instance
- 0xC001 cannot understand: the dataset cannot be parsed
- 0xC002 cannot understand: Study, Series or SOP Instance UID missing or invalid
- 0xC003 cannot understand: the dataset's SOP Instance UID differs from the request's

Callers not in `node.allowed_calling_aes` are rejected at association. Each
association's threads wait for work instead of polling for it (daemon.node.reactor).

`listen` starts a listener; with `share_port` several processes listen on the port
(SO_REUSEPORT): `daemon.runtime.receiving` runs them.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import socket
import ssl
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pydicom.uid
from pynetdicom import AE, AllStoragePresentationContexts, _config, dimse_messages, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from daemon.config import NodeSettings, TlsSettings
from daemon.node.reactor import request_handler
from daemon.store.header import Header, MissingUid, UnreadableInstance, read_header
from daemon.store.recorder import InstanceRecord, NotDurable, Outcome, Recorder
from daemon.store.spool import Spool

log = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
OUT_OF_RESOURCES_DATABASE = 0xA701
CANNOT_PARSE = 0xC001
MISSING_UID = 0xC002
UID_MISMATCH = 0xC003


def make_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(tls.certificate), keyfile=str(tls.private_key))
    if tls.ca_certificates is not None:
        context.load_verify_locations(cafile=str(tls.ca_certificates))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def accepted_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pydicom knows. Where a context proposes several, the first
    here that the peer proposed wins: explicit VR little endian, then implicit, then
    the rest, so that a peer is never asked to compress (possibly lossily) its data."""
    first = [pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian]
    rest = [str(ts) for ts in pydicom.uid.AllTransferSyntaxes if ts not in first]
    return [str(ts) for ts in first] + rest


def make_ae(node: NodeSettings) -> AE:
    ae = AE(ae_title=node.ae_title)
    ae.maximum_pdu_size = node.max_pdu_length
    ae.maximum_associations = node.max_associations
    ae.network_timeout = node.network_timeout_s
    ae.dimse_timeout = node.network_timeout_s
    ae.acse_timeout = node.network_timeout_s
    ae.require_calling_aet = list(node.allowed_calling_aes)
    syntaxes = accepted_transfer_syntaxes()
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(str(cx.abstract_syntax), syntaxes)
    ae.add_supported_context(Verification)
    return ae


def receive_into(spool: Spool) -> None:
    """Have pynetdicom write received datasets into the spool's tmp/ (same file system,
    so a rename moves them into place) instead of decoding them in memory."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    setattr(  # noqa: B010 - pynetdicom has no setting for the directory
        dimse_messages,
        "NamedTemporaryFile",
        functools.partial(tempfile.NamedTemporaryFile, dir=spool.tmp),
    )


class StoreHandler:
    """What happens to one C-STORE request; independent of pynetdicom's event object."""

    def __init__(self, spool: Spool, recorder: Recorder, min_free_bytes: int, associations: int) -> None:
        self.spool = spool
        self.recorder = recorder
        self.min_free_bytes = min_free_bytes
        # one file being made durable per association at a time (see _keep)
        self._placing = ThreadPoolExecutor(max_workers=associations, thread_name_prefix="spool-fsync")

    def close(self) -> None:
        self._placing.shutdown(wait=True)

    def on_c_store(self, event: evt.Event) -> int:
        calling = event.assoc.requestor.ae_title
        affected = str(cast(C_STORE, event.request).AffectedSOPInstanceUID)
        return self.store(Path(event.dataset_path), affected, calling)

    def store(self, temp: Path, affected_sop_uid: str, calling_ae: str) -> int:
        if self.spool.free_bytes() < self.min_free_bytes:
            log.warning(
                "instance %s from AE %s refused (0xA700): free space below store.min_free_bytes",
                affected_sop_uid,
                calling_ae,
            )
            return OUT_OF_RESOURCES
        try:
            header = read_header(temp)
        except (UnreadableInstance, MissingUid) as exc:
            status = CANNOT_PARSE if isinstance(exc, UnreadableInstance) else MISSING_UID
            return _reject(affected_sop_uid, calling_ae, status, str(exc))
        if header.sop_instance_uid != affected_sop_uid:
            reason = f"dataset SOPInstanceUID {header.sop_instance_uid} differs from the request's"
            return _reject(affected_sop_uid, calling_ae, UID_MISMATCH, reason)
        try:
            return self._keep(temp, header, calling_ae)
        except OSError as exc:
            log.error(
                "instance %s from AE %s not stored (0xA700): %s",
                affected_sop_uid, calling_ae, exc,
            )
            return OUT_OF_RESOURCES

    def _keep(self, temp: Path, header: Header, calling_ae: str) -> int:
        uid = header.sop_instance_uid
        relative = self.spool.relative_path(
            header.study_instance_uid, header.series_instance_uid, uid
        )
        # the duplicate check folded into the insert; the database is asked first only
        # when the file is already there (a duplicate, or an unrecorded leftover)
        if os.path.exists(self.spool.absolute(relative)) and self.recorder.exists(uid):
            log.info("instance %s from AE %s already stored", uid, calling_ae)
            return SUCCESS
        # the file is fsync'd, renamed and its directory fsync'd on another thread while
        # the recorder runs the row's statements; the row is committed only once the
        # file is durable (`durable`), and the instance answered after that commit
        record = InstanceRecord.from_header(header, relative, os.path.getsize(temp), calling_ae)
        placing = self._placing.submit(self.spool.commit_file, temp, relative)

        def durable() -> None:
            try:
                placing.result()
            except OSError as exc:
                raise NotDurable(str(exc)) from exc

        try:
            outcome = self.recorder.record(record, durable=durable)
        except Exception as exc:  # noqa: BLE001 - the file or the database failed
            failed = placing.exception()  # waits: nothing is placed after the answer
            if isinstance(failed, OSError):
                raise failed from exc  # store() answers 0xA700
            log.error("instance %s not recorded (0xA701): %s", uid, exc)
            return OUT_OF_RESOURCES_DATABASE
        if outcome is Outcome.DUPLICATE:
            log.info("instance %s from AE %s already stored", uid, calling_ae)
            self._drop_unrecorded_copy(uid, relative)
        return SUCCESS

    def _drop_unrecorded_copy(self, uid: str, relative: str) -> None:
        """A duplicate whose first copy is recorded under another path (another
        study or series): the file just placed is not the recorded one."""
        try:
            recorded = self.recorder.recorded_path(uid)
        except Exception as exc:  # noqa: BLE001 - left for the next start's reconciliation
            log.warning("instance %s: could not check the duplicate's path: %s", uid, exc)
            return
        if recorded is not None and recorded != relative:
            self.spool.remove(relative)


class SupportedContexts(list[PresentationContext]):
    """The listener's supported presentation contexts, cheap to copy per association.

    pynetdicom deep-copies the server's contexts for every association it accepts,
    before negotiating. With every storage SOP class times every transfer syntax
    (171 contexts, some 6,600 UIDs, each re-validated by pydicom when copied) that
    is ~40 ms of CPU per association, under the GIL: 10 associations arriving at
    once on a busy 2-core machine waited seconds for their A-ASSOCIATE-AC, and
    under heavy load longer than the requestor's ACSE timeout (the node logged
    "accepted", the peer had given up). UIDs are immutable, so a copy of each
    context with its own transfer syntax list is as independent as a deep copy.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        return [_copy_context(cx) for cx in self]


def _copy_context(cx: PresentationContext) -> PresentationContext:
    new = copy.copy(cx)
    new._transfer_syntax = list(cx._transfer_syntax)  # the one mutable attribute
    return new


class Listener(ThreadedAssociationServer):
    """pynetdicom's threaded server with a listen backlog of SOMAXCONN (the kernel
    caps it at net.core.somaxconn) instead of socketserver's 5. With 5, a sixth
    connection arriving before the acceptor thread runs overflows the accept queue:
    the kernel drops the peer's handshake ACK and completes the connection only on
    a SYN-ACK retransmission, 1, 3, 7, 15, 31 s later. The peer meanwhile has sent
    its A-ASSOCIATE-RQ and runs its ACSE timeout (30 s for pynetdicom): with 10
    associations at once on a starved machine the node accepted associations whose
    requestor had given up."""

    request_queue_size = socket.SOMAXCONN


class ReusePortServer(Listener):
    """A listener that shares its port with the node's other receiving processes."""

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def listen(node: NodeSettings, handler: StoreHandler, share_port: bool) -> ThreadedAssociationServer:
    """Start accepting associations on a thread of this process; return the server."""
    receive_into(handler.spool)
    ae = make_ae(node)
    ssl_context = make_ssl_context(node.tls) if node.tls is not None else None
    handlers: list[Any] = [
        (evt.EVT_C_STORE, handler.on_c_store),
        (evt.EVT_C_ECHO, _on_echo),
        (evt.EVT_ACCEPTED, _on_accepted),
        (evt.EVT_REJECTED, _on_rejected),
        (evt.EVT_ABORTED, _on_aborted),
        (evt.EVT_RELEASED, _on_released),
    ]
    server_class = ReusePortServer if share_port else Listener
    server = ae.make_server(
        (node.host, node.port), ssl_context=ssl_context, evt_handlers=handlers,
        server_class=server_class, request_handler=request_handler(),
    )
    server.contexts = SupportedContexts(server.contexts)
    # accepted sockets inherit it: a response is never held back by Nagle's algorithm
    assert server.socket is not None
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ae._servers.append(server)  # as AE.start_server does: server.shutdown() removes it
    threading.Thread(target=server.serve_forever, name="dicom-acceptor", daemon=True).start()
    return server


def _reject(sop_uid: str, calling_ae: str, status: int, reason: str) -> int:
    log.warning("instance %s from AE %s rejected (0x%04X): %s", sop_uid, calling_ae, status, reason)
    return status


def _on_echo(event: evt.Event) -> int:
    return SUCCESS


def _peer(event: evt.Event) -> str:
    req = event.assoc.requestor
    return f"AE {req.ae_title} ({req.address}:{req.port})"


def _on_accepted(event: evt.Event) -> None:
    log.info("association from %s accepted", _peer(event))


def _on_rejected(event: evt.Event) -> None:
    log.warning(
        "association from %s rejected (calling AE not in node.allowed_calling_aes, "
        "or nothing acceptable proposed)",
        _peer(event),
    )


def _on_aborted(event: evt.Event) -> None:
    log.warning("association from %s aborted; instances acknowledged so far are kept", _peer(event))


def _on_released(event: evt.Event) -> None:
    log.info("association from %s released", _peer(event))


def ensure_port_free(host: str, port: int) -> None:
    """Raise OSError if something listens on `port` already. Sockets sharing a port
    with SO_REUSEPORT would otherwise silently share it with another node."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        probe.bind((host, port))
