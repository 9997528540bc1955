"""Priors are looked up for one patient only, and a failed lookup is never "no priors"
(issue 23), with a real Orthanc as the PACS.

SYNTHETIC brain MR phantoms (daemon.demo.response_patient). Patient A's baseline is
processed and its images and Nadir report stored in Orthanc. Then:

- a study without a Patient ID, or with a wildcard in it, is not looked up (before:
  the C-FIND matched every patient and A's report was read as the prior); patient B
  with its own ID is a baseline; A's follow-up finds A's report;
- a PACS that refuses queries from Nadir's AE: the lookup raises PriorsUnavailable
  (the job's attempt fails and is retried like any failed attempt, see
  daemon.runtime.execution) while the job has attempts left; on its last attempt
  the brain route's SR says NE,
  that the assessment could not be compared with earlier studies and why, never
  BASELINE, and nothing is recorded as A's history.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.demo.peers import ORTHANC, Orthanc, storescu
from daemon.demo.phantom import Pose
from daemon.demo.response_patient import DATES, GRIDS, SCRIPT, DemoStudy, write_study
from daemon.demo.sr_table import summarize
from daemon.pipelines import brain_mets
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.priors import UNAVAILABLE, PriorsUnavailable, Request, not_compared
from daemon.report.readback import read_report
from daemon.runtime.priors import NodePriors
from daemon.store import lesions as lesion_store
from daemon.store.db import create_schema, make_engine, make_sessionmaker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROUTE = "brain-mets-rano-bm"
SERIES = {"modality": ["MR"], "contrast": True, "acquisition_3d": True, "slice_thickness_mm": [0.4, 2.0]}


@dataclass
class RefusingOrthanc(Orthanc):
    """An Orthanc that does not allow C-FIND from Nadir's AE (nor from anyone else)."""

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["DicomAlwaysAllowFind"] = False
        cfg["DicomModalities"]["nadir"]["AllowFind"] = False
        return cfg


@dataclass
class World:
    pacs: Orthanc
    refusing: Orthanc
    baseline: DemoStudy
    followup: DemoStudy
    sessions: sessionmaker[Session]
    work: Path


def _run(world: World, study: DemoStudy, priors_from: str, last_attempt: bool = True,
         files: tuple[Path, ...] | None = None) -> list[pydicom.Dataset]:
    inp = PipelineInput(study.study_instance_uid, ROUTE, files or tuple(sorted(study.folder.glob("*.dcm"))),
                        {"series": SERIES, "priors_from": priors_from}, 1,
                        priors=NodePriors(Settings(), world.sessions, last_attempt=last_attempt))
    return brain_mets.run(inp)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.skip("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("priors-lookup")
    lesions = [[tpl.scaled(scales[t]) for tpl, scales in SCRIPT.values()] for t in (0, 1)]
    base = write_study(work / "studies", "baseline", lesions[0], DATES[0], Pose(), GRIDS["small"], 7, "BASELINE")
    follow = write_study(work / "studies", "followup-1", lesions[1], DATES[1], Pose(), GRIDS["small"], 7, "PR")
    engine = make_engine(f"sqlite:///{work / 'nadir.db'}")
    create_schema(engine)
    pacs, refusing = Orthanc(work / "orthanc"), RefusingOrthanc(work / "orthanc-refusing")
    try:
        pacs.start()
        refusing.start()
        world = World(pacs, refusing, base, follow, make_sessionmaker(engine), work)
        outputs = _run(world, base, "")  # patient A's baseline, its report into the PACS
        out_dir = work / "outputs"
        out_dir.mkdir()
        for n, ds in enumerate(ds for ds in outputs if ds.Modality == "SR"):
            ds.save_as(out_dir / f"{n}.dcm", enforce_file_format=True)
        storescu([*sorted(base.folder.glob("*.dcm")), *sorted(out_dir.glob("*.dcm"))],
                 pacs.dicom_port, pacs.ae_title)
        with world.sessions() as s:  # the database forgets (as after retention): priors from the PACS
            s.execute(delete(lesion_store.LesionTimepoint))
            s.commit()
        yield world
    finally:
        pacs.stop()
        refusing.stop()
        engine.dispose()


def _req(world: World, study: DemoStudy, patient_id: str, pacs: Orthanc) -> Request:
    return Request(ROUTE, patient_id, study.study_instance_uid + ".9", DATES[1].date(),
                   f"{pacs.ae_title}@127.0.0.1:{pacs.dicom_port}", 9001, ("MR",))


def test_only_the_patients_own_priors_are_looked_up(world: World) -> None:
    patient_a = str(pydicom.dcmread(next(world.baseline.folder.glob("*.dcm"))).PatientID)
    own = NodePriors(Settings(), world.sessions).find(_req(world, world.followup, patient_a, world.pacs))
    assert own.source == "pacs" and [tp.study_instance_uid for tp in own.timepoints] == \
        [world.baseline.study_instance_uid], "A's follow-up finds A's report"
    for wild in ("", "  ", "*", "PAT*", "?" * len(patient_a), f"{patient_a}\\OTHER"):
        got = NodePriors(Settings(), world.sessions).find(_req(world, world.followup, wild, world.pacs))
        assert got.source == UNAVAILABLE and got.timepoints == (), repr(wild)
        assert "not looked up" in got.note
        assert not_compared(got) is not None and ("no Patient ID" in got.note or "wildcard" in got.note)
    other = NodePriors(Settings(), world.sessions).find(_req(world, world.followup, "PATIENT-B", world.pacs))
    assert other.source == "none" and other.timepoints == ()
    issuer = replace(_req(world, world.followup, patient_a, world.pacs), issuer_of_patient_id="OTHER-HOSPITAL")
    assert NodePriors(Settings(), world.sessions).find(issuer).timepoints == (), "another issuer's patient"


def test_a_refused_query_is_retried_then_reported_as_not_compared(world: World) -> None:
    patient_a = str(pydicom.dcmread(next(world.baseline.folder.glob("*.dcm"))).PatientID)
    refusing = f"{world.refusing.ae_title}@127.0.0.1:{world.refusing.dicom_port}"
    with pytest.raises(PriorsUnavailable, match="could not be queried"):
        NodePriors(Settings(), world.sessions, last_attempt=False).find(
            _req(world, world.followup, patient_a, world.refusing))
    out = _run(world, world.followup, refusing, last_attempt=True)
    sr = next(ds for ds in out if ds.Modality == "SR")
    back = read_report(sr)
    assert back.category == "NE", "never BASELINE when the priors could not be looked up"
    texts = " ".join(summarize(sr).texts)
    assert "could not be compared with earlier studies" in texts and "could not be queried" in texts
    with world.sessions() as s:
        assert lesion_store.history(s, patient_a, ROUTE, None) == [], "nothing recorded as A's history"
