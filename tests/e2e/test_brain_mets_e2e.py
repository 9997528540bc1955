"""End to end, real peers: Orthanc (the PACS) + `nadir serve` + dcmtk storescu (the modality).

The SYNTHETIC demo patient (daemon/demo/response_patient.py: a baseline and two
follow-ups whose lesions shrink then grow) goes through the brain-metastases route;
each timepoint's SR, SEG, key images and KOS must land in the PACS, in the source
study, with the categories the phantom was designed for (baseline, PR, PD against
the nadir), diameters within 1 mm of what the same measurement reads on the
phantom's true mask (and within 1.5 mm of the analytic truth) and stable tracking identities.
Then a fresh node (empty database) processes the first follow-up again and must
find its prior through the PACS (C-FIND + C-GET of our SR) with the same result.
Last, a clean brain and a 5 mm reformat give valid SRs that say so.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from daemon.demo.peers import ORTHANC, NadirNode, Orthanc
from daemon.demo.phantom import brain_mr_phantom
from daemon.demo.response_patient import (
    GRIDS,
    POSES,
    SCRIPT,
    TIMEPOINTS,
    DemoStudy,
    write_negative_cases,
    write_timepoints,
)
from daemon.demo.run import StudyResult, process
from daemon.demo.truth import truth_file
from daemon.measure.geometry import axial_axes
from daemon.report.readback import read_report
from daemon.volume import SliceRef, Volume

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SR, SEG, SC, KO = 9001, 9002, 9003, 9004
# The segmentation's share: the SR's long axis against the same measurement (daemon.measure) of the
# phantom's true mask on the same grid, within the measurement issue's 1 mm. The demo model 0.1.0
# over-segmented at its assumed threshold 0.5 (+0.9 to +1.6 mm against the analytic truth here); from
# 0.2.0 its threshold is calibrated on held-out phantoms so that the predicted boundary lies on the true
# one (models/demo-brain-mets/model.yaml, provenance.calibration).
TOLERANCE_MM = 1.0
# Against the analytic truth: the same 1 mm plus what measuring any voxelised mask adds. The true mask
# itself reads +0.25 to +0.60 mm above the analytic diameter here (+0.49 median, +0.84 max on the
# model's 27 calibration lesions): the boundary vertices at each end of a 1 mm-pixel mask lie up to
# half a pixel outside the ellipse and the longest chord over slices and directions picks them.
ANALYTIC_TOLERANCE_MM = TOLERANCE_MM + 0.5


@dataclass
class Run:
    pacs: Orthanc
    studies: list[DemoStudy]
    results: dict[str, StudyResult]
    from_pacs: StudyResult
    negatives: dict[str, StudyResult]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.skip("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("e2e")
    studies = write_timepoints(work / "studies")
    negatives = write_negative_cases(work / "studies")
    pacs = Orthanc(work / "orthanc")
    nodes = [NadirNode(work / "nadir-a", pacs_port=pacs.dicom_port),
             NadirNode(work / "nadir-b", pacs_port=pacs.dicom_port)]
    pacs.nadir_port = nodes[0].port
    try:
        pacs.start()
        nodes[0].start()
        results = {s.name: process(pacs, nodes[0], s) for s in studies}
        negative = {s.name: process(pacs, nodes[0], s, to_pacs=False) for s in negatives}
        nodes[0].stop()
        # the same follow-up through a node whose database is empty: priors come from the PACS
        again = studies[1]
        for s in pacs.series(again.study_instance_uid):
            if int(s["MainDicomTags"].get("SeriesNumber", 0) or 0) in (SR, SEG, SC, KO):
                req = urllib.request.Request(f"{pacs.url}/series/{s['ID']}", method="DELETE")
                urllib.request.urlopen(req, timeout=20).close()
        nodes[1].start()
        from_pacs = process(pacs, nodes[1], again, to_pacs=False)
        yield Run(pacs, studies, results, from_pacs, negative)
    finally:
        for node in nodes:
            node.stop()
        pacs.stop()


def _geometry(study: DemoStudy) -> dict[str, Any]:
    return {str(ds.SOPInstanceUID): ds for ds in
            (pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(study.folder.glob("*.dcm")))}


def _sr(pacs: Orthanc, study_uid: str) -> Any:
    s = pacs.series_numbered(study_uid, SR)
    assert s is not None, "no SR series in the PACS"
    return pydicom.dcmread(io.BytesIO(pacs.file(s["Instances"][-1])))


def _matched(run: Run, study: DemoStudy) -> dict[str, tuple[str, float, float]]:
    """truth lesion -> (tracking UID, measured long axis, true long axis), by position."""
    back = read_report(_sr(run.pacs, study.study_instance_uid), _geometry(study))
    truth = json.loads(truth_file(study.folder).read_text())["lesions"]
    out = {}
    for t in truth:
        best = None
        for les in back.lesions:
            la = les.measurements.long_axis
            assert la is not None
            mid = [(a + b) / 2 for a, b in zip(la.start, la.end, strict=True)]
            d = math.dist(mid, t["centre"])
            if d < 10.0 and (best is None or d < best[0]):
                best = (d, les.tracking_uid, la.length_mm)
        assert best is not None, f"{study.name}: lesion {t['lesion_id']} not found in the SR"
        out[t["lesion_id"]] = (best[1], best[2], float(t["longest_axial_diameter_mm"]))
    return out


def test_each_timepoint_has_its_report_in_the_pacs(run: Run) -> None:
    for s in run.studies:
        numbers = run.results[s.name].series_numbers
        assert {SR, SEG, SC, KO} <= set(numbers), f"{s.name}: series in the PACS {numbers}"


def test_categories_as_designed(run: Run) -> None:
    got = [run.results[s.name].summary.category for s in run.studies]
    assert got == [s.expected for s in run.studies]


def _true_mask_long_axes(study: DemoStudy) -> dict[str, float]:
    """The long axis daemon.measure reads on the phantom's true mask (regenerated as write_study does)."""
    t = TIMEPOINTS.index(study.name)
    lesions = [tpl.scaled(scales[t]) for tpl, scales in SCRIPT.values()]
    ph = brain_mr_phantom(GRIDS["small"], lesions, POSES[t])  # the mask depends on the geometry only, not the noise seed
    truth = {les["lesion_id"]: les for les in json.loads(truth_file(study.folder).read_text())["lesions"]}
    grid = _volume(ph.image, ph.truth.affine)
    out = {}
    for les in ph.truth.lesions:
        assert les.longest_axial_diameter_mm == pytest.approx(truth[les.lesion_id]["longest_axial_diameter_mm"])
        axes = axial_axes(grid, ph.labels == les.label)
        assert axes is not None
        out[les.lesion_id] = axes.long_axis.length_mm
    return out


