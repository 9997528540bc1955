"""Orthanc (the PACS of the tests) accepts every object by C-STORE, in the source study."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE

from daemon.demo.peers import dcmtk_env, free_port

from .phantom import Phantom

pytestmark = pytest.mark.integration

ORTHANC = Path("/usr/sbin/Orthanc")


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[tuple[int, int]]:
    if not ORTHANC.exists():
        pytest.skip("Orthanc is not installed")
    port, http = free_port(), free_port()
    config = {
        "Name": "nadir-report-test",
        "StorageDirectory": str(tmp_path / "storage"),
        "IndexDirectory": str(tmp_path / "index"),
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "HttpPort": http,
        "HttpServerEnabled": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "Plugins": [],
        "StorageCompression": False,
    }
    cfg = tmp_path / "orthanc.json"
    cfg.write_text(json.dumps(config), encoding="utf-8")
    log = (tmp_path / "orthanc.log").open("w")
    proc = subprocess.Popen([str(ORTHANC), str(cfg)], stdout=log, stderr=subprocess.STDOUT, env=dcmtk_env())
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"Orthanc exited: {(tmp_path / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.2)
        else:
            pytest.fail("Orthanc did not open its DICOM port within 30 s")
        yield port, http
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _store(port: int, datasets: list[Dataset]) -> list[int]:
    ae = AE(ae_title="NADIR")
    for uid in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(uid, ["1.2.840.10008.1.2.1"])
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    assert assoc.is_established, "Orthanc refused the association"
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


@pytest.mark.skipif(shutil.which("Orthanc") is None and not ORTHANC.exists(), reason="Orthanc not installed")
def test_orthanc_accepts_all_objects(phantom: Phantom, orthanc: tuple[int, int]) -> None:
    port, http = orthanc
    objs = phantom.followup_report
    sources = list(phantom.followup.datasets)
    ours = objs.datasets()
    statuses = _store(port, sources + ours)
    assert statuses == [0] * len(statuses)
    assert {str(ds.Modality) for ds in ours} == {"SR", "SEG", "OT", "KO"}
    # one study in the PACS: the results landed in the source study, in 5 series
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/studies", timeout=10) as r:
        studies = json.load(r)
    assert len(studies) == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/studies/{studies[0]}", timeout=10) as r:
        study = json.load(r)
    assert len(study["Series"]) == 5
