"""Every place where Nadir relies on pynetdicom's internals, the exact pynetdicom
release each was written against, and the check made at start.

pyproject.toml pins pynetdicom to `PINNED`. Each patch names the upstream functions it
copies, replaces or depends on; tests/node/test_pynetdicom_patches.py holds a digest of
each one's source and fails when an upgrade changes any of them, so a new release is
adopted only after the patch is re-read against it. At start (`check`), a pynetdicom
other than `PINNED` turns each patch with a stock fallback off (a WARNING names it) and
refuses to run where there is none. Where a fix belongs upstream, deploy/pynetdicom-upstream.md
is the report, ready to file.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
from dataclasses import dataclass

import pynetdicom

log = logging.getLogger(__name__)

PINNED = "3.0.4"


@dataclass(frozen=True)
class Patch:
    name: str
    where: str  # our module
    upstream: tuple[str, ...]  # "module:Qualified.name" of what it copies, replaces or relies on
    fallback: str | None  # what runs on another pynetdicom; None: nothing safe, refuse to start


PATCHES: tuple[Patch, ...] = (
    Patch("waking association loops", "daemon.node.reactor",
          ("pynetdicom.dul:DULServiceProvider.run_reactor", "pynetdicom.dul:DULServiceProvider.stop_dul",
           "pynetdicom.dul:DULServiceProvider.__init__", "pynetdicom.association:Association._run_reactor",
           "pynetdicom.transport:RequestHandler._create_association"),
          "pynetdicom's polling loops"),
    Patch("requestor keeps its responses", "daemon.node.requestor",
          ("pynetdicom.association:Association._serve_request", "pynetdicom.association:Association.send_c_store",
           "pynetdicom.dimse:DIMSEServiceProvider.get_msg"),
          "no guard (a response the reactor takes is lost; the C-STORE times out and is retried)"),
    Patch("datasets received into the spool", "daemon.node.scp",
          ("pynetdicom.dimse_messages:DIMSEMessage.decode_msg",),
          None),
    Patch("cheap copy of supported contexts", "daemon.node.scp",
          ("pynetdicom.transport:RequestHandler._create_association",
           "pynetdicom.presentation:PresentationContext.__init__"),
          "pynetdicom's deep copy (about 40 ms of CPU per association)"),
    Patch("listener registered with its AE", "daemon.node.scp",
          ("pynetdicom.ae:ApplicationEntity.start_server", "pynetdicom.ae:ApplicationEntity.shutdown"),
          None),
    Patch("AE titles keep leading spaces", "daemon.node.ae_titles",
          ("pynetdicom.dul:DULServiceProvider._decode_pdu", "pynetdicom.acse:ACSE._negotiate_as_acceptor",
           "pynetdicom.pdu:A_ASSOCIATE_RQ.to_primitive"),
          "pynetdicom's comparison (leading spaces ignored)"),
)


class UnsupportedPynetdicom(RuntimeError):
    """The installed pynetdicom is not the one a patch without fallback was written for."""


def by_name(name: str) -> Patch:
    return next(p for p in PATCHES if p.name == name)


def applies(name: str, version: str | None = None) -> bool:
    """Whether the patch `name` is used with this pynetdicom (the pinned release only)."""
    by_name(name)
    return (version or pynetdicom.__version__) == PINNED


def upstream_object(ref: str) -> object:
    module, _, qualname = ref.partition(":")
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def source_digest(ref: str) -> str:
    """sha256 (first 16 hex digits) of the upstream source of `ref`."""
    return hashlib.sha256(inspect.getsource(upstream_object(ref)).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def check(version: str | None = None) -> list[Patch]:
    """At start: the patches turned off for this pynetdicom (a WARNING each); raises
    UnsupportedPynetdicom when one of them has no fallback."""
    version = version or pynetdicom.__version__
    if version == PINNED:
        return []
    hard = [p for p in PATCHES if p.fallback is None]
    if hard:
        raise UnsupportedPynetdicom(
            f"pynetdicom {version} is installed; Nadir's patches are written for {PINNED} "
            f"({', '.join(f'{p.name} in {p.where}' for p in hard)} have no fallback): "
            f"install pynetdicom=={PINNED}")
    for p in PATCHES:
        log.warning("pynetdicom %s: %s (%s) written for %s is off; using %s", version, p.name, p.where, PINNED, p.fallback)
    return list(PATCHES)