def _volume(image: Any, affine: Any) -> Volume:
    slices = tuple(SliceRef(f"2.25.{k + 1}", "1.2.840.10008.5.1.4.1.1.4") for k in range(image.shape[0]))
    return Volume(array=image, affine=affine, slices=slices, frame_of_reference_uid="2.25.1", modality="MR")


def test_diameters_within_tolerance_and_tracking_stable(run: Run) -> None:
    uids: dict[str, set[str]] = {}
    for s in run.studies:
        on_true_mask = _true_mask_long_axes(s)
        for lesion, (uid, measured, true) in _matched(run, s).items():
            ref = on_true_mask[lesion]
            assert abs(measured - ref) <= TOLERANCE_MM, f"{s.name} {lesion}: {measured:.2f} vs {ref:.2f} mm (true mask)"
            assert abs(measured - true) <= ANALYTIC_TOLERANCE_MM, f"{s.name} {lesion}: {measured:.2f} vs {true:.2f} mm"
            uids.setdefault(lesion, set()).add(uid)
    assert all(len(u) == 1 for u in uids.values()), f"tracking UIDs changed: {uids}"


def test_prior_found_through_the_pacs_gives_the_same_result(run: Run) -> None:
    db = run.results[run.studies[1].name].summary
    pacs = run.from_pacs.summary
    assert pacs.category == db.category
    assert {les.tracking_uid for les in pacs.back.lesions} == {les.tracking_uid for les in db.back.lesions}
    baseline = run.studies[0].study_instance_uid
    assert baseline in pacs.back.comparison_studies, "the prior read from the PACS is listed as compared with"
    assert pacs.numbers == pytest.approx(db.numbers, abs=0.05)


def _dciodvfy_errors(data: bytes, tmp: Path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        return []
    path = tmp / "sr.dcm"
    path.write_bytes(data)
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]


@pytest.mark.parametrize(("name", "statement"), [("no-lesion", "No lesion"), ("thick-slices", "No suitable series")])
def test_nothing_to_measure_gives_a_valid_sr_saying_so(run: Run, name: str, statement: str, tmp_path: Path) -> None:
    result = run.negatives[name]
    assert result.summary.category is None
    assert any(statement.lower() in st.lower() for st in result.summary.statements), result.summary.statements
    assert SEG not in result.series_numbers
    study = next(s for s in (*run.studies, *[r.study for r in run.negatives.values()]) if s.name == name)
    s = run.pacs.series_numbered(study.study_instance_uid, SR)
    assert s is not None
    assert _dciodvfy_errors(run.pacs.file(s["Instances"][-1]), tmp_path) == []
