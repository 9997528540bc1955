"""The brain PET route on SYNTHETIC dynamic FET and dual-phase FDG phantoms
(daemon.demo.brain_pet_phantom): the time-activity curve's time to peak within one frame of
the design, Galldiks evaluated with it, a 4D series without frame times answered with its
reason, and Horky's dual-phase index from the early and delayed series of one study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from daemon.demo import brain_pet_phantom as bp
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.brain_pet import run

from .test_brain_pet import _nums, _texts


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
    assert "Horky dual-phase index not evaluable: no early series in this study" in text
