"""Chun features on synthetic volumes whose interface, rim and texture are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.measure.chun_features import FEATURES, Shells, depth_mm, rise_slope
from daemon.measure.chun_features import lesion_features as measured
from daemon.measure.lesions import MeasuredLesion, MeasureOptions, measure_mask
from daemon.volume import LesionMask, SliceRef, Volume

LIVER, LESION = 110.0, 40.0

SHELLS = Shells(rim_mm=3.0, interface_mm=9.0, liver_mm=(5.0, 15.0))  # as rules/chun.yaml ships them


def lesion_features(image: Volume, liver: object, lesion: MeasuredLesion) -> dict[str, float]:
    return measured(image, liver, lesion, SHELLS)  # type: ignore[arg-type]


def _volume(array: np.ndarray, spacing: tuple[float, float, float]) -> Volume:
    refs = tuple(SliceRef(f"1.2.3.{k}", "1.2.840.10008.5.1.4.1.1.2") for k in range(array.shape[0]))
    return Volume(array=array.astype(np.float32), affine=np.diag([*spacing, 1.0]), slices=refs,
                  frame_of_reference_uid="1.2.3", modality="CT")


def _distance(shape: tuple[int, int, int], spacing: tuple[float, float, float], radius: float) -> np.ndarray:
    """Signed distance (mm) from each voxel centre to a sphere of `radius` at the grid's centre."""
    axes = [(np.arange(n) - (n - 1) / 2.0) * s for n, s in zip(shape, spacing, strict=True)]
    k, j, i = np.meshgrid(*axes, indexing="ij")
    return np.asarray(np.sqrt(k**2 + j**2 + i**2) - radius)


def _lesion(
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    radius: float = 15.0,
    interface_mm: float = 0.0,
    rim: tuple[float, float] = (0.0, 3.0),
    texture_sd: float = 0.0,
    noise_sd: float = 0.0,
    seed: int = 0,
) -> tuple[Volume, np.ndarray, MeasuredLesion]:
    """A sphere of LESION HU in LIVER HU: a linear ramp interface_mm wide (0: a step), a rim of
    rim[0] HU over the inner rim[1] mm, white texture and noise; returns (volume, liver mask, lesion)."""
    extent = 2 * (radius + 20.0)
    shape = tuple(int(np.ceil(extent / s)) | 1 for s in spacing)
    d = _distance(shape, spacing, radius)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    inner = LESION + rim[0] * (d >= -rim[1]) + texture_sd * rng.standard_normal(d.shape)
    w = (d <= 0).astype(float) if interface_mm == 0 else np.clip(0.5 - d / interface_mm, 0.0, 1.0)
    image = LIVER * (1 - w) + inner * w + noise_sd * rng.standard_normal(d.shape)
    vol = _volume(image, spacing)
    mask = d <= 0
    (lesion,) = measure_mask(vol, LesionMask(volume=vol, labels=mask.astype(np.int16), label_info=()),
                             MeasureOptions(split_components=False))
    return vol, ~mask, lesion


def test_depth_is_measured_to_the_voxel_faces() -> None:
    inside = np.zeros((5, 7, 9), dtype=bool)
    inside[2, 3, 2:7] = True  # a row of five voxels along i
    d = depth_mm(inside, np.array([3.0, 2.0, 0.5]))
    assert d[2, 3, 4] == pytest.approx(-1.25)  # nearest outside centre 1.5 mm along i, less 0.25 (true: 1.0)
    assert d[2, 3, 2] == pytest.approx(-0.25)  # first voxel: half of 0.5 mm
    assert d[2, 3, 1] == pytest.approx(0.25) and d[2, 3, 0] == pytest.approx(0.75)
    assert d[2, 2, 4] == pytest.approx(1.0)  # the next row: half of 2 mm
    assert d[1, 3, 4] == pytest.approx(1.5)  # the next slice: half of 3 mm
    assert not depth_mm(np.zeros((2, 2, 2), dtype=bool), np.ones(3)).any()  # no border: 0


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (3.0, 2.8, 2.8)])
def test_a_sharp_interface_is_steeper_than_a_blurred_one(spacing: tuple[float, float, float]) -> None:
    sharp = lesion_features(*_lesion(spacing, interface_mm=0.0, noise_sd=5.0))
    blurred = lesion_features(*_lesion(spacing, interface_mm=10.0, noise_sd=5.0))
    assert sharp["interface_hu_per_mm"] > 2.0 * blurred["interface_hu_per_mm"]
    # a linear ramp 10 mm wide rises (110 - 40) / 10 HU per mm between its 10 % and 90 % points; the
    # voxel-face depths of a curved border run a little short on coarse grids (up to +25 % at 2.8 mm)
    assert blurred["interface_hu_per_mm"] == pytest.approx((LIVER - LESION) / 10.0, rel=0.3)
    assert blurred["interface_hu_per_mm"] >= (LIVER - LESION) / 10.0


