"""End to end, whole-body FDG route, real peers: Orthanc (the PACS) + `nadir serve` + dcmtk storescu.

The SYNTHETIC whole-body PET/CT patient of `nadir demo-data` (daemon/demo/wholebody.py:
lesions of designed SUL, physiological uptake, fat and muscle compartments) goes through
the route `wholebody-fdg-percist` of the shipped routing file at a baseline and a progressive
metabolic response with a new lesion. Each visit's SR, SEG, key images and KOS must land in
the PACS with the designed PERCIST 1.0 category, the whole-body features and body composition
as numbers, and the same tracking UIDs across visits; the SR passes dciodvfy. Then a PET
without its CT gets a valid SR that says why. Kept lean: the coarse "tiny" grids (PET 6 mm,
120 slices), two visits (the pipeline tests, tests/pipelines/test_wholebody_fdg.py, cover
the three designed categories on the finer grid), the studies go to Nadir only and the PACS
receives what Nadir sends.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from daemon.demo.peers import ORTHANC, NadirNode, Orthanc
from daemon.demo.response_patient import DemoStudy
from daemon.demo.run import StudyResult, process
from daemon.demo.wholebody_studies import pet_ct_timepoints, write_pet_study

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SR, SEG, SC, KO = 9001, 9002, 9003, 9004


@dataclass
class Run:
    pacs: Orthanc
    studies: list[DemoStudy]
    results: dict[str, StudyResult]
    no_ct: StudyResult


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.fail("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("wholebody")
    studies = pet_ct_timepoints(work / "studies", "tiny", visits=(0, 2))
    no_ct = write_pet_study(work / "studies", "pet-without-ct", with_ct=False, size="tiny")
    pacs = Orthanc(work / "orthanc")
    node = NadirNode(work / "nadir", pacs_port=pacs.dicom_port)
    pacs.nadir_port = node.port
    try:
        pacs.start()
        node.start()
        results = {s.name: process(pacs, node, s, timeout_s=120, to_pacs=False) for s in studies}
        yield Run(pacs, studies, results, process(pacs, node, no_ct, timeout_s=60, to_pacs=False))
    finally:
        node.stop()
        pacs.stop()


def _sr(pacs: Orthanc, study_uid: str) -> Any:
    s = pacs.series_numbered(study_uid, SR)
    assert s is not None, "no SR series in the PACS"
    return pydicom.dcmread(io.BytesIO(pacs.file(s["Instances"][-1])))


def test_each_visit_has_its_report_and_the_designed_percist_category(run: Run) -> None:
    for s in run.studies:
        assert {SR, SEG, SC, KO} <= set(run.results[s.name].series_numbers), s.name
    got = [run.results[s.name].summary.assessments.get("PERCIST 1.0") for s in run.studies]
    assert got == [s.expected for s in run.studies] == ["BASELINE", "PMD"]


def test_whole_body_features_and_body_composition_are_numbers_of_the_sr(run: Run) -> None:
    for s in run.studies:
        numbers = run.results[s.name].summary.numbers
        for name in ("Total metabolic tumour volume", "Total Lesion Glycolysis", "Dmax / body surface area",
                     "Subcutaneous adipose tissue volume", "Visceral adipose tissue volume", "Skeletal muscle volume"):
            assert name in numbers, (s.name, sorted(numbers))
        assert numbers["Total metabolic tumour volume"] > 0


def test_tracking_uids_stable_across_visits(run: Run) -> None:
    first, *later = (run.results[s.name].summary.back.lesions for s in run.studies)
    uids = {les.tracking_uid for les in first}
    for lesions in later:
        assert uids <= {les.tracking_uid for les in lesions}


def test_the_sr_passes_dciodvfy(run: Run, tmp_path: Path) -> None:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed")
    s = run.pacs.series_numbered(run.studies[-1].study_instance_uid, SR)
    assert s is not None
    path = tmp_path / "sr.dcm"
    path.write_bytes(run.pacs.file(s["Instances"][-1]))
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    assert [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")] == []


def test_a_pet_without_its_ct_gets_an_sr_saying_why(run: Run) -> None:
    result = run.no_ct
    assert SEG not in result.series_numbers
    assert any("The PET has no CT" in t for t in result.summary.texts), result.summary.texts
    assert _sr(run.pacs, result.study.study_instance_uid).Modality == "SR"
