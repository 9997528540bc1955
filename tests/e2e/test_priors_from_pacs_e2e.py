"""Tracking when the prior's images are not at hand (issue 15), end to end with real peers.

A SYNTHETIC patient is repositioned between visits (a few degrees and about 15 mm).
The baseline goes through node A; the follow-up through node B, which never saw the
baseline (empty database and spool: as after `store.retention_days`, or on a second
node). B reads the baseline's SR back from the PACS (C-FIND, C-GET), fetches the
series the SR measured (C-GET), registers it onto the follow-up and tracks: the same
tracking UIDs and the designed category. The control: node C does the same with
`register_priors: false`, compares positions as they are, and its report says so.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.demo.peers import NadirNode, Orthanc
from daemon.demo.phantom import Pose
from daemon.demo.response_patient import DATES, GRIDS, SCRIPT, write_study
from daemon.demo.run import StudyResult, process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parents[2]
SR, SEG, SC, KO = 9001, 9002, 9003, 9004
MOVED = Pose((3.0, -2.0, 4.0), (12.0, -8.0, 6.0))  # degrees about x, y, z; mm: |t| = 15.6 mm


@dataclass
class Runs:
    baseline: StudyResult
    registered: StudyResult
    unregistered: StudyResult
    registered_log: str


def _rules_without_registration(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO / "rules" / "routing.yaml").read_text()
    text = text.replace("      priors_from: pacs\n", "      priors_from: pacs\n      register_priors: false\n", 1)
    shutil.copy(REPO / "rules" / "rano_bm.yaml", folder / "rano_bm.yaml")
    (folder / "routing.yaml").write_text(text)
    return folder / "routing.yaml"


def _drop_outputs(pacs: Orthanc, study_uid: str) -> None:
    for s in pacs.series(study_uid):
        if int(s["MainDicomTags"].get("SeriesNumber", 0) or 0) in (SR, SEG, SC, KO):
            req = urllib.request.Request(f"{pacs.url}/series/{s['ID']}", method="DELETE")
            urllib.request.urlopen(req, timeout=20).close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    work = tmp_path_factory.mktemp("moved")
    lesions = [[tpl.scaled(scales[t]) for tpl, scales in SCRIPT.values()] for t in (0, 1)]
    base = write_study(work / "studies", "baseline", lesions[0], DATES[0], Pose(), GRIDS["small"], 7, "BASELINE")
    moved = write_study(work / "studies", "followup-1", lesions[1], DATES[1], MOVED, GRIDS["small"], 7, "PR")
    pacs = Orthanc(work / "orthanc")
    nodes = [NadirNode(work / "nadir-a", pacs_port=pacs.dicom_port),
             NadirNode(work / "nadir-b", pacs_port=pacs.dicom_port),
             NadirNode(work / "nadir-c", pacs_port=pacs.dicom_port,
                       rules_file=_rules_without_registration(work / "rules-c"))]
    pacs.nadir_port = nodes[0].port
    try:
        pacs.start()
        nodes[0].start()
        first = process(pacs, nodes[0], base)  # the baseline's images and reports are in the PACS
        nodes[0].stop()
        nodes[1].start()
        registered = process(pacs, nodes[1], moved, to_pacs=False)
        nodes[1].stop()
        _drop_outputs(pacs, moved.study_instance_uid)
        nodes[2].start()
        unregistered = process(pacs, nodes[2], moved, to_pacs=False)
        yield Runs(first, registered, unregistered, nodes[1].log_text())
    finally:
        for node in nodes:
            node.stop()
        pacs.stop()


def _uids(result: StudyResult) -> set[str]:
    return {les.tracking_uid for les in result.summary.back.lesions}


def test_the_prior_series_is_fetched_from_the_pacs_and_registered(runs: Runs) -> None:
    assert "retrieved from the PACS" in runs.registered_log
    assert "latest prior registered" in runs.registered_log
    assert runs.registered.summary.category == "PR"
    assert _uids(runs.registered) == _uids(runs.baseline), "the same lesions, tracked across the move"
    assert not [t for t in runs.registered.summary.texts if "positions only" in t]


def test_without_registration_the_report_says_positions_were_compared(runs: Runs) -> None:
    texts = " ".join(runs.unregistered.summary.texts)
    assert "positions only" in texts and "less certain" in texts


def test_the_follow_up_lists_the_baseline_read_from_the_pacs(runs: Runs) -> None:
    assert runs.baseline.study.study_instance_uid in runs.registered.summary.back.comparison_studies
