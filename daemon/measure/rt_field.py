"""The irradiated field on the study's grid: an RT structure's closed planar contours rasterised
onto a volume's voxels, and the lesions it covers (pure: arrays in, arrays and numbers out).

A contour set is planar (PS3.3 C.8.8.6: CLOSED_PLANAR contours, one plane each). The voxels of
the study's grid are mapped into the structure's frame (`to_grid` maps the structure's patient
coordinates onto the study's; its inverse is applied to the voxel centres), each voxel is given
to its nearest contour plane within half the plane spacing, and it is inside when it lies inside
an odd number of that plane's contours (holes drawn as inner contours stay out). So a structure
drawn on a prior study and a rigid registration onto this one need no resampling of a mask.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def is_treated_volume(name: str, interpreted_type: str, types: Sequence[str], name_patterns: Sequence[str]) -> bool:
    """An ROI is a treated volume when its RT ROI Interpreted Type is one of `types`, or its name
    matches one of `name_patterns` (regular expressions, searched case-insensitively)."""
    if interpreted_type.strip().upper() in {t.upper() for t in types}:
        return True
    return any(re.search(p, name, flags=re.IGNORECASE) for p in name_patterns)


def _normal(contours: Sequence[FloatArray]) -> FloatArray:
    """The contours' plane normal (Newell's method on the largest contour)."""
    pts = max(contours, key=len)
    nxt = np.roll(pts, -1, axis=0)
    n = np.array([
        np.sum((pts[:, 1] - nxt[:, 1]) * (pts[:, 2] + nxt[:, 2])),
        np.sum((pts[:, 2] - nxt[:, 2]) * (pts[:, 0] + nxt[:, 0])),
        np.sum((pts[:, 0] - nxt[:, 0]) * (pts[:, 1] + nxt[:, 1])),
    ])
    norm = float(np.linalg.norm(n))
    if norm < 1e-9:
        raise ValueError("the contours are degenerate (no area)")
    return np.asarray(n / norm, dtype=np.float64)


def _basis(normal: FloatArray) -> tuple[FloatArray, FloatArray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    return np.asarray(u, dtype=np.float64), np.asarray(np.cross(normal, u), dtype=np.float64)


def inside_polygon(px: FloatArray, py: FloatArray, polygon: FloatArray) -> BoolArray:
    """Even-odd test of the points (px, py) against a closed polygon (n, 2)."""
    inside = np.zeros(px.shape, dtype=bool)
    xs, ys = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    for xi_, yi_, xj_, yj_ in zip(xs, ys, xj, yj, strict=True):
        if yi_ == yj_:
            continue
        crosses = (yi_ > py) != (yj_ > py)
        at = (xj_ - xi_) * (py - yi_) / (yj_ - yi_) + xi_
        inside ^= crosses & (px < at)
    return inside


def _homogeneous(matrix: FloatArray, xyz: FloatArray) -> FloatArray:
    return np.asarray(xyz @ matrix[:3, :3].T + matrix[:3, 3], dtype=np.float64)


def rasterise(contours: Sequence[FloatArray], to_grid: FloatArray, affine: FloatArray,
              shape: tuple[int, int, int]) -> BoolArray:
    """The voxels of the grid (`affine`: (k, j, i, 1) -> patient, `shape`) inside the structure
    drawn by `contours` ((n, 3) patient mm each, in the structure's frame); `to_grid` (4x4) maps the
    structure's patient coordinates onto the grid's. Raises ValueError on degenerate contours."""
    polys = [np.asarray(c, dtype=np.float64) for c in contours if len(c) >= 3]
    if not polys:
        raise ValueError("no contour of 3 points or more")
    normal = _normal(polys)
    u, v = _basis(normal)
    planes = np.array([float(np.mean(p @ normal)) for p in polys])
    levels = np.unique(np.round(planes, 2))
    spacing = float(np.median(np.diff(levels))) if len(levels) > 1 else 0.0
    voxel = np.abs(np.linalg.svd(affine[:3, :3], compute_uv=False))
    half = spacing / 2.0 if spacing > 0 else float(min(voxel)) / 2.0
    mask = np.zeros(shape, dtype=bool)
    to_index = np.asarray(np.linalg.inv(affine), dtype=np.float64)
    corners = _homogeneous(to_index, _homogeneous(to_grid, np.vstack(polys)))
    margin = int(np.ceil(half / float(min(voxel)))) + 1
    lo = np.maximum(np.floor(corners.min(axis=0)).astype(int) - margin, 0)
    hi = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + margin + 1, np.array(shape))
    if np.any(hi <= lo):
        return mask  # the structure lies outside the grid
    kk, jj, ii = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij")
    idx = np.stack([kk.ravel(), jj.ravel(), ii.ravel()], axis=1).astype(np.float64)
    from_grid = np.asarray(np.linalg.inv(to_grid), dtype=np.float64)
    in_structure = _homogeneous(from_grid, _homogeneous(affine, idx))
    w = in_structure @ normal
    pu, pv = in_structure @ u, in_structure @ v
    nearest = levels[np.abs(w[:, None] - levels[None, :]).argmin(axis=1)]
    near = np.abs(w - nearest) <= half + 1e-6
    inside = np.zeros(len(idx), dtype=bool)
    for level in levels:
        sel = near & (nearest == level)
        if not sel.any():
            continue
        hit = np.zeros(int(sel.sum()), dtype=bool)
        for poly, at in zip(polys, planes, strict=True):
            if abs(round(at, 2) - level) < 1e-9:
                hit ^= inside_polygon(pu[sel], pv[sel], np.stack([poly @ u, poly @ v], axis=1))
        inside[np.flatnonzero(sel)] = hit
    picked = idx[inside].astype(int)
    mask[picked[:, 0], picked[:, 1], picked[:, 2]] = True
    return mask


@dataclass(frozen=True)
class Overlap:
    label: int  # the lesion's label in the label volume
    fraction: float  # of the lesion's voxels inside the treated volume


def overlaps(labels: NDArray[Any], treated: BoolArray) -> list[Overlap]:
    """Per lesion label (> 0) with any voxel in `treated`, the fraction of its voxels inside."""
    counts = np.bincount(labels.ravel().astype(np.int64))
    inside = np.bincount(labels[treated].ravel().astype(np.int64), minlength=len(counts))
    return [Overlap(n, float(inside[n]) / float(counts[n])) for n in range(1, len(counts))
            if counts[n] and inside[n]]
