"""Sliding-window inference, preprocessing round trips and the whole segment() path, on tiny synthetic models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import blobs, conv_model, volume, write_model

from daemon.segment import load_model, probabilities, segment
from daemon.segment.postprocess import remove_small
from daemon.segment.preprocess import model_shape, reorientation, resample
from daemon.segment.sliding_window import importance_map, sliding_window, window_starts


def _run(model_folder: Path):  # type: ignore[no-untyped-def]
    m = load_model(model_folder, providers="cpu")
    return lambda x: m.session.run(["y"], {"x": x})[0]


def test_window_starts_cover_the_axis() -> None:
    assert window_starts(10, 16, 0.5) == [0]
    assert window_starts(20, 8, 0.25) == [0, 6, 12]
    for size, patch, overlap in [(208, 96, 0.25), (512, 96, 0.5), (37, 8, 0.1)]:
        starts = window_starts(size, patch, overlap)
        assert starts[0] == 0 and starts[-1] == size - patch
        assert all(b - a <= patch for a, b in zip(starts, starts[1:], strict=False))


def test_importance_map_is_gaussian_and_positive() -> None:
    w = importance_map((9, 9, 9), "gaussian", 0.125)
    assert w[4, 4, 4] == pytest.approx(1.0) and w.min() > 0 and w[0, 4, 4] < 0.01


def test_pointwise_model_sliding_window_equals_whole_volume(tmp_path: Path) -> None:
    predict = _run(write_model(tmp_path / "m", conv_model(kernel=1, scale=0.7, bias=-0.2)))
    image = np.random.default_rng(1).normal(size=(1, 21, 30, 17)).astype(np.float32)
    whole = predict(image[None])[0]
    windowed = sliding_window(image, (8, 8, 8), predict, overlap=0.5, batch_size=3)
    np.testing.assert_allclose(windowed, whole, atol=1e-5)
    np.testing.assert_allclose(whole, 0.7 * image - 0.2, atol=1e-5)


def test_conv_model_one_window_equals_whole_volume_and_padding(tmp_path: Path) -> None:
    predict = _run(write_model(tmp_path / "m", conv_model(kernel=3)))
    image = np.random.default_rng(2).normal(size=(1, 12, 12, 12)).astype(np.float32)
    whole = predict(image[None])[0]
    np.testing.assert_allclose(sliding_window(image, (12, 12, 12), predict), whole, atol=1e-5)
    # a volume smaller than the patch is padded, then cropped back
    small = image[:, :7, :9, :12]
    np.testing.assert_allclose(
        sliding_window(small, (12, 12, 12), predict)[..., :-1],
        predict(np.pad(small, [(0, 0), (0, 5), (0, 3), (0, 0)])[None])[0, :, :7, :9, :11],
        atol=1e-5,
    )
    # with overlapping windows, the interior away from every window's edge is unchanged
    blended = sliding_window(image, (8, 8, 8), predict, overlap=0.5, batch_size=2)
    assert np.abs(blended - whole).max() < 0.5 * np.abs(whole).max()


@pytest.mark.parametrize(
    "affine",
    [
        np.diag([2.0, 1.0, 1.0, 1.0]),  # axial
        np.array([[0, 0, -1.0, 0], [0, -1.0, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]]).T,  # permuted and flipped
    ],
    ids=["axial", "flipped-sagittal"],
)
def test_reorientation_round_trip(affine: np.ndarray) -> None:
    a = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    ro = reorientation(affine, "LPS")
    np.testing.assert_array_equal(ro.undo(ro.apply(a)), a)
    out = ro.apply(a)
    # the reoriented axes point to +z, +y, +x (S, P, L)
    m = affine[:3, :3]
    for t, patient_axis in enumerate((2, 1, 0)):
        src = ro.perm[t]
        sign = -1 if ro.flip[t] else 1
        assert np.argmax(np.abs(m[:, src])) == patient_axis and np.sign(m[patient_axis, src]) * sign > 0
    assert out.shape == tuple(a.shape[p] for p in ro.perm)


def test_resample_keeps_the_field_of_view() -> None:
    a = np.zeros((10, 10, 10), dtype=np.float32)
    a[4:6, 4:6, 4:6] = 1.0
    up = resample(a, (20, 20, 20))
    back = resample(up, (10, 10, 10))
    assert back.shape == a.shape
    assert np.unravel_index(np.argmax(up), up.shape) in {(8, 8, 8), (9, 9, 9), (10, 10, 10), (11, 11, 11)}
    assert abs(float(back.sum()) - float(a.sum())) < 1.0


@pytest.mark.parametrize(("n", "spacing"), [(80, 2.0), (200, 1.0), (512, 0.5), (208, 1.0), (175, 1.3)])
def test_resampling_is_edge_aligned_both_ways(n: int, spacing: float) -> None:
    """No half-voxel shift: a field equal to each voxel centre's position (mm from the field of view's
    edge) reads the model voxel centres' positions on the model grid, and its own again on the way back."""
    x = (np.arange(n) + 0.5) * spacing
    a = np.broadcast_to(x[:, None, None], (n, 3, 3)).astype(np.float32).copy()
    target = model_shape(a.shape, (spacing, 1.0, 1.0), (1.5, 1.0, 1.0))
    down = resample(a, target)
    centres = (np.arange(target[0]) + 0.5) * (n * spacing / target[0])
    inner = slice(2, -2)  # the outermost voxels are clamped at the edge (mode "nearest")
    np.testing.assert_allclose(down[inner, 1, 1], centres[inner], atol=1e-3)
    back = resample(down, a.shape)
    np.testing.assert_allclose(back[3:-3, 1, 1], x[3:-3], atol=1e-3)


