"""The irradiated field from RT objects (SYNTHETIC, tests/pipelines/helpers_rt.py): reading them,
mapping treated volumes onto the tracked lesions, and every bad input said, never a crash."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from helpers_rt import Patient, Sphere, dose, plan, structure_set
from pydicom.dataset import Dataset

from daemon.config import ConfigError
from daemon.criteria.rules import RulesSource
from daemon.findings import Lesion, LesionKind, Measurements, Timepoint
from daemon.imaging.rt_objects import read_rt_objects
from daemon.measure.registration import Alignment, AlignmentMethod
from daemon.pipelines.brain_mets_response import timepoint_input
from daemon.pipelines.irradiated_field import FieldInput, mark_treated
from daemon.pipelines.params import rules_model
from daemon.pipelines.priors import Priors, PriorsUnavailable, Request, RtLookup
from daemon.volume import Code, LesionMask, SegmentLabel, SliceRef, Volume

FOR, OTHER_FOR = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
PATIENT = Patient("RT-SYNTH-1", "1.2.826.0.1.3680043.8.498.10", FOR, "1.2.826.0.1.3680043.8.498.11")
SHAPE = (30, 60, 60)
CENTRES = {1: (-12.0, 0.0, 0.0), 2: (14.0, 4.0, 0.0)}  # lesion label -> centre (LPS mm)
TREATED_ON, STUDY_DAY = date(2025, 1, 20), date(2025, 4, 14)


def _volume(frame: str = FOR) -> Volume:
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2] = (0, 0, 2.0), (0, 1.0, 0), (1.0, 0, 0)
    a[:3, 3] = (-30.0, -30.0, -30.0)
    slices = tuple(SliceRef(f"1.2.3.{k}", "1.2.840.10008.5.1.4.1.1.4") for k in range(SHAPE[0]))
    return Volume(np.zeros(SHAPE, dtype=np.float32), a, slices, frame)


def _mask(volume: Volume) -> LesionMask:
    k, j, i = np.indices(SHAPE)
    pts = np.stack([k, j, i, np.ones_like(k)], axis=-1) @ volume.affine.T
    labels = np.zeros(SHAPE, dtype=np.uint16)
    for n, c in CENTRES.items():
        labels[np.linalg.norm(pts[..., :3] - np.array(c), axis=-1) <= 5.0] = n
    code = Code("49755003", "SCT", "Morphologically Altered Structure")
    return LesionMask(volume, labels, tuple(SegmentLabel(n, f"L{n}", code, code) for n in CENTRES))


def _lesions() -> tuple[Lesion, ...]:
    return tuple(Lesion(f"L{n}", f"2.25.{n}", LesionKind.TARGET, Measurements(), segment_number=n) for n in CENTRES)


@dataclass
class Source:
    """The runtime's priors source, answering only the RT lookup."""

    lookup: RtLookup
    volumes: dict[str, Volume] = field(default_factory=dict)

    def find(self, req: Request) -> Priors:
        return Priors((), (), "none")

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        return None

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        return self.volumes.get(series_uid)

    def same_study(self, req: Request, wait: bool) -> Timepoint | None:
        return None

    def rt_objects(self, req: Request) -> RtLookup:
        if self.lookup.source == "raise":
            raise PriorsUnavailable("PACS refused")
        return self.lookup


def _run(datasets: list[Dataset], frame: str = FOR, source: str = "pacs", note: str = "",
         alignments: tuple[Alignment, ...] = (), series: tuple[str, ...] = ()) -> tuple[tuple[Lesion, ...], str]:
    volume = _volume(frame)
    req = Request("brain", PATIENT.patient_id, "1.2.3", STUDY_DAY, "PACS@127.0.0.1:1", 9001, ("MR",))
    priors = Priors((), (), "database", "", series)
    inp = FieldInput(RulesSource(), Source(RtLookup(tuple(datasets), source, note)), req, priors, alignments,
                     _mask(volume), _lesions(), register=False)
    lesions, said = mark_treated(inp)
    return lesions, " ".join(said)


def _objects(**kw: object) -> list[Dataset]:
    ss = structure_set(PATIENT, [Sphere("PTV_L1", CENTRES[1], 7.0), Sphere("Brainstem", CENTRES[2], 7.0, "ORGAN")],
                       TREATED_ON, **kw)  # type: ignore[arg-type]
    rp = plan(PATIENT, ss, TREATED_ON, 24.0, 3)
    return [ss, rp, dose(PATIENT, TREATED_ON, rp.SOPInstanceUID)]


