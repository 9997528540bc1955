"""The receiving edge: C-ECHO and C-STORE SCP.

The C-STORE handler is thin: pynetdicom writes the dataset as it arrives to a
temporary file in the spool's tmp/ (its chunked receive; pixel data is never
decoded), the handler reads the header up to the pixel data, fsyncs the file,
renames it into the spool, fsyncs the directory, has the row committed by the
`Recorder`, and only then answers 0x0000. The fsyncs and the rename run on a
worker thread while the recorder executes the row's statements; the row is
committed only after the directory's fsync returned. Statuses (PS3.4 B.2.3):

- 0x0000 stored, or already stored (the same SOP Instance UID again: idempotent)
- 0xA700 out of resources: free space below `store.min_free_bytes` (checked before and
  while the dataset is written, daemon.store.incoming), a write failed, or a deflated
  dataset inflating past `node.max_inflated_bytes` (daemon.store.deflated)
- 0xA701 out of resources: the database could not record the instance
- 0xC001 cannot understand: the dataset cannot be parsed
- 0xC002 cannot understand: Study, Series, SOP Instance or SOP Class UID missing or not
  a UID (PS3.5 9.1: digits and dots, no leading zero in a component, <= 64)
- 0xC003 cannot understand: the dataset's SOP Instance UID differs from the request's
- 0xC004 cannot understand: the file ends inside an element, or its native pixel data is
  not Rows x Columns x frames x samples x bits long
- 0xA900 the dataset's SOP Class UID is not the request's; 0x0122 a SOP class not stored
- 0x0111 another dataset under a SOP Instance UID already stored (the first copy stays;
  counted per study in `nadir study ls`). Why these: daemon.node.acceptance

Callers not in `node.allowed_calling_aes`, and callers asking for another AE title
than the node's, are rejected at association (daemon.node.ae_titles: leading spaces
are significant). Each
association's threads wait for work instead of polling for it (daemon.node.reactor).

Connections wait for their A-ASSOCIATE-RQ in the listener's gate (daemon.node.gate:
TLS handshake, ARTIM, half-open connections bounded per address and in total) before
pynetdicom serves them, each socket with a read timeout of `node.network_timeout_s`.

`listen` starts a listener; with `share_port` several processes listen on the port
(SO_REUSEPORT): `daemon.runtime.receiving` runs them.
"""

from __future__ import annotations

import copy
import filecmp
import logging
import os
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, cast

import pydicom.uid
from pynetdicom import AE, AllStoragePresentationContexts, _config, dimse_messages, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from daemon.config import NodeSettings, TlsSettings
from daemon.logs import escape
from daemon.node import acceptance, ae_titles, pynetdicom_patches
from daemon.node.gate import Gate, GateLimits
from daemon.node.reactor import request_handler
from daemon.store.deflated import InflatedTooLarge
from daemon.store.header import (
    MAX_INFLATED_BYTES,
    Header,
    InvalidInstance,
    read_header,
)
from daemon.store.incoming import IncomingFiles
from daemon.store.recorder import InstanceRecord, NotDurable, Outcome, Recorder
from daemon.store.spool import Spool

log = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
OUT_OF_RESOURCES_DATABASE = 0xA701
CANNOT_PARSE = acceptance.CANNOT_PARSE
MISSING_UID = acceptance.MISSING_UID
UID_MISMATCH = acceptance.UID_MISMATCH


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
    ae.require_called_aet = True  # A-ASSOCIATE-RJ 0x07 to a caller that asks for another AE
    syntaxes = accepted_transfer_syntaxes()
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(str(cx.abstract_syntax), syntaxes)
    ae.add_supported_context(Verification)
    return ae


