"""End to end, liver route, real peers: Orthanc (the PACS) + `nadir serve` + dcmtk storescu.

The SYNTHETIC liver patient of `nadir demo-data` (daemon/demo/patient.py: portal-venous
CT at a baseline, a response and a progression, one metastasis going from Chun group 3
to group 1) goes through the liver route with the demo liver model. Each timepoint's SR,
SEG, key images and KOS must land in the PACS with the designed RECIST 1.1 and Chun
categories (truth.json "expected", which tests/demo checks against the engines on the
true masks), the long axes (nodes: the short axes) of lesions of 10 mm or more within
TOLERANCE_MM of the truth (ILL_DEFINED_TOLERANCE_MM for a Chun group 3 look), and the same
tracking UIDs across the three visits, on a clinical grid. Then bad input: a CT
without contrast, a 10 mm reformat and a series whose field of view misses the liver each get
a valid SR that says why ("No suitable series"), and the other studies are untouched.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
import pytest

from daemon.demo.dicom import SeriesInfo, StudyInfo, demo_uid, series_datasets, write_datasets
from daemon.demo.patient import GRIDS, LIVER_COVER
from daemon.demo.peers import ORTHANC, NadirNode, Orthanc
from daemon.demo.phantom import Pose, liver_ct_phantom
from daemon.demo.response_patient import DemoStudy
from daemon.demo.run import StudyResult, liver_timepoints, process
from daemon.demo.truth import truth_file
from daemon.report.readback import read_report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

SR, SEG, SC, KO = 9001, 9002, 9003, 9004
# The demo patient on a clinical grid: daemon.demo.patient.LIVER_COVER, 512 x 512 at 0.78 mm with 2.5 mm
# slices over 24 cm (bench/e2e.py's CT in plane and at its slice positions, over 40 cm there). Issue 15's
# 1.5 mm holds there for every lesion with a defined edge (largest 1.30 mm: `bench/liver_axes.py --size
# cover`). It is not a wide margin: the same lesions with the 40 cm grid's noise (`--size full`) give 8 of
# 9 within 1.5 mm, H3 at t2 (14 mm, sharp) at +1.76 mm. On the demo's small grid (2.8 mm pixels, which no
# scanner makes) the model is off by up to 4.1 mm.
GRID = LIVER_COVER
TOLERANCE_MM = 1.5
# A metastasis drawn as Chun group 3 has a 10 mm ill-defined interface (CHUN_LOOKS) with a patchy rim:
# the image does not place its edge within 1.5 mm. Thresholding it halfway between its core and the
# liver (bench/liver_axes.py, "half-contrast") misses H2 by +2.8 mm at t0 and -3.0 mm at t2 on this grid
# (+3.0 and -3.1 on the 40 cm one); its steepest edge, the one the eye sees ("strongest edge"), lies
# +1.3 mm and -3.0 mm off. The demo model is off by +2.0 and -2.8 mm (+2.5, -2.9), so it is held to the
# spread of those readings, 3.5 mm.
ILL_DEFINED_TOLERANCE_MM = 3.5
MEASURED_FROM_MM = 10.0


@dataclass
class Run:
    pacs: Orthanc
    studies: list[DemoStudy]
    results: dict[str, StudyResult]
    negatives: dict[str, StudyResult]


def _ct_study(out: Path, name: str, image: Any, affine: Any, *, seed: int, description: str,
              contrast: str, body_part: str = "ABDOMEN") -> DemoStudy:
    when = datetime(2024, 2, 1, 10, 0)
    study = StudyInfo(demo_uid(seed, name, "study"), when, patient_id=f"NADIR-DEMO-NEG-{seed}",
                      description=f"CT {name}", body_part=body_part)
    series = SeriesInfo(demo_uid(seed, name, "series"), "CT", 3, description, demo_uid(seed, name, "for"), when,
                        contrast_agent=contrast)
    files = write_datasets(series_datasets(image, affine, study, series, seed=seed), out / name, "CT-")
    return DemoStudy(name, out / name, study.study_instance_uid, "20240201", len(files), "no_suitable_series")


def _negatives(out: Path) -> list[DemoStudy]:
    grid = GRIDS[("CT", "small")]
    ph = liver_ct_phantom(grid, [], Pose())
    thick = replace(grid, shape=(int(grid.shape[0] * grid.spacing[0] / 10), *grid.shape[1:]),
                    spacing=(10.0, *grid.spacing[1:]))
    ph10 = liver_ct_phantom(thick, [], Pose())
    above = liver_ct_phantom(grid, [], Pose(translation_mm=(0.0, 0.0, -260.0)))  # the anatomy moved down
    return [
        _ct_study(out, "no-contrast", ph.image, ph.truth.affine, seed=21, description="Abdomen",
                  contrast=""),
        _ct_study(out, "reformat-10mm", ph10.image, ph10.truth.affine, seed=22, description="Abdomen PV 10 mm",
                  contrast="Iohexol 350"),
        _ct_study(out, "liver-not-in-view", above.image, above.truth.affine, seed=23,
                  description="Thorax PV", contrast="Iohexol 350", body_part="CHESTABDOMEN"),
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.fail("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("liver")
    studies = liver_timepoints(work / "studies", grid=GRID)
    negatives = _negatives(work / "studies")
    pacs = Orthanc(work / "orthanc")
    node = NadirNode(work / "nadir", pacs_port=pacs.dicom_port)
    pacs.nadir_port = node.port
    try:
        pacs.start()
        node.start()
        results = {s.name: process(pacs, node, s, timeout_s=600) for s in studies}
        negative = {s.name: process(pacs, node, s, to_pacs=False) for s in negatives}
        yield Run(pacs, studies, results, negative)
    finally:
        node.stop()
        pacs.stop()


def _sr(pacs: Orthanc, study_uid: str) -> Any:
    s = pacs.series_numbered(study_uid, SR)
    assert s is not None, "no SR series in the PACS"
    return pydicom.dcmread(io.BytesIO(pacs.file(s["Instances"][-1])))


def _geometry(study: DemoStudy) -> dict[str, Any]:
    return {str(ds.SOPInstanceUID): ds for ds in
            (pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(study.folder.glob("*.dcm")))}


def _truth(study: DemoStudy) -> list[dict[str, Any]]:
    doc = json.loads(truth_file(study.folder).read_text())
    return [les for series in doc["series"] for les in series["lesions"]]


def test_each_timepoint_has_its_report_in_the_pacs(run: Run) -> None:
    for s in run.studies:
        numbers = run.results[s.name].series_numbers
        assert {SR, SEG, SC, KO} <= set(numbers), f"{s.name}: series in the PACS {numbers}"


def test_recist_categories_as_designed(run: Run) -> None:
    got = [run.results[s.name].summary.assessments.get("RECIST 1.1") for s in run.studies]
    assert got == [s.expected for s in run.studies]


def _lesion_codes(sr: Any) -> dict[str, dict[str, str]]:
    """tracking UID -> {concept code value -> value code} of each lesion group's CODE items."""
    out: dict[str, dict[str, str]] = {}
    for top in sr.ContentSequence:
        for group in top.get("ContentSequence", []):
            items = list(group.get("ContentSequence", []))
            uid = next((str(i.UID) for i in items if i.ValueType == "UIDREF"
                        and i.ConceptNameCodeSequence[0].CodeValue == "112040"), None)
            if uid is not None:
                out.setdefault(uid, {}).update({str(i.ConceptNameCodeSequence[0].CodeValue): str(i.ConceptCodeSequence[0].CodeValue)
                                                for i in items if i.ValueType == "CODE"})
    return out


