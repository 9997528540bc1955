"""Sliding-window inference with overlap and Gaussian blending, in numpy.

The same scheme as MONAI's `sliding_window_inference` and nnU-Net: windows of the
patch size every patch*(1-overlap) voxels (the last one flush with the edge), each
prediction weighted by a Gaussian importance map (sigma = patch * sigma_scale, floored at 1e-3) and
the weighted sum divided by the summed weights. Memory is the output and one weight
map the size of the volume, plus one batch of patches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
_MIN_WEIGHT = 1e-3
Predictor = Callable[[FloatArray], FloatArray]  # (N, C, d, h, w) -> (N, C_out, d, h, w)


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets along one axis; the last window ends at the edge."""
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1.0 - overlap)))
    count = math.ceil((size - patch) / step) + 1
    return sorted({min(i * step, size - patch) for i in range(count)})


def importance_map(patch: tuple[int, int, int], blending: str, sigma_scale: float) -> FloatArray:
    """The per-voxel weight of a window's prediction; never zero."""
    if blending == "constant":
        return np.ones(patch, dtype=np.float32)
    axes = []
    for p in patch:
        x = np.arange(p, dtype=np.float64) - (p - 1) / 2.0
        sigma = max(p * sigma_scale, 1e-6)
        axes.append(np.exp(-0.5 * (x / sigma) ** 2))
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    w /= w.max()
    # floor as MONAI's compute_importance_map: window corners never vanish, so where only
    # corners overlap the windows count equally rather than by ratios of tiny numbers
    return np.asarray(np.maximum(w, _MIN_WEIGHT), dtype=np.float32)


def windows(shape: tuple[int, int, int], patch: tuple[int, int, int], overlap: float) -> Iterator[tuple[slice, ...]]:
    starts = [window_starts(s, p, overlap) for s, p in zip(shape, patch, strict=True)]
    for z, y, x in itertools.product(*starts):
        yield (slice(z, z + patch[0]), slice(y, y + patch[1]), slice(x, x + patch[2]))


def sliding_window(
    image: FloatArray,
    patch: tuple[int, int, int],
    predict: Predictor,
    overlap: float = 0.25,
    batch_size: int = 1,
    blending: str = "gaussian",
    sigma_scale: float = 0.125,
) -> FloatArray:
    """Blend `predict` over windows of `image` (C, D, H, W); returns (C_out, D, H, W)."""
    if image.ndim != 4:
        raise ValueError(f"image is (C, D, H, W); got shape {image.shape}")
    spatial = image.shape[1:]
    pad = [(0, 0)] + [(0, max(0, p - s)) for s, p in zip(spatial, patch, strict=True)]
    padded = np.pad(image, pad) if any(b for _, b in pad) else image
    shape = (int(padded.shape[1]), int(padded.shape[2]), int(padded.shape[3]))
    weight = importance_map(patch, blending, sigma_scale)
    out: FloatArray | None = None
    wsum = np.zeros(shape, dtype=np.float32)
    batch: list[tuple[slice, ...]] = []

    def flush() -> None:
        nonlocal out
        x = np.stack([padded[(slice(None), *w)] for w in batch]).astype(np.float32, copy=False)
        y = np.asarray(predict(np.ascontiguousarray(x)), dtype=np.float32)
        if out is None:
            out = np.zeros((y.shape[1], *shape), dtype=np.float32)
        for n, w in enumerate(batch):
            out[(slice(None), *w)] += y[n] * weight
            wsum[w] += weight
        batch.clear()

    for w in windows(shape, patch, overlap):
        batch.append(w)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    assert out is not None
    out /= wsum
    return out[:, : spatial[0], : spatial[1], : spatial[2]]