def receive_into(incoming: IncomingFiles) -> None:
    """Have pynetdicom write received datasets into the spool's tmp/ (same file system,
    so a rename moves them into place) instead of decoding them in memory, the free
    space watched as they are written (daemon.store.incoming)."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    setattr(  # noqa: B010 - pynetdicom has no setting for the directory
        dimse_messages, "NamedTemporaryFile", incoming.open,
    )


class StoreHandler:
    """What happens to one C-STORE request; independent of pynetdicom's event object."""

    def __init__(
        self, spool: Spool, recorder: Recorder, min_free_bytes: int, associations: int,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
    ) -> None:
        self.spool = spool
        self.recorder = recorder
        self.min_free_bytes = min_free_bytes
        self.max_inflated_bytes = max_inflated_bytes
        self.incoming = IncomingFiles(spool, min_free_bytes)
        # one file being made durable per association at a time (see _keep)
        self._placing = ThreadPoolExecutor(max_workers=associations, thread_name_prefix="spool-fsync")

    def close(self) -> None:
        self._placing.shutdown(wait=True)

    def on_c_store(self, event: evt.Event) -> int:
        calling = event.assoc.requestor.ae_title
        request = cast(C_STORE, event.request)
        affected = str(request.AffectedSOPInstanceUID)
        return self.store(Path(event.dataset_path), affected, calling, str(request.AffectedSOPClassUID or ""))

    def store(self, temp: Path, affected_sop_uid: str, calling_ae: str, affected_sop_class: str = "") -> int:
        """The status answered for the instance in `temp`; every refusal counted in the
        database by calling AE and status (`/metrics`, daemon.store.telemetry)."""
        status = self._answer(temp, affected_sop_uid, calling_ae, affected_sop_class)
        if status != SUCCESS:
            self.recorder.count_rejection(calling_ae, status)
        return status

    def _answer(self, temp: Path, affected_sop_uid: str, calling_ae: str, affected_sop_class: str) -> int:
        dropped = self.incoming.refusal(str(temp))
        if dropped is not None:
            log.warning(
                "instance %s from AE %s refused (0xA700) while it was received: %s",
                escape(affected_sop_uid), calling_ae, dropped,
            )
            return OUT_OF_RESOURCES
        if self.spool.free_bytes() < self.min_free_bytes:
            log.warning(
                "instance %s from AE %s refused (0xA700): free space below store.min_free_bytes",
                escape(affected_sop_uid),
                calling_ae,
            )
            return OUT_OF_RESOURCES
        try:
            header = read_header(temp, self.max_inflated_bytes)
        except InflatedTooLarge as exc:
            log.warning(
                "instance %s from AE %s refused (0xA700): %s (node.max_inflated_bytes)",
                escape(affected_sop_uid), calling_ae, exc,
            )
            return OUT_OF_RESOURCES
        except InvalidInstance as exc:  # statuses: daemon.node.acceptance
            return _reject(affected_sop_uid, calling_ae, acceptance.refusal_status(exc), str(exc))
        refused = acceptance.identity_refusal(header, affected_sop_uid, affected_sop_class)
        if refused is not None:
            return _reject(affected_sop_uid, calling_ae, *refused)
        try:
            return self._keep(temp, header, calling_ae)
        except OSError as exc:
            log.error(
                "instance %s from AE %s not stored (0xA700): %s",
                escape(affected_sop_uid), calling_ae, exc,
            )
            return OUT_OF_RESOURCES

    def _keep(self, temp: Path, header: Header, calling_ae: str) -> int:
        uid = header.sop_instance_uid
        canonical = self.spool.relative_path(header.study_instance_uid, header.series_instance_uid, uid)
        # the duplicate check folded into the insert; the database is asked first only
        # when the file is already there (a duplicate, or an unrecorded leftover)
        if os.path.exists(self.spool.absolute(canonical)):
            recorded = self.recorder.recorded_path(uid)
            if recorded is not None:
                return self._duplicate(temp, uid, recorded, calling_ae)
        # a file is only ever placed where nothing is (a second copy beside the first):
        # a file in the spool is always the one its row describes
        with self.spool.claim(canonical) as relative:
            return self._place_and_record(temp, header, relative, calling_ae)

    def _place_and_record(self, temp: Path, header: Header, relative: str, calling_ae: str) -> int:
        uid = header.sop_instance_uid
        # the file is fsync'd, linked into place and its directory fsync'd on another
        # thread while the recorder runs the row's statements; the row is committed only
        # once the file is durable (`durable`), and the instance answered after that commit
        record = InstanceRecord.from_header(header, relative, os.path.getsize(temp), calling_ae)
        placing = self._placing.submit(self.spool.commit_new, temp, relative)

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
            self.spool.remove(relative)  # never a spool file without its row
            log.error("instance %s not recorded (0xA701): %s", uid, exc)
            return OUT_OF_RESOURCES_DATABASE
        if outcome is Outcome.DUPLICATE:  # recorded meanwhile by another association
            try:
                return self._duplicate(self.spool.absolute(relative), uid, self.recorder.recorded_path(uid),
                                       calling_ae)
            finally:
                self.spool.remove(relative)
        return SUCCESS

    def _duplicate(self, copy: Path, uid: str, recorded: str | None, calling_ae: str) -> int:
        """A copy of an instance already stored: 0x0000 when it is the same dataset, else
        refused (the first copy stays), counted and logged for the admin."""
        if recorded is None:  # removed between the insert and this check: let the sender retry
            log.warning("instance %s from AE %s: its first copy vanished; not stored (0xA701)", uid, calling_ae)
            return OUT_OF_RESOURCES_DATABASE
        if filecmp.cmp(copy, self.spool.absolute(recorded), shallow=False):
            log.info("instance %s from AE %s already stored", uid, calling_ae)
            return SUCCESS
        self.recorder.count_conflicting_duplicate(uid)
        return _reject(uid, calling_ae, acceptance.DUPLICATE_CONFLICT,
                       "another dataset with this SOP Instance UID is already stored; the first copy is kept")


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
    gate: Gate | None = None
    _prefixes: dict[socket.socket, bytes]

    def open_gate(self, limits: GateLimits) -> None:
        """From now on, accepted connections wait in a `Gate` for their A-ASSOCIATE-RQ
        (and TLS handshake) before a thread serves them."""
        self._prefixes = {}
        self._prefix_lock = threading.Lock()
        self.gate = Gate(limits, self.ssl_context, self._hand_over)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        # pynetdicom wraps the socket in TLS here, on the acceptor thread, where a
        # handshake that never comes stops every caller; the gate does it instead
        if self.gate is None:
            return super().get_request()
        assert self.socket is not None
        client, address = self.socket.accept()
        return client, address

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.gate is None:
            super().process_request(request, client_address)
        else:
            self.gate.admit(request, client_address)

    def _hand_over(self, sock: socket.socket, address: Any, prefix: bytes) -> None:
        with self._prefix_lock:
            self._prefixes[sock] = prefix
        ThreadingMixIn.process_request(self, sock, address)

    def take_prefix(self, sock: socket.socket) -> bytes:
        """The bytes the gate read from `sock` already (daemon.node.reactor replays them)."""
        with self._prefix_lock:
            return self._prefixes.pop(sock, b"")

    def server_close(self) -> None:
        if self.gate is not None:
            self.gate.close()
        super().server_close()


