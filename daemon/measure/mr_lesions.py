"""Lesions recorded on another study (the brain MR route's) drawn on this study's grid (a brain PET).

What the lesion history keeps of each lesion (daemon.store.lesions, or an SR read back) is its
geometry, not its mask: the long and short axial callipers (end points in patient mm), the
volume and the centroid. Each lesion is placed as the ellipsoid of those: first semi-axis along
the long calliper, second along the short one (made perpendicular), third perpendicular to both
with the length that gives the recorded volume (4/3 pi a b c); the centroid as its centre. The
rigid alignment (daemon.measure.registration) maps this study's patient coordinates to the
recording study's. A lesion smaller than a voxel still gets the voxel holding its centre.

Pure: geometry and arrays in, masks out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from daemon.findings import Lesion
from daemon.measure.registration import Alignment
from daemon.volume import Volume

BoolArray = NDArray[np.bool_]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Ellipsoid:
    centre: F64  # recording study's patient LPS mm
    axes: F64  # 3x3, rows: unit directions
    radii: F64  # semi-axes mm


def _unit(v: F64) -> F64 | None:
    n = float(np.linalg.norm(v))
    return None if n < 1e-9 else v / n


def ellipsoid_of(lesion: Lesion) -> Ellipsoid | None:
    """The ellipsoid of a recorded lesion's callipers, volume and centroid; None without a long axis."""
    m = lesion.measurements
    la = m.long_axis
    if la is None:
        return None
    start, end = np.asarray(la.start, dtype=np.float64), np.asarray(la.end, dtype=np.float64)
    u = _unit(end - start)
    if u is None:
        return None
    a = la.length_mm / 2.0
    centre = np.asarray(m.centroid, dtype=np.float64) if m.centroid is not None else (start + end) / 2.0
    b, v = a, None
    if m.short_axis is not None:
        s = np.asarray(m.short_axis.end, dtype=np.float64) - np.asarray(m.short_axis.start, dtype=np.float64)
        v = _unit(s - float(s @ u) * u)
        b = m.short_axis.length_mm / 2.0
    if v is None:  # no short axis: any direction perpendicular to the long one, in the axial plane if it can
        v = _unit(np.cross(u, np.array([0.0, 0.0, 1.0])))
        v = v if v is not None else _unit(np.cross(u, np.array([0.0, 1.0, 0.0])))
    assert v is not None  # u is a unit vector: one of the two cross products is not zero
    w = np.cross(u, v)
    c = b
    if m.volume_ml is not None and m.volume_ml > 0 and a > 0 and b > 0:
        c = 3.0 * m.volume_ml * 1000.0 / (4.0 * math.pi * a * b)
        cap = max(a, (m.max_3d_diameter_mm or 2.0 * a) / 2.0)
        c = min(c, cap)  # never longer than the recorded longest 3D diameter
    return Ellipsoid(centre, np.stack([u, v, w]), np.array([a, max(b, 1e-3), max(c, 1e-3)]))


def _patient_grid(volume: Volume) -> F64:
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in volume.shape), indexing="ij")
    kji = np.stack([k, j, i], axis=-1)
    return np.asarray(kji @ volume.affine[:3, :3].T + volume.affine[:3, 3], dtype=np.float64)


def place(lesions: Sequence[Lesion], volume: Volume, alignment: Alignment) -> list[tuple[Lesion, BoolArray]]:
    """Each lesion's ellipsoid on `volume`'s grid (`alignment`: this grid's patient -> the recording
    study's patient coordinates); lesions without callipers are left out."""
    here = alignment.to_prior(_patient_grid(volume).reshape(-1, 3)).reshape((*volume.shape, 3))
    out = []
    for les in lesions:
        e = ellipsoid_of(les)
        if e is None:
            continue
        local = (here - e.centre) @ e.axes.T / e.radii
        mask = np.asarray(np.sum(local * local, axis=-1) <= 1.0, dtype=bool)
        centre = np.rint(volume.patient_to_index(alignment.to_followup(e.centre[None, :]))[0]).astype(int)
        if not mask.any() and all(0 <= c < n for c, n in zip(centre, volume.shape, strict=True)):
            mask[tuple(centre)] = True
        out.append((les, mask))
    return out
