"""The console's C-ECHO button: a Verification association with a destination, as the
node's own AE (`node.scu`'s requestor: its AE title, timeouts and TLS)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from daemon.config import Settings
from daemon.node.scu import NotAssociated, associate, requestor_ae, resolve_destination


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    status: str | None  # the DIMSE status as 0xNNNN, None without a response
    message: str
    seconds: float


def echo(settings: Settings, name: str) -> EchoResult:
    """C-ECHO the destination `name`; never raises for a peer that is down."""
    began = time.monotonic()
    peer = resolve_destination(name, settings)
    if peer is None:
        return EchoResult(False, None, f"no destination {name!r}", 0.0)
    ae = requestor_ae(settings)
    ae.add_requested_context(Verification)
    try:
        assoc = associate(ae, peer, settings)
    except NotAssociated as exc:
        return EchoResult(False, None, str(exc), time.monotonic() - began)
    try:
        answer = assoc.send_c_echo()
    finally:
        assoc.release()
    took = time.monotonic() - began
    status = getattr(answer, "Status", None)
    if status is None:
        return EchoResult(False, None, f"no C-ECHO response from {peer.ae_title}@{peer.host}:{peer.port}", took)
    ok = int(status) == 0
    return EchoResult(ok, f"0x{int(status):04X}",
                      f"{peer.ae_title}@{peer.host}:{peer.port} answered 0x{int(status):04X}", took)
