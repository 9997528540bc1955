"""The sending edge: C-STORE of outbox rows to their destinations.

`Sender.send_due` takes the due PENDING rows, groups them by destination, and
sends each group (up to `outbox.batch_size` instances) on one association. A row
is SENT only on a success or warning status. A transient failure (association
refused, peer away, out of resources, no response) is a failed attempt: the row
waits an exponential, jittered, capped backoff, and becomes a dead letter once the
next attempt would fall past `outbox.max_age_seconds`. A permanent one (a refusal
that sending again cannot change, daemon.node.store_status; an output file that is
not an instance) makes the row a dead letter at once, with the PACS's status. A
failure is one row's: the rows behind it are sent. Every attempt and its status is
recorded. `daemon.runtime.sender` runs it on a thread of the node.
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
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import DestinationSettings, Settings
from daemon.logs import escape
from daemon.node.requestor import keep_responses
from daemon.node.store_status import describe, is_sent, is_transient
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


# What pynetdicom logs at ERROR, two or three lines each time, when an association it
# requests is not made (only a requestor writes these). `associate` raises NotAssociated
# with the same facts instead, and its caller logs one line: these become DEBUG.
REQUESTOR_FAILURE_LINES = (
    "Association request failed: unable to connect to remote",
    "TCP Initialisation Error:",
    "Association Rejected",
    "Result: ",
    "Reason: ",
    "Association Aborted",
    "ACSE timeout reached while waiting for response to association request",
)
_QUIETED = ("pynetdicom.transport", "pynetdicom.acse")


class RequestorFailuresToDebug(logging.Filter):
    """On a pynetdicom logger: its requestor-failure lines as DEBUG records, kept only
    when that logger logs DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.ERROR or not record.getMessage().startswith(REQUESTOR_FAILURE_LINES):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_requestor_failures() -> None:
    """Install `RequestorFailuresToDebug` on pynetdicom's loggers (once)."""
    for name in _QUIETED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestorFailuresToDebug) for f in logger.filters):
            logger.addFilter(RequestorFailuresToDebug())


def requestor_ae(settings: Settings) -> AE:
    """Nadir as the requestor: its AE title and network timeouts (contexts to be added)."""
    quiet_requestor_failures()
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


class Unsendable(Exception):
    """This row's output file cannot be sent as it is (unreadable, or not an instance):
    sending it again cannot succeed, so the row is a dead letter at once."""


def load_output(path: Path) -> Dataset:
    """The output file as a dataset with what a C-STORE needs (SOP class and instance,
    transfer syntax). OSError (missing, or the disk) may pass; Unsendable will not."""
    try:
        ds = pydicom.dcmread(path)
        needed = (ds.SOPClassUID, ds.SOPInstanceUID, ds.file_meta.TransferSyntaxUID)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever pydicom raises on a damaged file
        raise Unsendable(f"{type(exc).__name__}: {exc}") from exc
    bad = [str(uid) for uid in needed if not pydicom.uid.UID(str(uid)).is_valid]
    if bad:
        raise Unsendable(f"invalid UID(s) {', '.join(escape(b) for b in bad)}")
    return ds


class Sender:
    """Sends due outbox rows. A failure is always one row's (or one association's):
    whatever goes wrong with one output is recorded on its row, and the rows behind it
    are sent."""

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
                batch = items[start : start + cfg.batch_size]
                try:
                    count, reached = self._send_batch(name, batch)
                except Exception as exc:  # noqa: BLE001 - never a destination blocked by one pass's fault
                    log.exception("outbox: sending to %s failed", name)
                    self._fail_unsettled(batch, f"{type(exc).__name__}: {exc}", name)
                    count, reached = 0, True
                sent += count
                if not reached:  # the peer is away: the rest of its rows wait their backoff too
                    rest = items[start + cfg.batch_size :]
                    if rest:  # the pass's one warning was logged for the batch tried
                        self._fail(rest, None, "not attempted: the destination was unreachable in this pass", name,
                                   warn=False)
                    break
        return sent

    def _fail(self, items: Sequence[_Item], status: int | None, error: str, peer: str, warn: bool = True,
              permanent: bool = False) -> None:
        """Record a failed attempt of each item; one WARNING for them all (ERROR for a dead letter)."""
        with self._sessions() as session:
            for item in items:
                state = ob.record_failure(session, item.row_id, self._clock(), status, error, self._settings.outbox,
                                          permanent=permanent)
                if state is ob.OutboxState.DEAD:
                    log.error("outbox: %s to %s is a dead letter: %s", item.sop_instance_uid, peer, error)
        if not permanent:
            (log.warning if warn else log.debug)("outbox: %d instance(s) to %s not sent: %s", len(items), peer, error)

    def _fail_unsettled(self, items: Sequence[_Item], error: str, peer: str) -> None:
        """After an unexpected fault: a failed attempt of those of `items` still PENDING
        and due (a row recorded before the fault keeps its outcome)."""
        with self._sessions() as session:
            due_ids = ob.due_among(session, [i.row_id for i in items], self._clock())
        self._fail([i for i in items if i.row_id in due_ids], None, error, peer)

    def _load(self, items: Sequence[_Item], peer: str) -> list[tuple[_Item, Dataset]]:
        """The items whose file reads as an instance; each other one fails alone."""
        loaded: list[tuple[_Item, Dataset]] = []
        for item in items:
            try:
                loaded.append((item, load_output(item.path)))
            except OSError as exc:
                self._fail([item], None, f"output file missing or unreadable: {exc}", peer)
            except Unsendable as exc:
                self._fail([item], None, f"output file is not a sendable instance: {exc}", peer, permanent=True)
        return loaded

    def _send_batch(self, name: str, items: Sequence[_Item]) -> tuple[int, bool]:
        """Send on one association; returns (how many were sent, whether the peer was reached)."""
        peer = resolve_destination(name, self._settings)
        if peer is None:
            self._fail(items, None, f"destination {name!r} is not defined in the settings", name)
            return 0, False
        loaded = self._load(items, name)
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
            except Exception as exc:  # noqa: BLE001 - this instance's failure, e.g. no accepted context, not encodable
                self._fail([item], None, f"not sent: {type(exc).__name__}: {exc}", peer.name)
                if assoc.is_established:
                    continue
                self._fail([i for i, _ in loaded[n + 1 :]], None, "not attempted: the association ended", peer.name)
                return sent
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
                permanent = not is_transient(status)
                self._fail([item], status, f"C-STORE refused by {peer.ae_title} with status {describe(status)}",
                           peer.name, permanent=permanent)
        return sent