def test_the_treated_lesion_gets_date_and_dose_and_the_other_does_not() -> None:
    lesions, said = _run(_objects())
    notes = {les.tracking_id: les.measurements.notes for les in lesions}
    assert notes["L1"]["rt_field"] == "PTV_L1" and notes["L1"]["rt_treated_on"] == "2025-01-20"
    assert notes["L1"]["rt_dose"] == "24 Gy in 3 fractions" and notes["L1"]["rt_plan"] == "SRS 1"
    assert "rt_field" not in notes["L2"], "an organ at risk is not a treated volume"
    assert "L1 is in the irradiated field" in said and "2025-01-20" in said and "24 Gy" in said
    assert "L2" not in said and "RT objects:" not in said
    tp = timepoint_input(Timepoint("1.2.3", STUDY_DAY, ()), Timepoint("1.2.3", STUDY_DAY, lesions), None)
    by_id = {x.lesion_id: x for x in tp.lesions}
    assert by_id["L1"].treated_field and by_id["L1"].days_since_treatment == (STUDY_DAY - TREATED_ON).days
    assert not by_id["L2"].treated_field


def test_a_dose_reference_of_the_roi_wins() -> None:
    ss = structure_set(PATIENT, [Sphere("PTV_L1", CENTRES[1], 7.0)], TREATED_ON)
    lesions, _ = _run([ss, plan(PATIENT, ss, TREATED_ON, 20.0, 1, roi_number=1)])
    assert lesions[0].measurements.notes["rt_dose"] == "20 Gy in 1 fraction"


def test_another_frame_of_reference_without_registration_is_a_warning() -> None:
    lesions, said = _run(_objects(), frame=OTHER_FOR)
    assert not any("rt_field" in les.measurements.notes for les in lesions)
    assert "another frame of reference" in said and "no registration" in said and "not mapped" in said


def test_the_latest_priors_registration_carries_the_structure_over() -> None:
    """Drawn on the prior (FOR), the study in OTHER_FOR; the pipeline registered that prior series."""
    al = Alignment(np.eye(4), AlignmentMethod.REGISTRATION)
    lesions, said = _run(_objects(), frame=OTHER_FOR, alignments=(al,), series=(PATIENT.series_uid,))
    assert lesions[0].measurements.notes["rt_field"] == "PTV_L1", said


def test_a_one_point_contour_and_a_dose_without_plan_are_warnings() -> None:
    ss = structure_set(PATIENT, [Sphere("PTV_L1", CENTRES[1], 7.0)], TREATED_ON,
                       extra_contours=[("PTV_dot", [14.0, 4.0, 0.0])])
    lesions, said = _run([ss, dose(PATIENT, TREATED_ON)])
    assert "PTV_dot" in said and "fewer than 3 points" in said
    assert "references no RT Plan" in said
    assert "treatment date not known" in said, "no plan: the field is known, its date is not"
    assert lesions[0].measurements.notes["rt_treated_on"] == ""
    assert "rt_field" not in lesions[1].measurements.notes


def test_a_dose_whose_plan_is_missing_and_an_unreadable_object_are_warnings() -> None:
    broken = structure_set(PATIENT, [Sphere("PTV_L1", CENTRES[1], 7.0)], TREATED_ON)
    del broken.StructureSetROISequence[0].ROINumber  # type 1, missing
    found = read_rt_objects([broken, dose(PATIENT, TREATED_ON, "1.2.3.4.5")])
    said = " ".join(found.warnings)
    assert "not readable" in said and "which the PACS did not return" in said


def test_a_failed_lookup_is_said_not_taken_for_none() -> None:
    lesions, said = _run([], source="unavailable", note="the PACS refused")
    assert "could not be looked up" in said and "the PACS refused" in said
    _, none = _run([], source="none", note="no RT object of the patient in the PACS")
    assert "no RT object" in none and "could not" not in none
    src = Source(RtLookup((), "raise"))
    inp = FieldInput(RulesSource(), src, Request("b", "P", "1", None, "", 1), Priors((), (), "none"), (),
                     _mask(_volume()), _lesions())
    with pytest.raises(PriorsUnavailable):
        mark_treated(inp)


def test_the_rules_file_is_checked_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "irradiated_field.yaml").write_text("name_patterns: ['(ptv']\nmin_overlap_fraction: 2\n")
    with pytest.raises(ConfigError) as err:
        RulesSource(site=tmp_path).check("irradiated_field", rules_model("irradiated_field"))
    said = str(err.value)
    assert "irradiated_field.yaml:1" in said and "not a regular expression" in said
    assert "irradiated_field.yaml:2" in said and "min_overlap_fraction" in said
