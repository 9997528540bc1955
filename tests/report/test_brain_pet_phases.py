"""The brain PET route on SYNTHETIC dynamic FET and dual-phase FDG phantoms
(daemon.demo.brain_pet_phantom): the time-activity curve's time to peak within one frame of
the design, Galldiks evaluated with it, a 4D series without frame times answered with its
reason, and Horky's dual-phase index from the early and delayed series of one study."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from daemon.demo import brain_pet_phantom as bp
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.brain_pet import run

from .test_brain_pet import _nums, _texts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))
from helpers_wholebody import MemoryPriors  # noqa: E402


def _run(study: bp.BrainPetStudy) -> list[Dataset]:
    return run(PipelineInput(study.study_instance_uid, "brain-pet-amino", study.files))


def _sr(out: list[Dataset]) -> Dataset:
    return next(d for d in out if d.Modality == "SR")


def test_dynamic_fet_time_to_peak_and_galldiks(tmp_path: Path) -> None:
    out = _run(bp.write_dynamic_fet(tmp_path, t=1))
    sr = _sr(out)
    n = _nums(sr)
    frame = bp.FRAMES[0][1]
    assert abs(n["L1 time to peak"] - bp.DYNAMIC_TTP_MIN) <= frame  # within one frame of the design
    assert n["L1 TAC slope 20.0-40.0 min"] < 0  # the designed washout after the early peak
    # the normal brain rises steadily: its last frame above its first
    assert n["Normal brain SUVmean 35-40 min"] > n["Normal brain SUVmean 0-5 min"]
    text = _texts(sr)
    # the combined rule is evaluated with both inputs (the time to peak < 45 min fires)
    assert "Galldiks (FET, glioma): tbr_mean_ge_2.0, ttp_lt_45: tumour_favoured" in text
    assert "not evaluable for this rule" not in text
    # the TAC plot: a secondary capture key image, referenced by the KOS, with the lesion's curve (red),
    # the normal brain's (blue) and the summed 20-40 min window shaded (orange)
    plot = next(d for d in out if d.Modality == "OT" and str(d.get("ImageComments", "")) == "L1 time-activity curve")
    assert plot.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and plot.BurnedInAnnotation == "YES"
    px = plot.pixel_array.astype(int)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    assert np.count_nonzero((r > 190) & (g < 70) & (b < 70)) > 100  # lesion curve #d62728
    assert np.count_nonzero((b > 150) & (r < 60) & (g > 90) & (g < 150)) > 100  # normal brain #1f77b4
    assert np.count_nonzero((r > 245) & (g > 215) & (g < 240) & (b > 160) & (b < 200)) > 2000  # window
    kos = next(d for d in out if d.Modality == "KO")
    refs = {str(x.ReferencedSOPInstanceUID) for e in kos.CurrentRequestedProcedureEvidenceSequence
            for se in e.ReferencedSeriesSequence for x in se.ReferencedSOPSequence}
    assert str(plot.SOPInstanceUID) in refs
    assert "SEG" in [d.Modality for d in out]


def test_dynamic_series_without_frame_times_says_why(tmp_path: Path) -> None:
    out = _run(bp.write_dynamic_fet(tmp_path, t=0, frame_times=False))
    assert [d.Modality for d in out].count("SEG") == 0
    text = _texts(_sr(out))
    assert "dynamic (4D" in text and "FrameReferenceTime / ActualFrameDuration" in text


def test_dual_phase_fdg_horky_index(tmp_path: Path) -> None:
    out = _run(bp.write_dual_phase_fdg(tmp_path, t=1))
    sr = _sr(out)
    text = _texts(sr)
    assert "Horky (FDG, brain metastases): index_gt_0.19: recurrence_favoured" in text
    # the index itself, a NUM of the assessment (99NADIR HORKYIDX), near the designed one
    assert abs(_nums(sr)["Horky dual-phase FDG index"] - bp.DUAL_PHASE_INDEX) <= 0.1 * bp.DUAL_PHASE_INDEX
    assert "Cicone" not in text and "Galldiks" not in text  # FDOPA and FET rules never applied to FDG


def test_fdg_without_early_series_horky_not_evaluable_with_its_reason(tmp_path: Path) -> None:
    text = _texts(_sr(_run(bp.write(tmp_path, "FDG", t=0))))
    assert "Horky dual-phase index not evaluable: no early acquisition within 10 h: no early series in this study" in text


def _pet_input(study: bp.BrainPetStudy, priors: MemoryPriors) -> PipelineInput:
    return PipelineInput(study.study_instance_uid, "brain-pet-amino", study.files, priors=priors)


def test_dual_phase_fdg_across_two_studies(tmp_path: Path) -> None:
    # the delayed acquisition arrives as its own study after the early one (the patient's history
    # kept in memory as the node's database keeps it): Horky's index pairs it with the early study's
    # lesion of the same tracking id when the acquisitions are the rules' 60-600 min apart (here 135)
    priors = MemoryPriors()
    early = bp.write_dual_phase_fdg(tmp_path / "a", t=1, phases=("early",))
    sr = _sr(run(_pet_input(early, priors)))
    assert "Horky dual-phase index not evaluable: no early acquisition within 10 h" in _texts(sr)
    early_ratio = _nums(sr)["L/GM SUVmax ratio"]  # shown beside the criterion: this acquisition's L/GM
    delayed = bp.write_dual_phase_fdg(tmp_path / "b", t=1, seed=8, phases=("delayed",),
                                      study_minutes=bp.DELAYED_MIN - bp.EARLY_MIN)
    sr = _sr(run(_pet_input(delayed, priors)))
    text = _texts(sr)
    assert "Horky (FDG, brain metastases): index_gt_0.19: recurrence_favoured" in text
    assert f"study {early.study_instance_uid}, 135 min earlier" in text
    n = _nums(sr)
    # the index from the early study's L/GM (as its own report gave it) and this one's
    assert n["Horky dual-phase FDG index"] == pytest.approx(n["L/GM SUVmax ratio"] / early_ratio - 1.0, abs=0.005)
    # near the design (the studies' noise differs: measured 0.31 for 0.35)
    assert abs(n["Horky dual-phase FDG index"] - bp.DUAL_PHASE_INDEX) <= 0.2 * bp.DUAL_PHASE_INDEX
    # a delayed study of another injection (the next day): no early acquisition within the interval
    later = bp.write_dual_phase_fdg(tmp_path / "c", t=1, seed=9, phases=("delayed",),
                                    injected_after=timedelta(days=1))
    sr = _sr(run(_pet_input(later, priors)))
    text = _texts(sr)
    assert "Horky dual-phase index not evaluable: no early acquisition within 10 h" in text
    assert "recurrence_favoured" not in text and "Horky dual-phase FDG index" not in _nums(sr)
