"""Query/retrieve as an SCU: C-FIND (Study Root) and C-GET of a PACS, for priors.

Used by pipelines that need a patient's earlier results when the database has
none: find the patient's earlier studies, the series holding our reports, and get
those instances back over the same association (C-GET: no need for the PACS to
know our AE as a move destination, and nothing lands in the receiving spool).
Every call opens and releases its own association; failures raise `QueryError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from daemon.config import Settings
from daemon.node.scu import NotAssociated, Peer, associate, requestor_ae

log = logging.getLogger(__name__)

PENDING = (0xFF00, 0xFF01)
SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


class QueryError(RuntimeError):
    """The PACS could not be queried or did not return what was asked."""


@dataclass(frozen=True)
class Match:
    """One C-FIND response: the identifier's keywords as text."""

    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.values.get(key, "")


def _associate(ae: AE, peer: Peer, settings: Settings, **extra: Any) -> Any:
    try:
        return associate(ae, peer, settings, **extra)
    except NotAssociated as exc:
        raise QueryError(str(exc)) from exc


def find(peer: Peer, settings: Settings, level: str, keys: dict[str, str], returned: Iterable[str]) -> list[Match]:
    """C-FIND (Study Root) at `level`; `keys` are the matching keys, `returned` the keywords wanted."""
    query = Dataset()
    query.QueryRetrieveLevel = level
    for kw in returned:
        setattr(query, kw, "")
    for kw, value in keys.items():
        setattr(query, kw, value)
    ae = requestor_ae(settings)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind, SYNTAXES)
    assoc = _associate(ae, peer, settings)
    out: list[Match] = []
    try:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            code = int(status.Status) if status is not None and "Status" in status else None
            if code is None:
                raise QueryError(f"C-FIND to {peer.ae_title}: no response (connection lost)")
            if code in PENDING and identifier is not None:
                out.append(Match({e.keyword: str(e.value) for e in identifier if e.keyword and e.VR != "SQ"}))
            elif code not in PENDING and code != 0:
                raise QueryError(f"C-FIND to {peer.ae_title} failed with status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    log.debug("C-FIND %s at %s: %d match(es)", level, peer.ae_title, len(out))
    return out


def get(peer: Peer, settings: Settings, keys: dict[str, str], level: str,
        sop_classes: Sequence[str]) -> list[Dataset]:
    """C-GET the instances matching `keys` at `level`; only the SOP classes listed can come back."""
    query = Dataset()
    query.QueryRetrieveLevel = level
    for kw, value in keys.items():
        setattr(query, kw, value)
    received: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    ae = requestor_ae(settings)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet, SYNTAXES)
    roles = []
    for uid in sop_classes[:100]:
        ae.add_requested_context(uid, SYNTAXES)
        roles.append(build_role(uid, scp_role=True))
    assoc = _associate(ae, peer, settings, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        for status, _identifier in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
            code = int(status.Status) if status is not None and "Status" in status else None
            if code is None:
                raise QueryError(f"C-GET from {peer.ae_title}: no response (connection lost)")
            if code not in PENDING and code not in (0x0000, 0xB000):
                raise QueryError(f"C-GET from {peer.ae_title} failed with status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    log.debug("C-GET at %s: %d instance(s)", peer.ae_title, len(received))
    return received