def _position(les: Any) -> list[float] | None:
    """Where a read-back lesion is: the middle of its long axis (the SR's callipers)."""
    cal = les.measurements.long_axis or les.measurements.short_axis
    return None if cal is None else [(a + b) / 2 for a, b in zip(cal.start, cal.end, strict=True)]


def _by_truth(run: Run, study: DemoStudy) -> dict[str, Any]:
    """truth lesion id -> the SR's lesion at its place (read back), for the lesions found."""
    back = read_report(_sr(run.pacs, study.study_instance_uid), _geometry(study))
    out = {}
    for truth in _truth(study):
        near = [(math.dist(pos, truth["centre"]), les) for les in back.lesions if (pos := _position(les))]
        near = [n for n in near if n[0] < 15.0]
        if near:
            out[truth["lesion_id"]] = min(near, key=lambda n: n[0])[1]
    return out


def test_chun_proposed_groups_and_responses_as_designed(run: Run) -> None:
    for s in run.studies:
        summary = run.results[s.name].summary
        doc = json.loads(truth_file(s.folder).read_text())
        chun = [v for k, v in summary.assessments.items() if k.lower().startswith("chun")]
        expected = dict(s.also_expected)["CHUN"]
        if expected == "BASELINE":
            assert chun == [], "no Chun response before a follow-up"
        else:
            assert chun == [expected.upper()], f"{s.name}: {summary.assessments}"
        found = _by_truth(run, s)
        codes = _lesion_codes(_sr(run.pacs, s.study_instance_uid))
        for truth in _truth(s):
            if "chun_group" not in truth:
                continue
            les = found.get(truth["lesion_id"])
            assert les is not None, f"{s.name}: {truth['lesion_id']} not found"
            assert les.measurements.notes.get("chun_group") == str(truth["chun_group"]), f"{s.name} {truth['lesion_id']}"
            want = doc.get("expected_per_lesion", {}).get("CHUN", {}).get(truth["lesion_id"])
            if want is not None:
                assert codes[les.tracking_uid].get("CHUNRESP") == want.upper(), f"{s.name} {truth['lesion_id']}"


