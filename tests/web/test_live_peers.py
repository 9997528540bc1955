"""The console against real peers: the destinations' C-ECHO button and API with a real
Orthanc (and a closed port), and `/metrics` of a real `nadir serve` with two receiving
processes counting the instances it refused to dcmtk's storescu, by status and calling
AE, the same after a restart. Every instance here is synthetic."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs.studies import make_series, write_study
from prometheus_client.parser import text_string_to_metric_families
from pydicom import dcmread
from pydicom.uid import generate_uid

from daemon.config import Settings
from daemon.demo.peers import ORTHANC, NadirNode, Orthanc, free_port, wait_until
from web.conftest import Console
from web.test_api import basic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    if not Path(ORTHANC).exists():
        pytest.skip(f"Orthanc is not installed ({ORTHANC}; Debian package orthanc)")
    pacs = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield pacs
    pacs.stop()


def _destinations(c: Console, **ports: int) -> None:
    """The console's settings with these destinations (name -> port on the loopback)."""
    data = c.settings.model_dump()
    data["destinations"] = {name: {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": port}
                            for name, port in ports.items()}
    c.deps.settings = Settings.model_validate(data)


def test_echo_a_live_pacs_and_a_closed_port(console: Console, orthanc: Orthanc) -> None:
    closed = free_port()  # nothing listens there
    _destinations(console, pacs=orthanc.dicom_port, gone=closed)
    ok = console.client.post("/api/destinations/pacs/echo", headers=basic("ada"))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert (body["ok"], body["status"]) == (True, "0x0000")
    assert body["message"] == f"ORTHANC@127.0.0.1:{orthanc.dicom_port} answered 0x0000"

    down = console.client.post("/api/destinations/gone/echo", headers=basic("ada")).json()
    assert (down["ok"], down["status"]) == (False, None)
    assert f"ORTHANC@127.0.0.1:{closed}" in down["message"] and "unreachable" in down["message"], down

    console.login("ada")  # the page's button renders the same answers
    page = console.client.get("/destinations")
    token = page.text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
    part = console.client.post("/parts/destinations/gone/echo", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert part.status_code == 200 and f"ORTHANC@127.0.0.1:{closed}" in part.text
    audit = console.client.get("/api/audit").json()
    assert [(a["action"], a["target"]) for a in audit[:3]] == [
        ("destination.echo", "gone"), ("login", "console"), ("destination.echo", "gone")]
    assert audit[3]["detail"] == "success"


def _without_study_uid(source: Path, target: Path) -> Path:
    ds = dcmread(source)
    del ds.StudyInstanceUID  # refused with 0xC002 (daemon.node.acceptance)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(target, enforce_file_format=True)
    return target


def _rejected(node: NadirNode) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.web_port}/metrics", timeout=20) as r:
        text = r.read().decode()
    return {(s.labels["status"], s.labels["calling_ae"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "nadir_instances_rejected_total"}


def _metrics_up(node: NadirNode) -> bool:
    try:
        _rejected(node)
    except OSError:
        return False
    return True


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk storescu is not installed")
def test_rejections_counted_by_status_and_ae_across_processes_and_restarts(tmp_path: Path) -> None:
    good = write_study(tmp_path / "ct", [make_series(generate_uid(), positions=[0.0, 1.0], description="AXIAL")])
    bad = [_without_study_uid(good[0], tmp_path / f"bad{i}.dcm") for i in range(2)]
    node = NadirNode(tmp_path / "node", pacs_port=free_port(), extra_env={"NADIR_NODE__RECEIVERS": "2"}).start()
    try:
        wait_until("the console's /metrics", lambda: _metrics_up(node), 60)
        # six associations (the kernel spreads them over the two receiving processes), each
        # with two refused instances and two stored (-nh: storescu goes on after a refusal)
        for calling in ("CT_A", "CT_A", "CT_A", "CT_A", "MR_B", "MR_B"):
            subprocess.run(["storescu", "-nh", "-aet", calling, "-aec", "NADIR", "127.0.0.1", str(node.port),
                            *map(str, [*bad, *good])], capture_output=True, timeout=120, check=False)
        expected = {("0xC002", "CT_A"): 8.0, ("0xC002", "MR_B"): 4.0}
        assert _rejected(node) == expected, node.log_text()[-3000:]
        node.stop()
        node.start()
        wait_until("the console's /metrics after the restart", lambda: _metrics_up(node), 60)
        assert _rejected(node) == expected
    finally:
        node.stop()
