"""The irradiated field from the PACS changes the follow-up's report (issue 19), with a real Orthanc.

SYNTHETIC: the brain MR phantoms of daemon.demo.response_patient (two metastases, M1 and M2) and
a planning system's RT objects written by hand (tests/pipelines/helpers_rt.py): an RT Structure
Set drawn on the baseline series (its frame of reference, not the follow-up's) with a PTV around
M1 only and an organ at risk around M2, an RT Plan (2025-01-20, 24 Gy in 3 fractions) referencing
it, and an RT Dose of that plan, all in a planning study of the same patient in the PACS.

The baseline goes through the brain route (its lesions recorded in Nadir's database); its images
and the RT objects are stored in Orthanc. At the follow-up both lesions have grown by more than
5 mm (RANO-BM PD): the node C-FINDs and C-GETs the RT objects, registers the baseline series
(C-GET) onto the follow-up, maps the PTV onto the tracked lesions, and the SR flags M1's lesion
(inside the field, possible treatment effect, with date and dose) and not M2's. With the PACS
unreachable, the lookup is retried, then answered "unavailable" (never "no RT objects").
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
import pytest

from daemon.config import Settings
from daemon.demo.peers import ORTHANC, Orthanc, storescu
from daemon.demo.phantom import Pose
from daemon.demo.response_patient import DATES, GRIDS, SCRIPT, DemoStudy, write_study
from daemon.demo.truth import truth_file
from daemon.pipelines import brain_mets
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.priors import UNAVAILABLE, PriorsUnavailable, Request
from daemon.runtime.priors import NodePriors
from daemon.store.db import create_schema, make_engine, make_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
from helpers_rt import Patient, Sphere, dose, plan, structure_set  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROUTE = "brain-mets-rano-bm"
SERIES = {"modality": ["MR"], "contrast": True, "acquisition_3d": True, "slice_thickness_mm": [0.4, 2.0]}
GROWTH = {"M1": 1.3, "M2": 1.4}  # both grow > 5 mm in diameter (22 -> 28.6 mm, 16 -> 22.4 mm)
TREATED_ON = date(2025, 1, 20)


@dataclass
class Runs:
    followup: pydicom.Dataset  # the follow-up's SR, RT objects in the PACS
    pacs: Orthanc
    sessions: Any
    patient_id: str


def _run(study: DemoStudy, priors_from: str, sessions: Any) -> pydicom.Dataset:
    inp = PipelineInput(study.study_instance_uid, ROUTE, tuple(sorted(study.folder.glob("*.dcm"))),
                        {"series": SERIES, "priors_from": priors_from}, 1, priors=NodePriors(Settings(), sessions))
    return next(ds for ds in brain_mets.run(inp) if ds.Modality == "SR")


def _rt_objects(base: DemoStudy, folder: Path) -> list[Path]:
    header = pydicom.dcmread(next(base.folder.glob("*.dcm")), stop_before_pixels=True)
    truth = {les["lesion_id"]: les for les in json.loads(truth_file(base.folder).read_text())["lesions"]}
    patient = Patient(str(header.PatientID), pydicom.uid.generate_uid(), str(header.FrameOfReferenceUID),
                      str(header.SeriesInstanceUID))
    m1, m2 = (tuple(truth[n]["centre"]) for n in ("M1", "M2"))
    ss = structure_set(patient, [Sphere("PTV_M1", m1, 14.0), Sphere("Optic chiasm", m2, 10.0, "ORGAN")], TREATED_ON)
    rp = plan(patient, ss, TREATED_ON, 24.0, 3)
    folder.mkdir(parents=True)
    paths = []
    for n, ds in enumerate((ss, rp, dose(patient, TREATED_ON, rp.SOPInstanceUID))):
        paths.append(folder / f"rt{n}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.skip("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("irradiated")
    base_lesions = [tpl for tpl, _ in SCRIPT.values()]
    grown = [tpl.scaled(GROWTH[name]) for name, (tpl, _) in SCRIPT.items()]
    base = write_study(work / "studies", "baseline", base_lesions, DATES[0], Pose(), GRIDS["small"], 11, "BASELINE")
    follow = write_study(work / "studies", "followup-1", grown, DATES[1], Pose(), GRIDS["small"], 11, "PD")
    engine = make_engine(f"sqlite:///{work / 'nadir.db'}")
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    pacs = Orthanc(work / "orthanc")
    try:
        pacs.start()
        _run(base, "", sessions)  # the baseline's lesions into Nadir's database
        storescu([*sorted(base.folder.glob("*.dcm")), *_rt_objects(base, work / "rt")], pacs.dicom_port,
                 pacs.ae_title)
        at = f"{pacs.ae_title}@127.0.0.1:{pacs.dicom_port}"
        followup = _run(follow, at, sessions)
        yield Runs(followup, pacs, sessions, str(pydicom.dcmread(next(base.folder.glob("*.dcm"))).PatientID))
    finally:
        pacs.stop()
        engine.dispose()


def _walk(items: Any) -> Iterator[Any]:
    for item in items or []:
        yield item
        yield from _walk(item.get("ContentSequence"))


def _lesion_groups(sr: pydicom.Dataset) -> list[list[Any]]:
    groups = [list(_walk(g.ContentSequence)) for item in sr.ContentSequence for g in item.get("ContentSequence", [])
              if g.ValueType == "CONTAINER" and "ContentSequence" in g]
    return [g for g in groups if any(x.ValueType == "NUM" and x.ConceptNameCodeSequence[0].CodeMeaning == "Long Axis"
                                     for x in g)]


def _said(group: list[Any], meaning: str) -> list[str]:
    out = []
    for x in group:
        if x.ConceptNameCodeSequence[0].CodeMeaning != meaning:
            continue
        out.append(str(x.ConceptCodeSequence[0].CodeMeaning) if x.ValueType == "CODE" else str(x.TextValue))
    return out


def _long_axis(group: list[Any]) -> float:
    return max(float(x.MeasuredValueSequence[0].NumericValue) for x in group
               if x.ValueType == "NUM" and x.ConceptNameCodeSequence[0].CodeMeaning == "Long Axis")


def _texts(sr: pydicom.Dataset) -> str:
    return " ".join(str(x.TextValue) for x in _walk(sr.ContentSequence) if x.ValueType == "TEXT")


def test_the_treated_lesion_that_grew_is_flagged_with_date_and_dose_and_not_the_untreated(runs: Runs) -> None:
    groups = sorted(_lesion_groups(runs.followup), key=_long_axis)
    assert len(groups) == 2
    untreated, treated = groups  # M2 is the smaller of the two (22 mm vs 29 mm)
    assert _said(treated, "Inside an irradiated field") == ["Yes"]
    assert _said(treated, "Possible treatment effect (radionecrosis not excluded)") == ["Yes"]
    field = _said(treated, "Irradiated field: volume, plan, date, dose")
    assert field and "PTV_M1" in field[0] and "2025-01-20" in field[0] and "24 Gy in 3 fractions" in field[0]
    assert not _said(untreated, "Inside an irradiated field")
    assert not _said(untreated, "Possible treatment effect (radionecrosis not excluded)")
    texts = _texts(runs.followup)
    assert "radionecrosis versus progression" in texts and "Not a diagnosis" in texts
    assert "RT objects:" not in texts, "nothing left out: the structure set was registered and mapped"


def test_the_category_is_pd_and_not_downgraded(runs: Runs) -> None:
    flags = [str(x.ConceptCodeSequence[0].CodeMeaning) for x in _walk(runs.followup.ContentSequence)
             if x.ValueType == "CODE" and x.ConceptNameCodeSequence[0].CodeMeaning == "Assessment flag"]
    responses = [str(x.ConceptCodeSequence[0].CodeValue) for x in _walk(runs.followup.ContentSequence)
                 if x.ValueType == "CODE" and x.ConceptNameCodeSequence[0].CodeMeaning == "Current Response"]
    assert "possible_treatment_effect" in flags and set(responses) == {"PD"}


def test_an_unreachable_pacs_is_retried_then_said_not_taken_for_no_rt_objects(runs: Runs) -> None:
    """Nothing listens on port 9: the attempt fails (retried) while the job has attempts left; on
    the last it answers "unavailable", which the report words as "could not be looked up"
    (tests/pipelines/test_irradiated_field.py)."""
    req = Request(ROUTE, runs.patient_id, "1.2.3.4", DATES[1].date(), f"{runs.pacs.ae_title}@127.0.0.1:9", 9001)
    with pytest.raises(PriorsUnavailable, match="RT objects"):
        NodePriors(Settings(), runs.sessions, last_attempt=False).rt_objects(req)
    last = NodePriors(Settings(), runs.sessions).rt_objects(req)
    assert last.source == UNAVAILABLE and "could not be queried" in last.note
    at = f"{runs.pacs.ae_title}@127.0.0.1:{runs.pacs.dicom_port}"
    other = NodePriors(Settings(), runs.sessions).rt_objects(Request(ROUTE, "SOMEONE-ELSE", "1.2.3.4", None, at, 9001))
    assert other.source == "none" and other.datasets == (), "another patient's RT objects are never fetched"
