"""The perfusion route's lesion step is reproducible: the same SYNTHETIC study gives the same
motion-corrected frames, the same lesion masks and the same names (P1, P2... by size) on every
run, whatever ITK's default thread count (a multithreaded Mattes metric is not reproducible)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from perfusion_helpers import small_phantom

from daemon.criteria.rules import RulesSource
from daemon.demo.perfusion_phantom import as_dynamic
from daemon.measure.lesions import MeasureOptions, measure_mask
from daemon.measure.perfusion_analysis import averaged, motion_corrected
from daemon.measure.perfusion_params import DynamicParams
from daemon.pipelines.ct_perfusion import ALTERED_STRUCTURE
from daemon.pipelines.followup_input import StudyImage
from daemon.pipelines.liver_ct import METASTASIS
from daemon.pipelines.perfusion_lesions import FoundLesions, _by_size, find_lesions
from daemon.volume import LesionMask, SegmentLabel, SliceRef, Volume

PARAMS = RulesSource().load(DynamicParams, "perfusion_dynamic")


def _lesion_step(threads: int) -> tuple[tuple[float, ...], FoundLesions]:
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    try:
        dyn = as_dynamic(small_phantom())
        moved = motion_corrected(dyn, PARAMS)
        found = find_lesions("demo-liver-mets", "cpu", StudyImage(averaged(dyn, moved), (), dyn.series_instance_uid),
                             dyn.reference, None, "patient", "study", "liver-ct-perfusion", "averaged perfusion image")
        return moved.shifts_mm, found
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def test_two_runs_give_the_same_shifts_names_and_masks() -> None:
    shifts_a, a = _lesion_step(threads=2)
    shifts_b, b = _lesion_step(threads=1)
    assert shifts_a == shifts_b  # exactly: the frames, hence the averaged image, are the same
    assert [(n.tracking_id, n.tracking_uid) for n in a.lesions] == [(n.tracking_id, n.tracking_uid) for n in b.lesions]
    assert len(a.lesions) >= 2
    for x, y in zip(a.lesions, b.lesions, strict=True):
        assert np.array_equal(x.mask, y.mask), x.tracking_id
    assert a.liver is not None and b.liver is not None and np.array_equal(a.liver, b.liver)


def test_equal_sizes_are_named_by_position_not_by_label_order() -> None:
    image = np.zeros((8, 32, 32), dtype=np.float32)
    affine = np.array([[0.0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])  # (k, j, i) -> (x, y, z), 1 mm
    slices = tuple(SliceRef(f"1.2.3.{k}", "1.2.840.10008.5.1.4.1.1.2") for k in range(image.shape[0]))
    volume = Volume(array=image, affine=affine, slices=slices, frame_of_reference_uid="1.2.3", modality="CT")
    labels = np.zeros(image.shape, dtype=np.uint16)
    labels[2:6, 4:10, 4:10] = 1  # two cubes of the same size
    labels[2:6, 20:26, 20:26] = 2
    orders = []
    for swap in (False, True):
        lab = np.where(labels == 1, 2, np.where(labels == 2, 1, 0)).astype(np.uint16) if swap else labels
        info = (SegmentLabel(1, "a", ALTERED_STRUCTURE, METASTASIS), SegmentLabel(2, "b", ALTERED_STRUCTURE, METASTASIS))
        measured = measure_mask(volume, LesionMask(volume, lab, info), MeasureOptions(quantity="hu"))
        orders.append([tuple(int(s.start) for s in m.box) for m in sorted(measured, key=_by_size)])
    assert orders[0] == orders[1]