def test_axes_within_tolerance_and_tracking_stable(run: Run) -> None:
    """What RECIST 1.1 measures, against the phantom's analytic truth (in the axial plane through
    the centre): a metastasis's long axis, a node's short axis, for those of 10 mm or more."""
    uids: dict[str, set[str]] = {}
    for s in run.studies:
        found = _by_truth(run, s)
        for truth in _truth(s):
            node = truth.get("kind") == "node"
            true_mm = float(truth["perpendicular_diameter_mm" if node else "longest_axial_diameter_mm"])
            if true_mm < MEASURED_FROM_MM:
                continue
            les = found.get(truth["lesion_id"])
            assert les is not None, f"{s.name}: lesion {truth['lesion_id']} ({true_mm:.1f} mm) not in the SR"
            calliper = les.measurements.short_axis if node else les.measurements.long_axis
            assert calliper is not None, f"{s.name} {truth['lesion_id']}: no calliper"
            measured = calliper.length_mm
            tolerance = ILL_DEFINED_TOLERANCE_MM if truth.get("chun_group") == 3 else TOLERANCE_MM
            assert abs(measured - true_mm) <= tolerance, f"{s.name} {truth['lesion_id']}: {measured:.2f} vs {true_mm:.2f}"
            uids.setdefault(truth["lesion_id"], set()).add(les.tracking_uid)
    assert uids and all(len(u) == 1 for u in uids.values()), f"tracking UIDs changed: {uids}"


def _dciodvfy_errors(data: bytes, tmp: Path) -> list[str]:
    path = tmp / "sr.dcm"
    path.write_bytes(data)
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]


@pytest.mark.parametrize(("name", "why"), [
    ("no-contrast", "contrast: wanted with contrast"), ("reformat-10mm", "slice thickness: wanted 0.5-5 mm"),
    ("liver-not-in-view", "does not show the liver"),
])
def test_bad_input_gives_a_valid_sr_saying_why(run: Run, name: str, why: str, tmp_path: Path) -> None:
    result = run.negatives[name]
    assert result.summary.category is None
    assert any("no suitable series" in st.lower() for st in result.summary.statements), result.summary.statements
    assert any(why in t for t in result.summary.texts), result.summary.texts
    assert SEG not in result.series_numbers
    s = run.pacs.series_numbered(result.study.study_instance_uid, SR)
    assert s is not None
    assert _dciodvfy_errors(run.pacs.file(s["Instances"][-1]), tmp_path) == []


def test_bad_input_left_the_patient_studies_untouched(run: Run) -> None:
    for s in run.studies:  # processed before the bad input: their reports are still the only ones
        sr = _sr(run.pacs, s.study_instance_uid)
        assert len(run.pacs.series_numbered(s.study_instance_uid, SR)["Instances"]) == 1
        assert sr.StudyInstanceUID == s.study_instance_uid
