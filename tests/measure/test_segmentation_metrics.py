"""Dice, HD95, lesion-wise detection and the mean/SD summary on SYNTHETIC masks whose
figures are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.demo.phantom import rotation_matrix
from daemon.measure.segmentation_metrics import detect, dice, hd95, lesions, summarise

SHAPE = (24, 32, 32)


def _affine(spacing: tuple[float, float, float], angles: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:  # type: ignore[type-arg]
    a = np.eye(4)
    a[:3, :3] = rotation_matrix(angles) @ np.diag(spacing)
    a[:3, 3] = (-40.0, 12.0, 7.0)
    return a


def _cube(corner: tuple[int, int, int], n: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:  # type: ignore[type-arg]
    m = np.zeros(shape, dtype=bool)
    k, j, i = corner
    m[k:k + n, j:j + n, i:i + n] = True
    return m


def test_dice_of_a_cube_and_its_shifted_copy() -> None:
    ref = _cube((4, 8, 8), 10)
    assert dice(ref, _cube((4, 8, 10), 10)) == pytest.approx(0.8)  # 800 of 1000 voxels in common
    assert dice(ref, ref) == 1.0
    assert dice(ref, _cube((4, 8, 20), 5)) == 0.0
    assert dice(np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)) is None  # not computable, not 1 or 0


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (20.0, -10.0, 35.0)], ids=["axial", "oblique"])
def test_hd95_of_a_shifted_plate_is_the_shift_in_mm(angles: tuple[float, float, float]) -> None:
    """A one-voxel plate shifted by 3 voxels: every surface voxel is 3 voxels from the other's,
    in mm along the axis of the shift (2.5 mm slices, 0.7 mm pixels), whatever the orientation."""
    affine = _affine((2.5, 0.7, 0.7), angles)
    plate = np.zeros(SHAPE, dtype=bool)
    plate[5, 4:20, 4:20] = True
    along_k = np.roll(plate, 3, axis=0)
    assert hd95(plate, along_k, affine) == pytest.approx(7.5)
    along_i = np.zeros(SHAPE, dtype=bool)
    along_i[5, 4:20, 7:23] = True
    assert hd95(plate, along_i, affine) == pytest.approx(2.1)


def test_hd95_of_a_shifted_cube_is_the_shift() -> None:
    """A 10-voxel cube shifted by 2 voxels: surface distances run from 0 to the shift, and more
    than 5 % of the surface (the two end faces' middles) is at the shift, so HD95 is the shift."""
    affine = _affine((1.0, 1.0, 1.0))
    assert hd95(_cube((4, 8, 8), 10), _cube((4, 8, 10), 10), affine) == pytest.approx(2.0)
    assert hd95(_cube((4, 8, 8), 10), _cube((4, 8, 8), 10), affine) == 0.0
    assert hd95(_cube((4, 8, 8), 10), np.zeros(SHAPE, bool), affine) is None  # an empty side: not computable


def test_a_lesion_at_the_grid_edge_has_its_surface_there() -> None:
    full = np.zeros(SHAPE, dtype=bool)
    full[:, :, :4] = True  # touches three faces of the grid
    shifted = np.zeros(SHAPE, dtype=bool)
    shifted[:, :, :5] = True
    assert hd95(full, shifted, _affine((1.0, 1.0, 1.0))) == pytest.approx(1.0)


def test_lesion_wise_detection_and_false_positives() -> None:
    ref = _cube((2, 2, 2), 6) | _cube((2, 20, 2), 4) | _cube((14, 2, 20), 5)  # lesions of 216, 64, 125 voxels
    pred = _cube((2, 2, 2), 6)  # the first, whole
    pred[2, 20, 2] = True  # one voxel of the second
    pred |= _cube((14, 20, 20), 3) | _cube((20, 26, 2), 2)  # two lesions the reader did not mark
    ref_l, n_ref = lesions(ref)
    pred_l, n_pred = lesions(pred)
    assert (n_ref, n_pred) == (3, 4)
    found = detect(ref_l, pred_l)
    assert found.detected == 2 and found.sensitivity == pytest.approx(2 / 3)
    assert len(found.false_positives) == 2 and found.predicted_lesions == 4
    by_size = {m.reference_voxels: m for m in found.matches}
    assert by_size[216].covered_fraction == 1.0 and by_size[64].covered_fraction == pytest.approx(1 / 64)
    assert not by_size[125].detected and by_size[125].predicted is None
    strict = detect(ref_l, pred_l, min_overlap=0.5)  # the one-voxel touch no longer counts
    assert strict.detected == 1 and len(strict.false_positives) == 2
    assert detect(np.zeros(SHAPE, np.int32), pred_l).sensitivity is None


def test_one_model_lesion_over_two_reader_lesions_detects_both() -> None:
    ref = _cube((2, 2, 2), 4) | _cube((2, 2, 8), 4)
    pred = np.zeros(SHAPE, dtype=bool)
    pred[2:6, 2:6, 2:12] = True
    found = detect(lesions(ref)[0], lesions(pred)[0])
    assert found.detected == 2 and not found.false_positives


def test_summary_is_mean_and_sample_sd_of_what_is_computable() -> None:
    s = summarise([1.0, 2.0, 3.0, None])
    assert (s.n, s.mean, s.sd, s.not_computable) == (3, 2.0, 1.0, 1)
    assert summarise([0.5]).sd is None
    assert summarise([None]).mean is None and summarise([None]).not_computable == 1