def test_a_rim_of_plus_40_hu_reads_about_40_against_the_core() -> None:
    f = lesion_features(*_lesion(rim=(40.0, 3.0)))
    assert f["rim_vs_core_hu"] == pytest.approx(40.0, abs=2.0)
    assert f["rim_vs_liver_hu"] == pytest.approx(LESION + 40.0 - LIVER, abs=2.0)
    none = lesion_features(*_lesion())
    assert none["rim_vs_core_hu"] == pytest.approx(0.0, abs=1.0)


def test_attenuation_and_heterogeneity() -> None:
    f = lesion_features(*_lesion(texture_sd=20.0, seed=3))
    assert set(f) == set(FEATURES)
    assert f["hu_mean"] == pytest.approx(LESION, abs=1.0)
    assert f["hu_sd"] == pytest.approx(20.0, rel=0.05)
    assert f["lesion_to_liver_hu"] == pytest.approx(LESION - LIVER, abs=1.0)
    assert lesion_features(*_lesion())["hu_sd"] == pytest.approx(0.0, abs=1e-6)


def test_without_a_liver_mask_the_surroundings_are_the_reference() -> None:
    vol, liver, lesion = _lesion(noise_sd=3.0)
    assert lesion_features(vol, None, lesion) == pytest.approx(lesion_features(vol, liver, lesion))
    nothing = np.zeros_like(liver)
    f = lesion_features(vol, nothing, lesion)  # no liver around: nothing relative to it
    assert set(f) == {"hu_mean", "hu_sd", "rim_vs_core_hu"}


def test_what_cannot_be_measured_is_left_out() -> None:
    vol, liver, lesion = _lesion(spacing=(2.0, 2.0, 2.0), radius=2.0)
    f = lesion_features(vol, liver, lesion)
    assert "rim_vs_core_hu" not in f and "hu_sd" not in f and "hu_mean" in f  # no core, too few voxels
    full = _volume(np.full((3, 3, 3), 50.0), (1.0, 1.0, 1.0))
    (whole,) = measure_mask(full, LesionMask(volume=full, labels=np.ones((3, 3, 3), np.int16), label_info=()))
    assert lesion_features(full, None, whole) == {}  # no border to measure across


def test_wider_shells_reach_further() -> None:
    vol, liver, lesion = _lesion(rim=(40.0, 6.0))
    assert measured(vol, liver, lesion, Shells(6.0, SHELLS.interface_mm, SHELLS.liver_mm))["rim_vs_core_hu"] == pytest.approx(40.0, abs=2.0)


def test_rise_slope() -> None:
    where = np.array([-3.0, -1.0, 1.0, 3.0])
    assert rise_slope(where, np.array([40.0, 40.0, 110.0, 110.0]), 40.0, 110.0) == pytest.approx(35.0)
    assert rise_slope(where, np.array([110.0, 110.0, 40.0, 40.0]), 110.0, 40.0) == pytest.approx(35.0)  # hyperdense
    assert rise_slope(where, np.array([40.0, 50.0, 60.0, 70.0]), 40.0, 110.0) is None  # never reaches the liver
    assert rise_slope(where, np.array([110.0, 110.0, 110.0, 110.0]), 40.0, 110.0) is None  # already there
    assert rise_slope(where, np.array([60.0, 80.0, 110.0, 110.0]), 40.0, 110.0) == pytest.approx(56.0 / 4.0, rel=0.2)
    assert rise_slope(where, np.array([40.0, 40.0, 40.0, 40.0]), 40.0, 40.0) is None  # no contrast