def test_segment_returns_a_mask_on_the_source_grid(tmp_path: Path) -> None:
    """A thresholding 'network' (sigmoid(2x - 10)) on bright spheres, on an oblique, flipped, anisotropic grid."""
    folder = write_model(
        tmp_path / "m", conv_model(kernel=1, scale=2.0, bias=-10.0),
        **{"input.spacing_mm": [1.5, 1.5, 1.5], "input.patch_size": [16, 16, 16], "output.min_lesion_volume_mm3": 20.0},
    )
    shape = (24, 40, 36)
    image, truth = blobs(shape, [(8, 12, 10), (15, 27, 24)], radius=4.5)
    image[2, 2, 2] = 30.0  # one bright voxel: below the minimum lesion size
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array([[0, 0, -1.0, 0], [c * 1.0, -s * 1.0, 0, 0], [s * 2.0, c * 2.0, 0, 0], [0, 0, 0, 1]]).T
    affine[:3, 3] = (10.0, -20.0, 30.0)
    vol = volume(image, affine)
    before = image.copy()
    mask = segment(vol, load_model(folder, providers="cpu"))
    np.testing.assert_array_equal(vol.array, before)  # the caller's volume is never normalised in place
    assert mask.labels.shape == shape and mask.volume is vol
    assert mask.label_info[0].type.value == "14799000"
    pred = mask.labels > 0
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    assert dice > 0.8
    assert not pred[:5, :5, :5].any()
    assert set(probabilities(vol, load_model(folder, providers="cpu"))) == {0}


def test_remove_small_by_volume() -> None:
    labels = np.zeros((10, 10, 10), dtype=np.uint16)
    labels[1:3, 1:3, 1:3] = 1  # 8 voxels
    labels[5:9, 5:9, 5:9] = 1  # 64 voxels
    out = remove_small(labels.copy(), voxel_volume_mm3=0.5, min_volume_mm3=10.0)
    assert out[1:3, 1:3, 1:3].sum() == 0 and out[5:9, 5:9, 5:9].all()


def test_normalisation_methods() -> None:
    from daemon.segment.manifest import Normalisation
    from daemon.segment.preprocess import normalise

    a = np.array([0.0, 1.0, 2.0, 3.0, 1000.0], dtype=np.float32).reshape(1, 1, 5)
    z = normalise(a.copy(), Normalisation(method="zscore", mask="nonzero"))
    assert z[0, 0, 0] == 0.0 and abs(float(z[0, 0, 1:].mean())) < 1e-5
    w = normalise(a.copy(), Normalisation(method="window", low=0.0, high=2.0))
    np.testing.assert_allclose(w.ravel(), [0, 0.5, 1, 1, 1])
    fixed = normalise(a.copy(), Normalisation(method="zscore", mask="all", clip=(0.0, 4.0), mean=2.0, std=2.0))
    np.testing.assert_allclose(fixed.ravel(), [-1, -0.5, 0, 0.5, 1])
    rng = np.random.default_rng(0)
    for air in (1_000, 20_000):  # the foreground statistics do not depend on how much noisy air there is
        img = np.concatenate([rng.uniform(0, 5, air), rng.normal(100, 10, 5_000)]).astype(np.float32)
        fg = normalise(img.reshape(1, 1, -1), Normalisation(method="zscore", mask="foreground")).ravel()
        assert abs(float(fg[air:].mean())) < 0.05 and abs(float(fg[air:].std()) - 1) < 0.05
    with pytest.raises(ValueError, match="fixed mean needs a fixed std"):
        Normalisation(method="zscore", mean=1.0)
