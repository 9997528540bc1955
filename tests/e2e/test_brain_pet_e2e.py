"""End to end, brain PET route, real peers: Orthanc (the PACS) + `nadir serve` + dcmtk storescu.

The SYNTHETIC demo patient's brain MR (daemon/demo/patient.py, small grid: metastases B1..B5)
goes through the brain-metastases route; three hours later its FDOPA PET (the same lesions,
the head turned and shifted: daemon.demo.brain_pet_phantom.write_demo_patient_fdopa) goes
through brain-pet-amino. The PET's lesion regions must come from that MR (its recorded
lesions placed on the PET by rigid PET-MR registration): the same tracking identifiers and
UIDs in both SRs, the PET lesions' SUVmax close to the designed lesions', and in the PACS an
SR with the reference regions and the ratios, a SEG over the PET, key images.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from daemon.demo import brain_pet_phantom as bp
from daemon.demo.patient import write_brain_mr
from daemon.demo.peers import ORTHANC, NadirNode, Orthanc
from daemon.demo.response_patient import DemoStudy
from daemon.demo.run import StudyResult, process
from daemon.report.readback import read_report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SR, SEG, SC, KO = 9001, 9002, 9003, 9004


@dataclass
class Run:
    pacs: Orthanc
    mr: StudyResult
    pet: StudyResult
    pet_study: bp.BrainPetStudy
    log: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not Path(ORTHANC).exists() or shutil.which("storescu") is None:
        pytest.skip("Orthanc and dcmtk are needed (make apt)")
    work = tmp_path_factory.mktemp("e2e-brain-pet")
    mr = write_brain_mr(work / "studies", 0, "small", 1)
    pet = bp.write_demo_patient_fdopa(work / "studies", 0, seed=1)
    pacs = Orthanc(work / "orthanc")
    node = NadirNode(work / "nadir", pacs_port=pacs.dicom_port)
    pacs.nadir_port = node.port
    try:
        pacs.start()
        node.start()
        mr_result = process(pacs, node, DemoStudy("mr", mr.folder, mr.study_instance_uid, "20240115", mr.files,
                                                   "baseline"))
        pet_result = process(pacs, node, DemoStudy("pet", pet.folder, pet.study_instance_uid, "20240115",
                                                    len(pet.files), "no category"))
        yield Run(pacs, mr_result, pet_result, pet, node.log_text())
    finally:
        node.stop()
        pacs.stop()


def test_pet_lesions_carry_the_mr_tracking_identities(run: Run) -> None:
    mr = {les.tracking_id: les.tracking_uid for les in run.mr.summary.back.lesions}
    pet = {les.tracking_id: les.tracking_uid for les in run.pet.summary.back.lesions}
    assert len(mr) >= 4, mr
    assert pet == mr  # L1 on the MR is L1 on the PET, with the same Tracking UID
    text = " ".join(run.pet.summary.texts)
    assert "from the brain MR of 2024-01-15" in text and "rigid PET-MR registration" in text


def test_pet_lesion_suv_is_the_designed_lesions(run: Run) -> None:
    # each PET lesion region lies on its designed lesion: SUVmax within 15 % of the designed region's
    ph = run.pet_study.phantom
    files = sorted(run.pet_study.folder.glob("*.dcm"))
    first = pydicom.dcmread(files[0])
    assert first.Units == "BQML"
    by_centre = {les.lesion_id: np.asarray(les.centre) for les in ph.truth.lesions}
    geometry = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(f, stop_before_pixels=True) for f in files)}
    sr_series = run.pacs.series_numbered(run.pet.study.study_instance_uid, SR)
    assert sr_series is not None
    back = read_report(pydicom.dcmread(io.BytesIO(run.pacs.file(sr_series["Instances"][-1]))), geometry)
    for les in back.lesions:
        m = les.measurements
        assert m.long_axis is not None and "suv_max" in m.intensity, les.tracking_id
        mid = (np.asarray(m.long_axis.start) + np.asarray(m.long_axis.end)) / 2.0
        nearest = min(by_centre, key=lambda k: float(np.linalg.norm(by_centre[k] - mid)))
        assert float(np.linalg.norm(by_centre[nearest] - mid)) < 6.0, (les.tracking_id, nearest)
        label = next(t.label for t in ph.truth.lesions if t.lesion_id == nearest)
        designed = float(ph.image[ph.labels == label].max())
        assert m.intensity["suv_max"] == pytest.approx(designed, rel=0.15), (les.tracking_id, nearest)


def test_pet_report_objects_in_the_pacs(run: Run) -> None:
    numbers = set(run.pet.series_numbers)
    assert {SR, SEG, SC, KO} <= numbers, numbers
    n = run.pet.summary.numbers
    for region in ("Striatum (contralateral)", "Normal brain (contralateral)", "White matter (contralateral)"):
        assert n[f"{region} SUVmean"] > 0
    assert n["Striatum (contralateral) SUVmean"] > n["Normal brain (contralateral) SUVmean"]
    text = " ".join(run.pet.summary.texts)
    assert "Cicone" in text and "Lizarraga" in text
    # the SEG lies over the PET: it references the PET series and has one segment per lesion at least
    seg_series = run.pacs.series_numbered(run.pet.study.study_instance_uid, SEG)
    assert seg_series is not None
    seg = pydicom.dcmread(io.BytesIO(run.pacs.file(seg_series["Instances"][0])))
    pet_series = str(pydicom.dcmread(sorted(run.pet_study.folder.glob("*.dcm"))[0]).SeriesInstanceUID)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pet_series
    names = {str(s.SegmentLabel) for s in seg.SegmentSequence}
    assert {les.tracking_id for les in run.pet.summary.back.lesions} <= names
