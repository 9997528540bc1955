"""The manifest's preprocessing steps (N4, rescale, background), on SYNTHETIC volumes:
each step's effect measured, the manifest's order kept, bad steps refused with file and line,
and a manifest without steps running as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models import blobs, conv_model, volume, write_model

from daemon.segment import ModelError, load_manifest, load_model, segment
from daemon.segment.manifest import BackgroundStep, N4Step, RescaleStep
from daemon.segment.preparation import foreground, n4, prepare, remove_background, rescale

N = 48
C = (N - 1) / 2


def _radius() -> np.ndarray:  # type: ignore[type-arg]
    z, y, x = np.indices((N, N, N), dtype=np.float32)
    return np.asarray(np.sqrt((z - C) ** 2 + (y - C) ** 2 + (x - C) ** 2))


def _biased_head(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """SYNTHETIC: a 'head' (100) around a 'core' (60), times a smooth multiplicative field
    exp(0.4 x + 0.2 z) over the field of view (about +/-50 % across the head), plus noise."""
    r = _radius()
    head, core = r < 20, r < 10
    image = np.where(core, 60.0, np.where(head, 100.0, 0.0)).astype(np.float32)
    z, _, x = np.indices((N, N, N), dtype=np.float32)
    field = np.exp(0.4 * (x - C) / C + 0.2 * (z - C) / C)
    noise = np.random.default_rng(seed).normal(0.0, 1.0, image.shape) * head
    return (image * field + noise).astype(np.float32), head & ~core & (r < 18), core & (r < 8)


def _cv(a: np.ndarray, m: np.ndarray) -> float:  # type: ignore[type-arg]
    v = a[m]
    return float(v.std() / v.mean())


def test_n4_removes_most_of_a_known_bias_field() -> None:
    image, ring, core = _biased_head()
    before = (_cv(image, ring), _cv(image, core))
    out = n4(image, N4Step(step="n4", shrink_factor=4, iterations=(50, 50, 50, 50)), (1.0, 1.0, 1.0))
    after = (_cv(out, ring), _cv(out, core))
    # measured: ring 0.164 -> 0.015, core 0.070 -> 0.018 (the noise alone is 0.01 in the ring)
    assert after[0] < before[0] / 4 and after[1] < before[1] / 2
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.all(out[image == 0] == 0)  # air stays air
    assert np.array_equal(out, n4(image, N4Step(step="n4"), (1.0, 1.0, 1.0)))  # the same image, the same field


def test_rescale_maps_the_percentiles_to_the_range() -> None:
    a = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    full = rescale(a, RescaleStep(step="rescale"))
    assert full.min() == 0.0 and full.max() == pytest.approx(255.0)
    assert full[0, 0, 1] == pytest.approx(255.0 / 999.0)
    clipped = rescale(a, RescaleStep(step="rescale", percentiles=(10.0, 90.0), range=(-1.0, 1.0)))
    lo, hi = np.percentile(a, [10.0, 90.0])
    assert clipped.min() == -1.0 and clipped.max() == 1.0
    assert np.all(clipped[a <= lo] == -1.0) and np.all(clipped[a >= hi] == 1.0)
    assert np.count_nonzero((clipped > -1.0) & (clipped < 1.0)) == np.count_nonzero((a > lo) & (a < hi))
    flat = rescale(np.full((4, 4, 4), 7.0, dtype=np.float32), RescaleStep(step="rescale", range=(3.0, 9.0)))
    assert np.all(flat == 3.0)  # a constant image goes to the bottom of the range, not NaN


def test_rescale_on_nonzero_voxels_ignores_the_padding() -> None:
    a = np.zeros((10, 10, 10), dtype=np.float32)
    a[2:8, 2:8, 2:8] = np.linspace(100.0, 200.0, 216, dtype=np.float32).reshape(6, 6, 6)
    out = rescale(a, RescaleStep(step="rescale", percentiles=(0.0, 100.0), mask="nonzero"))
    assert out[2, 2, 2] == 0.0 and out[7, 7, 7] == pytest.approx(255.0)
    assert np.all(out[a == 0] == 0.0)  # below the lowest nonzero value: clipped to the bottom


def test_background_keeps_the_head_with_its_holes_and_drops_specks() -> None:
    r = _radius()
    a = np.where(r < 20, 100.0, 2.0).astype(np.float32)
    a[r < 5] = 1.0  # a dark ventricle inside the head
    a[2:4, 2:4, 2:4] = 150.0  # a bright speck in the air (another component)
    for step in (BackgroundStep(step="background"), BackgroundStep(step="background", threshold="fraction")):
        fg = foreground(a, step)
        assert np.array_equal(fg, r < 20), step.threshold
    out = remove_background(a, BackgroundStep(step="background", value=-5.0))
    assert np.all(out[r >= 20] == -5.0) and np.all(out[r < 5] == 1.0) and a[2, 2, 2] == 150.0
    loose = foreground(a, BackgroundStep(step="background", largest_component=False, fill_holes=False))
    assert loose[2, 2, 2] and not loose[int(C), int(C), int(C)]


def test_steps_run_in_the_manifest_order() -> None:
    r = _radius()
    a = np.where(r < 20, 100.0, 3.0).astype(np.float32)
    bg = BackgroundStep(step="background", value=0.0)
    rs = RescaleStep(step="rescale", range=(10.0, 255.0))
    first_bg = prepare(a, (bg, rs), (1.0, 1.0, 1.0))
    first_rs = prepare(a, (rs, bg), (1.0, 1.0, 1.0))
    assert np.all(first_bg[r >= 20] == 10.0)  # background zeroed, then the range's bottom
    assert np.all(first_rs[r >= 20] == 0.0)  # rescaled, then the background set to 0
    assert np.all(first_bg[r < 20] == 255.0) and np.all(first_rs[r < 20] == 255.0)
    assert a.max() == 100.0  # the input is never written


def test_a_manifest_without_steps_runs_as_before(tmp_path: Path) -> None:
    image, truth = blobs((24, 24, 24), [(12.0, 12.0, 12.0)], 5.0)
    plain = load_model(write_model(tmp_path / "plain", conv_model(bias=-5.0)), providers="cpu")
    assert plain.manifest.input.preprocessing == ()
    assert prepare(image, (), (1.0, 1.0, 1.0)) is image
    assert np.array_equal(segment(volume(image), plain).labels > 0, truth)
    for name in ("demo-brain-mets", "demo-liver-mets"):  # the shipped manifests have no steps
        manifest, _ = load_manifest(Path(__file__).resolve().parents[2] / "models" / name)
        assert manifest.input.preprocessing == ()


def test_the_steps_ride_the_segmenter(tmp_path: Path) -> None:
    """y = x, no activation, threshold 0.5: without steps every voxel of the SYNTHETIC noisy
    blob volume above 0.5 is 'lesion'; with a 0-1 rescale between the 1st and 99.9th
    percentiles only the blob passes."""
    image, truth = blobs((24, 24, 24), [(12.0, 12.0, 12.0)], 5.0)
    over: dict[str, Any] = {"output.activation": "none"}
    raw = load_model(write_model(tmp_path / "raw", conv_model(), **over), providers="cpu")
    steps = [{"step": "rescale", "percentiles": [1.0, 99.9], "range": [0.0, 1.0]}]
    ready = load_model(write_model(tmp_path / "ready", conv_model(), **over, **{"input.preprocessing": steps}),
                       providers="cpu")
    assert ready.manifest.input.preprocessing == (RescaleStep(step="rescale", percentiles=(1.0, 99.9), range=(0.0, 1.0)),)
    assert np.count_nonzero(segment(volume(image), raw).labels) > 2 * truth.sum()
    assert np.array_equal(segment(volume(image), ready).labels > 0, truth)


def _refused(tmp_path: Path, steps: list[dict[str, Any]]) -> tuple[str, str]:
    folder = write_model(tmp_path / "bad", conv_model(), **{"input.preprocessing": steps})
    with pytest.raises(ModelError) as err:
        load_manifest(folder)
    return str(err.value), (folder / "model.yaml").read_text()


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_bad_steps_are_refused_with_file_key_and_line(tmp_path: Path) -> None:
    msg, text = _refused(tmp_path, [{"step": "n4", "shrink_factor": 0}])
    assert f"model.yaml:{_line(text, 'shrink_factor: 0')}: input.preprocessing.0.shrink_factor:" in msg
    msg, text = _refused(tmp_path, [{"step": "rescale"}, {"step": "background", "treshold": "otsu"}])
    assert f"model.yaml:{_line(text, 'treshold')}: input.preprocessing.1.treshold: unknown key" in msg
    msg, text = _refused(tmp_path, [{"step": "skull-strip"}])
    assert f"model.yaml:{_line(text, 'skull-strip')}: input.preprocessing.0" in msg
    assert "n4" in msg and "rescale" in msg and "background" in msg  # what is allowed
    msg, text = _refused(tmp_path, [{"step": "rescale", "percentiles": [99.0, 1.0]}])
    assert "input.preprocessing.0" in msg and "low < high" in msg and "model.yaml:" in msg
    msg, _ = _refused(tmp_path, [{"step": "n4", "iterations": [50, 0]}])
    assert "iterations are >= 1" in msg
    msg, text = _refused(tmp_path, [{"threshold": "otsu"}])  # a step that does not say which
    assert f"model.yaml:{_line(text, 'threshold: otsu')}: input.preprocessing.0:" in msg and "'step'" in msg