class ReusePortServer(Listener):
    """A listener that shares its port with the node's other receiving processes."""

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def listen(node: NodeSettings, handler: StoreHandler, share_port: bool) -> ThreadedAssociationServer:
    """Start accepting associations on a thread of this process; return the server."""
    pynetdicom_patches.check()  # the patches below are written for the pinned pynetdicom
    receive_into(handler.incoming)
    ae = make_ae(node)
    ssl_context = make_ssl_context(node.tls) if node.tls is not None else None
    handlers: list[Any] = [
        (evt.EVT_C_STORE, handler.on_c_store),
        (evt.EVT_C_ECHO, _on_echo),
        (evt.EVT_ACCEPTED, _on_accepted),
        (evt.EVT_REJECTED, _on_rejected),
        (evt.EVT_ABORTED, _on_aborted),
        (evt.EVT_RELEASED, _on_released),
        *ae_titles.handlers(),  # leading spaces are significant (daemon.node.ae_titles)
    ]
    server_class = ReusePortServer if share_port else Listener
    server = ae.make_server(
        (node.host, node.port), ssl_context=ssl_context, evt_handlers=handlers,
        server_class=server_class, request_handler=request_handler(),
    )
    server.contexts = SupportedContexts(server.contexts)
    cast(Listener, server).open_gate(gate_limits(node))
    # accepted sockets inherit it: a response is never held back by Nagle's algorithm
    assert server.socket is not None
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ae._servers.append(server)  # as AE.start_server does: server.shutdown() removes it
    threading.Thread(target=server.serve_forever, name="dicom-acceptor", daemon=True).start()
    return server


def gate_limits(node: NodeSettings) -> GateLimits:
    return GateLimits(
        artim_timeout_s=node.artim_timeout_s,
        max_half_open=node.max_half_open,
        max_half_open_per_address=node.max_half_open_per_address,
        max_associate_request_bytes=node.max_associate_request_bytes,
        read_timeout_s=node.network_timeout_s,
    )


def _reject(sop_uid: str, calling_ae: str, status: int, reason: str) -> int:
    log.warning("instance %s from AE %s rejected (0x%04X): %s", escape(sop_uid), calling_ae, status, escape(reason))
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
        "called AE not this node's, or nothing acceptable proposed)",
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
