"""From a Volume to the network's grid and back: reorient, resample, normalise.

Reorientation only permutes and flips array axes (no interpolation): each array
axis goes to the patient axis it is closest to, so an oblique series keeps its
own obliquity, as nnU-Net and MONAI's Orientation transform do. Resampling maps
the same field of view (voxel edges to voxel edges) onto the model's spacing, so
the way back lands exactly on the source grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.segment.manifest import InputSpec, Normalisation

# patient axis (0=x, 1=y, 2=z in LPS) and sign for each orientation letter ("to" convention)
_LETTER = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Reorientation:
    """Array axes permutation then flips taking a (k, j, i) array to the model's orientation."""

    perm: tuple[int, int, int]  # target array axis t comes from source axis perm[t]
    flip: tuple[bool, bool, bool]  # per target axis

    def apply(self, a: NDArray[np.generic]) -> NDArray[np.generic]:
        out = np.transpose(a, self.perm)
        axes = tuple(t for t in range(3) if self.flip[t])
        return np.flip(out, axes) if axes else out

    def undo(self, a: NDArray[np.generic]) -> NDArray[np.generic]:
        axes = tuple(t for t in range(3) if self.flip[t])
        out = np.flip(a, axes) if axes else a
        return np.transpose(out, np.argsort(self.perm))


def reorientation(affine: NDArray[np.float64], orientation: str) -> Reorientation:
    """How to bring an array with this affine ((k, j, i) -> LPS) to `orientation` (letters for i, j, k)."""
    m = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    weight = np.abs(m)  # [patient axis, array axis]
    patient_of = [-1, -1, -1]
    for _ in range(3):  # greedy assignment, largest cosine first
        p, a = np.unravel_index(int(np.argmax(weight)), weight.shape)
        patient_of[int(a)] = int(p)
        weight[p, :] = -1
        weight[:, a] = -1
    target = [_LETTER[c] for c in reversed(orientation.upper())]  # array axes (k, j, i)
    perm = []
    flip = []
    for q, sign in target:
        src = patient_of.index(q)
        perm.append(src)
        flip.append(bool(np.sign(m[q, src]) != sign))
    return Reorientation(perm=(perm[0], perm[1], perm[2]), flip=(flip[0], flip[1], flip[2]))


def model_shape(shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...]) -> tuple[int, int, int]:
    s = [max(1, int(round(n * sp / t))) for n, sp, t in zip(shape, spacing, target, strict=True)]
    return s[0], s[1], s[2]


def resample(a: FloatArray, shape: tuple[int, int, int], order: int = 1) -> FloatArray:
    """Resample the same field of view onto `shape` (edge-aligned, linear by default)."""
    if tuple(a.shape) == shape:
        return a
    factors = [n / o for n, o in zip(shape, a.shape, strict=True)]
    out = ndimage.zoom(a, factors, order=order, mode="nearest", grid_mode=True, prefilter=False)
    return np.asarray(out, dtype=np.float32)


def normalise(a: FloatArray, spec: Normalisation) -> FloatArray:
    """Intensity normalisation in place where possible; returns float32."""
    if spec.method == "none":
        return a
    if spec.method == "window":
        assert spec.low is not None and spec.high is not None
        np.clip(a, spec.low, spec.high, out=a)
        a -= spec.low
        a /= spec.high - spec.low
        return a
    if spec.mask == "nonzero":
        sel = a[a != 0]
    elif spec.mask == "foreground":
        sel = a[a > spec.foreground_fraction * float(np.percentile(a, 99.0))]
    else:
        sel = a.ravel()
    if sel.size == 0:
        sel = a.ravel()
    if spec.method == "percentile":
        assert spec.low is not None and spec.high is not None
        lo, hi = np.percentile(sel, [spec.low, spec.high])
        np.clip(a, lo, hi, out=a)
        a -= lo
        a /= max(float(hi - lo), 1e-6)
        return a
    if spec.clip is not None:
        np.clip(a, spec.clip[0], spec.clip[1], out=a)
        sel = np.clip(sel, spec.clip[0], spec.clip[1])
    if spec.clip_percentiles is not None:
        lo, hi = np.percentile(sel, spec.clip_percentiles)
        np.clip(a, lo, hi, out=a)
        sel = np.clip(sel, lo, hi)
    if spec.mean is not None and spec.std is not None:
        mean, std = spec.mean, spec.std
    else:
        mean, std = float(sel.mean()), float(sel.std())
    if spec.mask == "nonzero":
        inside = a != 0
        a[inside] = (a[inside] - mean) / max(std, 1e-6)
    else:
        a -= mean
        a /= max(std, 1e-6)
    return a


def spacing_in_array_order(spec: InputSpec) -> tuple[float, float, float]:
    """The manifest's (i, j, k) spacing as (k, j, i), the reoriented array's order."""
    i, j, k = spec.spacing_mm
    return k, j, i
