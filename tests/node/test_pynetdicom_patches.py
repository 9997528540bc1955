"""Nadir patches pynetdicom's internals (daemon/node/pynetdicom_patches.py lists each
one): pyproject.toml pins the exact release they were written for, the node refuses
another at start (or turns a patch off where a stock fallback exists), and one test per
patch fails when the upstream code it copies, replaces or relies on changes (a digest of
its source): an upgrade is adopted only after each patch is re-read against it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pynetdicom
import pytest

from daemon.node import ae_titles, pynetdicom_patches, requestor
from daemon.node.pynetdicom_patches import (
    PATCHES,
    PINNED,
    UnsupportedPynetdicom,
    check,
    source_digest,
)

REPO = Path(__file__).resolve().parents[2]
# sha256 (16 hex digits) of inspect.getsource of each upstream function, pynetdicom 3.0.4
UPSTREAM = {
    "pynetdicom.acse:ACSE._negotiate_as_acceptor": "fffd360957c42a8e",
    "pynetdicom.ae:ApplicationEntity.shutdown": "3084723b79cf471e",
    "pynetdicom.ae:ApplicationEntity.start_server": "d3868a2df83d3cc0",
    "pynetdicom.association:Association._run_reactor": "f28838c5559e462a",
    "pynetdicom.association:Association._serve_request": "2f24c1759cdf6c8c",
    "pynetdicom.association:Association.send_c_store": "fa5a8127f349f8e7",
    "pynetdicom.dimse:DIMSEServiceProvider.get_msg": "890e3e04283f5aeb",
    "pynetdicom.dimse_messages:DIMSEMessage.decode_msg": "f51c777e841a76be",
    "pynetdicom.dul:DULServiceProvider.__init__": "c82dafa9438ddf70",
    "pynetdicom.dul:DULServiceProvider._decode_pdu": "fc71dd1bf853e1ce",
    "pynetdicom.dul:DULServiceProvider.run_reactor": "e3a10eb3a0931e48",
    "pynetdicom.dul:DULServiceProvider.stop_dul": "28a7e0be126e7b30",
    "pynetdicom.pdu:A_ASSOCIATE_RQ.to_primitive": "92cb1a8bedf659e5",
    "pynetdicom.presentation:PresentationContext.__init__": "37a8842ac07cd8f3",
    "pynetdicom.transport:RequestHandler._create_association": "05c8d12b79863cdb",
}


def test_pyproject_pins_the_release_the_patches_are_written_for() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"pynetdicom=={PINNED}" in deps
    assert pynetdicom.__version__ == PINNED


@pytest.mark.parametrize("patch", PATCHES, ids=[p.name for p in PATCHES])
def test_upstream_code_of_each_patch_is_unchanged(patch: pynetdicom_patches.Patch) -> None:
    changed = [ref for ref in patch.upstream if source_digest(ref) != UPSTREAM[ref]]
    assert not changed, (f"pynetdicom changed {changed}: re-read {patch.where} ({patch.name}) against it, "
                         "then record the new digests here")


def test_another_release_is_refused_at_start() -> None:
    assert check(PINNED) == []
    with pytest.raises(UnsupportedPynetdicom, match=f"install pynetdicom=={PINNED}"):
        check("3.1.0")


def test_patches_with_a_fallback_are_off_on_another_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pynetdicom, "__version__", "3.0.5")
    assert ae_titles.handlers() == []

    class Assoc:
        _serve_request = object()

    assoc = Assoc()
    requestor.keep_responses(assoc)
    assert assoc._serve_request is Assoc._serve_request  # left as pynetdicom has it
