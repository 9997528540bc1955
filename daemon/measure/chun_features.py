"""Chun morphologic features of a liver lesion on portal-venous CT (chun.md §4).

Quantitative surrogates of what a reader judges in Chun's groups: attenuation,
heterogeneity, sharpness of the tumour-liver interface and a peripheral rim. They
are measurements, not a classification: no published feature or cut-off defines the
groups (chun.md §4); `daemon.pipelines.liver_response.propose_group` turns them into
a *proposed* group with engineering thresholds from rules/chun.yaml.

Every shell is in millimetres on the volume's grid. A voxel's depth is the distance
from its centre to the mask's border, the faces between lesion and non-lesion voxels
(`depth_mm`): the first layer on either side is half a voxel deep whatever the spacing,
so shells mean the same on a 0.8 mm and a 3 mm grid. Features (HU, HU/mm):

- hu_mean, hu_sd: inside the lesion eroded by one voxel (partial volume left out); on the
  whole mask when the eroded one holds fewer than `min_voxels` voxels (no hu_sd under that);
- lesion_to_liver_hu: hu_mean minus the liver reference, the liver (or, without a
  liver mask, everything not lesion) 5 to 15 mm outside the border;
- interface_hu_per_mm: the HU profile across the border (mean HU per depth bin, one bin =
  the grid's largest spacing, within +/- 9 mm) and the mean slope of its 10-90 % rise from
  the lesion (hu_mean) to the liver: a sharp interface gives a high value, a thick
  ill-defined one a low value. The rise is found on the profile, not at the mask's border,
  so the value holds when the mask is off by a voxel;
- rim_vs_core_hu, rim_vs_liver_hu: the mean of the lesion's 0-3 mm inner shell minus
  the mean deeper than 3 mm (the core), and minus the liver reference.

A feature that cannot be measured (no core in a small lesion, no liver around) is
left out, never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.measure.lesions import Box, MeasuredLesion
from daemon.volume import Volume

BoolArray = NDArray[np.bool_]
F64 = NDArray[np.float64]

FEATURES = ("hu_mean", "hu_sd", "lesion_to_liver_hu", "interface_hu_per_mm", "rim_vs_core_hu", "rim_vs_liver_hu")


@dataclass(frozen=True)
class Shells:
    """Where each feature is measured (mm from the border): rules/chun.yaml `features`."""

    rim_mm: float  # the peripheral rim: the lesion's 0-rim_mm inner shell
    interface_mm: float  # the interface profile spans +/- this around the border
    liver_mm: tuple[float, float]  # the liver reference shell, outside the border
    min_voxels: int = 8  # technical: fewer voxels than this in a region or a profile bin: not used


def _box(lesion: MeasuredLesion, spacing: F64, reach_mm: float, shape: tuple[int, int, int]) -> Box:
    m = [int(math.ceil(reach_mm / s)) + 1 for s in spacing]
    s = [slice(max(b.start - n, 0), min(b.stop + n, size))
         for b, n, size in zip(lesion.box, m, shape, strict=True)]
    return s[0], s[1], s[2]


def _local_mask(lesion: MeasuredLesion, box: Box) -> BoolArray:
    out = np.zeros(tuple(b.stop - b.start for b in box), dtype=bool)
    at = tuple(slice(lb.start - b.start, lb.stop - b.start) for lb, b in zip(lesion.box, box, strict=True))
    out[at] = lesion.local_mask
    return out


def depth_mm(inside: BoolArray, spacing: F64) -> F64:
    """Signed distance (mm) from each voxel centre to the mask's border: negative inside, positive outside.

    The distance to the nearest voxel centre on the other side (exact Euclidean distance
    transform) less that voxel's half-extent along the direction to it, so the border is the
    voxels' shared faces: exact for the first layer along each axis, within half a voxel
    elsewhere on an anisotropic grid.
    """
    out = np.zeros(inside.shape, dtype=np.float64)
    for region, sign in ((inside, -1.0), (~inside, 1.0)):
        if not region.any() or region.all():
            continue
        _, idx = ndimage.distance_transform_edt(region, sampling=spacing, return_indices=True)
        here = np.argwhere(region)
        v = (np.asarray(idx)[:, region].T - here) * spacing  # mm, to the nearest voxel across the border
        d = np.linalg.norm(v, axis=1)
        u = np.abs(v) / d[:, None]
        half = np.min((spacing / 2.0) / np.maximum(u, 1e-12), axis=1)
        out[region] = sign * (d - half)
    return out


def _profile(values: F64, depth: F64, bin_mm: float, min_voxels: int) -> tuple[F64, F64]:
    """(mean depth, mean value) of each depth bin holding at least min_voxels voxels, inside to outside."""
    bins = np.floor(depth / bin_mm).astype(np.int64)
    bins -= bins.min()
    count = np.bincount(bins)
    keep = count >= max(min_voxels, 1)
    safe = np.maximum(count, 1)
    where = np.bincount(bins, weights=depth) / safe
    mean = np.bincount(bins, weights=values) / safe
    return where[keep], mean[keep]


def _at(where: F64, p: F64, b: int, level: float) -> float:
    """Depth where the profile crosses `level` between bins b and b + 1 (linear)."""
    step = float(p[b + 1] - p[b])
    t = 0.0 if step == 0 else (level - float(p[b])) / step
    return float(where[b] + t * (where[b + 1] - where[b]))


def rise_slope(where: F64, mean: F64, lesion: float, outer: float) -> float | None:
    """The 10-90 % rise from the lesion's level to the outer level along a depth profile, in value per mm.

    The 90 % point is where the profile first reaches it going outwards; the 10 % point the last
    crossing before it (the innermost bin when the rise starts deeper than the profile).
    """
    sign = 1.0 if outer >= lesion else -1.0
    p = sign * mean
    lo, hi = sign * (lesion + 0.1 * (outer - lesion)), sign * (lesion + 0.9 * (outer - lesion))
    top = next((b for b in range(len(p)) if p[b] >= hi), None)
    if top is None or top == 0 or hi <= lo:
        return None
    d_hi = _at(where, p, top - 1, hi)
    bottom = next((b for b in range(top - 1, -1, -1) if p[b] <= lo), None)
    d_lo = float(where[0]) if bottom is None else _at(where, p, bottom, lo)
    return (hi - lo) / (d_hi - d_lo) if d_hi > d_lo else None


def _mean(values: F64, region: BoolArray, min_voxels: int) -> float | None:
    return float(values[region].mean()) if int(np.count_nonzero(region)) >= min_voxels else None


def lesion_features(
    image: Volume, liver: BoolArray | None, lesion: MeasuredLesion, shells: Shells
) -> dict[str, float]:
    """The Chun features of one lesion (see the module doc); `liver` on the image's grid, lesions excluded."""
    spacing = np.asarray(image.spacing, dtype=np.float64)
    box = _box(lesion, spacing, max(shells.interface_mm, shells.liver_mm[1]), image.shape)
    inside = _local_mask(lesion, box)
    if not inside.any() or inside.all():
        return {}
    hu = np.asarray(image.array[box], dtype=np.float64)
    depth = depth_mm(inside, spacing)
    around = ~inside if liver is None else (~inside & np.asarray(liver[box], dtype=bool))
    well_inside = ndimage.binary_erosion(inside)
    if np.count_nonzero(well_inside) < shells.min_voxels:
        well_inside = inside  # too small to erode (or already under-segmented): the whole mask
    out = {"hu_mean": float(hu[well_inside].mean())}
    if np.count_nonzero(well_inside) >= shells.min_voxels:
        out["hu_sd"] = float(hu[well_inside].std())
    lo, hi = shells.liver_mm
    liver_ref = _mean(hu, around & (depth >= lo) & (depth <= hi), shells.min_voxels)
    rim = _mean(hu, inside & (depth >= -shells.rim_mm), 1)
    core = _mean(hu, inside & (depth < -shells.rim_mm), shells.min_voxels)
    band = (inside | around) & (np.abs(depth) <= shells.interface_mm)
    outer = liver_ref if liver_ref is not None else _mean(hu, around & band, 1)
    slope = None
    if outer is not None:
        where, mean = _profile(hu[band], depth[band], float(spacing.max()) / 2.0, shells.min_voxels)
        slope = rise_slope(where, mean, out["hu_mean"], outer)
    if liver_ref is not None:
        out["lesion_to_liver_hu"] = out["hu_mean"] - liver_ref
    if slope is not None:
        out["interface_hu_per_mm"] = slope
    if rim is not None and core is not None:
        out["rim_vs_core_hu"] = rim - core
    if rim is not None and liver_ref is not None:
        out["rim_vs_liver_hu"] = rim - liver_ref
    return out
