"""Intensity statistics in a lesion: HU or signal statistics, SUV max / mean / peak.

SUV peak follows PERCIST 1.0 (Wahl 2009): the mean in a spherical VOI of 1 cm^3
(the size is an argument, from rules/percist.yaml) placed where that mean is
highest, its centre inside the lesion. The sphere is sampled with sub-voxel
weights (each voxel's fraction inside the sphere), so its volume is the nominal
one on any grid, not a count of voxel centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.volume import Vec3, Volume

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_SUBSAMPLES = 7  # per axis, for the fractional sphere weights


def basic_stats(values: NDArray[np.floating] | NDArray[np.integer], prefix: str) -> dict[str, float]:
    """mean, sd (population), min, max of the values under names '<prefix>_mean' etc."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {}
    return {
        f"{prefix}_mean": float(v.mean()),
        f"{prefix}_sd": float(v.std()),
        f"{prefix}_min": float(v.min()),
        f"{prefix}_max": float(v.max()),
    }


def sphere_weights(spacing: Vec3, volume_ml: float) -> FloatArray:
    """A kernel on the voxel grid: each voxel's fraction inside a sphere of the given volume.

    spacing is (k, j, i) in mm; the sphere is centred on the kernel's centre voxel.
    """
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    half = [int(math.ceil(radius / s + 0.5)) for s in spacing]
    sub = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    axes = []
    for n, s in enumerate(spacing):
        centres = np.arange(-half[n], half[n] + 1, dtype=np.float64)
        axes.append(((centres[:, None] + sub[None, :]) * s).ravel())
    dk, dj, di = np.meshgrid(*axes, indexing="ij")
    inside = (dk**2 + dj**2 + di**2 <= radius**2).astype(np.float64)
    shape = tuple(2 * h + 1 for h in half)
    frac = inside.reshape(shape[0], _SUBSAMPLES, shape[1], _SUBSAMPLES, shape[2], _SUBSAMPLES)
    return np.asarray(frac.mean(axis=(1, 3, 5)), dtype=np.float64)


def sphere_means(image: FloatArray, spacing: Vec3, volume_ml: float) -> FloatArray:
    """At every voxel, the mean of the image in a sphere of that volume centred there."""
    w = sphere_weights(spacing, volume_ml)
    w = w / w.sum()
    return np.asarray(ndimage.correlate(image, w, mode="nearest"), dtype=np.float64)


def peak(
    image: FloatArray, mask: BoolArray, spacing: Vec3, volume_ml: float
) -> tuple[float, tuple[int, int, int]] | None:
    """The highest sphere mean whose centre lies in the mask, and that centre (k, j, i).

    Only the bounding box of the mask (plus the sphere's reach) is filtered.
    """
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    w = sphere_weights(spacing, volume_ml)
    reach = np.array(w.shape) // 2
    lo = np.maximum(idx.min(axis=0) - reach, 0)
    hi = np.minimum(idx.max(axis=0) + reach + 1, np.array(image.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    means = ndimage.correlate(
        np.asarray(image[box], dtype=np.float64), w / w.sum(), mode="nearest"
    )
    means = np.where(mask[box], means, -np.inf)
    flat = int(np.argmax(means))
    local = np.unravel_index(flat, means.shape)
    centre = tuple(int(local[n] + lo[n]) for n in range(3))
    return float(means[local]), (centre[0], centre[1], centre[2])


def lesion_intensity(
    image: Volume,
    mask: BoolArray,
    quantity: str,
    *,
    peak_sphere_ml: float | None = None,
) -> dict[str, float]:
    """Statistics of `quantity` in the mask: '<q>_mean/_sd/_min/_max' and, if asked, '<q>_peak'.

    quantity names the unit of the image array: "hu" for CT, "suv" for a PET volume
    already converted to SUV, "signal" for MRI. The peak is computed for any
    quantity when peak_sphere_ml is given (PERCIST: 1 cm^3 for SUV/SUL).
    """
    arr = np.asarray(image.array, dtype=np.float64)
    out = basic_stats(arr[mask], quantity)
    if out and peak_sphere_ml is not None:
        found = peak(arr, mask, image.spacing, peak_sphere_ml)
        if found is not None:
            out[f"{quantity}_peak"] = found[0]
    return out


def total_lesion_glycolysis(suv_mean: float, volume_ml: float) -> float:
    """TLG = SUVmean x MTV (ml)."""
    return suv_mean * volume_ml


def stats_names(quantity: str) -> Sequence[str]:
    return [f"{quantity}_{s}" for s in ("mean", "sd", "min", "max")]
