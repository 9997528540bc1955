"""The sending edge: C-STORE of outbox rows to their destinations.

`Sender.send_due` takes the due PENDING rows, groups them by destination, and
sends each group (up to `outbox.batch_size` instances) on one association. A row
is SENT only on a success or warning status; any other outcome (association
refused, peer away, failure status, no response) is a failed attempt: the row
waits an exponential, jittered, capped backoff, and becomes a dead letter once the
next attempt would fall past `outbox.max_age_seconds`. Every attempt and its
status is recorded. `daemon.runtime.sender` runs it on a thread of the node.
"""

from __future__ import annotations

import logging
import ssl
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.status import code_to_category
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import DestinationSettings, Settings
from daemon.node.requestor import keep_responses
from daemon.store import outbox as ob

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Peer:
    name: str
    ae_title: str
    host: str
    port: int
    settings: DestinationSettings | None = None


def resolve_destination(name: str, settings: Settings) -> Peer | None:
    """A named destination from the settings, or an inline one written `AE@host:port`."""
    dest = settings.destinations.get(name)
    if dest is not None:
        return Peer(name, dest.ae_title, dest.host, dest.port, dest)
    ae, sep, address = name.partition("@")
    host, sep2, port = address.rpartition(":")
    if sep and sep2 and ae and host and port.isdigit():
        return Peer(name, ae, host, int(port))
    return None


def is_sent(status: int) -> bool:
    return code_to_category(status) in ("Success", "Warning")


def _tls_args(peer: Peer) -> tuple[ssl.SSLContext, str] | None:
    tls = peer.settings.tls if peer.settings is not None else None
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_certificates) if tls.ca_certificates else None)
    if tls.certificate is not None:
        context.load_cert_chain(str(tls.certificate), str(tls.private_key) if tls.private_key else None)
    return context, peer.host


class NotAssociated(Exception):
    """No association with a peer: unreachable, or it refused or aborted."""


def requestor_ae(settings: Settings) -> AE:
    """Nadir as the requestor: its AE title and network timeouts (contexts to be added)."""
    ae = AE(ae_title=settings.node.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.node.network_timeout_s
    return ae


def associate(ae: AE, peer: Peer, settings: Settings, **extra: Any) -> Any:
    """An established association with `peer` (TLS where its settings ask for it),
    guarded against pynetdicom losing a response (daemon.node.requestor)."""
    kwargs: dict[str, Any] = {"ae_title": peer.ae_title, "max_pdu": settings.node.max_pdu_length, **extra}
    tls = _tls_args(peer)
    if tls is not None:
        kwargs["tls_args"] = tls
    where = f"{peer.ae_title}@{peer.host}:{peer.port}"
    try:
        assoc = ae.associate(peer.host, peer.port, **kwargs)
    except (OSError, ssl.SSLError) as exc:
        raise NotAssociated(f"cannot connect to {where}: {exc}") from exc
    if not assoc.is_established:
        why = "association rejected" if assoc.is_rejected else "association aborted or peer unreachable"
        raise NotAssociated(f"{why} ({where})")
    keep_responses(assoc)
    return assoc


@dataclass(frozen=True)
class _Item:
    row_id: int
    sop_instance_uid: str
    path: Path


class Sender:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        self._root = ob.outputs_root(settings.store.data_dir)

    def send_due(self) -> int:
        """One pass over the due rows; returns how many were sent."""
        cfg = self._settings.outbox
        with self._sessions() as session:
            rows = ob.due(session, self._clock(), cfg.batch_size * 4)
            groups: dict[str, list[_Item]] = defaultdict(list)
            for row in rows:
                groups[row.destination].append(_Item(row.id, row.sop_instance_uid, self._root / row.path))
        sent = 0
        for name, items in groups.items():
            for start in range(0, len(items), cfg.batch_size):
                count, reached = self._send_batch(name, items[start : start + cfg.batch_size])
                sent += count
                if not reached:  # the peer is away: the rest of its rows wait their backoff too
                    rest = items[start + cfg.batch_size :]
                    if rest:
                        self._fail(rest, None, "not attempted: the destination was unreachable in this pass", name)
                    break
        return sent

    def _fail(self, items: Sequence[_Item], status: int | None, error: str, peer: str) -> None:
        with self._sessions() as session:
            for item in items:
                state = ob.record_failure(session, item.row_id, self._clock(), status, error, self._settings.outbox)
                if state is ob.OutboxState.DEAD:
                    log.error("outbox: %s to %s is a dead letter: %s", item.sop_instance_uid, peer, error)
        log.warning("outbox: %d instance(s) to %s not sent: %s", len(items), peer, error)

    def _load(self, items: Sequence[_Item]) -> tuple[list[tuple[_Item, Dataset]], list[_Item]]:
        loaded: list[tuple[_Item, Dataset]] = []
        missing: list[_Item] = []
        for item in items:
            try:
                loaded.append((item, pydicom.dcmread(item.path)))
            except (OSError, pydicom.errors.InvalidDicomError) as exc:
                log.error("outbox: cannot read %s: %s", item.path, exc)
                missing.append(item)
        return loaded, missing

    def _send_batch(self, name: str, items: Sequence[_Item]) -> tuple[int, bool]:
        """Send on one association; returns (how many were sent, whether the peer was reached)."""
        peer = resolve_destination(name, self._settings)
        if peer is None:
            self._fail(items, None, f"destination {name!r} is not defined in the settings", name)
            return 0, False
        loaded, missing = self._load(items)
        if missing:
            self._fail(missing, None, "output file missing or unreadable", name)
        if not loaded:
            return 0, True
        ae = requestor_ae(self._settings)
        contexts = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in loaded}
        for sop_class, syntax in sorted(contexts)[:MAX_CONTEXTS]:
            ae.add_requested_context(sop_class, [syntax])
        try:
            assoc = associate(ae, peer, self._settings)
        except NotAssociated as exc:
            self._fail([i for i, _ in loaded], None, str(exc), name)
            return 0, False
        try:
            return self._store_all(assoc, peer, loaded), True
        finally:
            if assoc.is_established:
                assoc.release()

    def _store_all(self, assoc: Any, peer: Peer, loaded: Sequence[tuple[_Item, Dataset]]) -> int:
        sent = 0
        for n, (item, ds) in enumerate(loaded):
            try:
                status_ds = assoc.send_c_store(ds)
            except (ValueError, RuntimeError) as exc:  # e.g. no accepted presentation context
                self._fail([item], None, f"not sent: {exc}", peer.name)
                continue
            status = int(status_ds.Status) if status_ds is not None and "Status" in status_ds else None
            if status is None:
                self._fail([i for i, _ in loaded[n:]], None, "no response from the peer (connection lost)", peer.name)
                return sent
            if is_sent(status):
                with self._sessions() as session:
                    ob.record_success(session, item.row_id, self._clock(), status)
                sent += 1
                log.info("outbox: %s stored at %s (0x%04X)", item.sop_instance_uid, peer.name, status)
            else:
                self._fail([item], status, f"C-STORE failed with status 0x{status:04X}", peer.name)
        return sent
