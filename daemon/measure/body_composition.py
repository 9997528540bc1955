"""The body on a CT: its outline, where the neck and the legs are, and body composition.

Pure functions on `Volume`s. Body composition uses the standard HU windows (skeletal
muscle -29..+150 HU, adipose tissue -190..-30 HU; the windows come from the rules file
with their citation) per axial slice inside the body outline: subcutaneous fat is the fat
connected to the skin, skeletal muscle the soft tissue that touches it, visceral fat the
rest of the fat. Slices at or above the neck (the narrowest body section in the cranial
part of the field) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.volume import Volume

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]

# per-slice connectivity: 4-neighbours in the axial plane, nothing across slices
_PLANE = np.zeros((3, 3, 3), dtype=bool)
_PLANE[1] = ndimage.generate_binary_structure(2, 1)
_MAX_SAMPLES = 2_000_000  # voxels of a compartment sampled on the PET for its mean


@dataclass(frozen=True)
class Compartments:
    body: BoolArray
    subcutaneous_fat: BoolArray
    visceral_fat: BoolArray
    skeletal_muscle: BoolArray
    below_neck: BoolArray  # the slices measured (axial, k)
    voxel_ml: float

    def volumes_ml(self) -> dict[str, float]:
        return {name: float(np.count_nonzero(getattr(self, name))) * self.voxel_ml
                for name in ("subcutaneous_fat", "visceral_fat", "skeletal_muscle")}

    @property
    def cavity(self) -> BoolArray:
        """Inside the body below the neck, neither subcutaneous fat nor muscle: the viscera
        (with visceral fat) -- and bone or tissue not touching subcutaneous fat."""
        return np.asarray(self.body & self.below_neck[:, None, None] & ~self.subcutaneous_fat
                          & ~self.skeletal_muscle)


def cranial_sign(volume: Volume) -> int:
    """+1 when increasing k goes towards the head (patient +z, LPS), else -1."""
    return 1 if volume.affine[2, 0] >= 0 else -1


def body_outline(ct: Volume, hu_min: float) -> BoolArray:
    """Voxels above hu_min with the holes of each axial slice filled, small islands dropped."""
    inside = np.asarray(ct.array) > hu_min
    filled = np.zeros_like(inside)
    for k in range(inside.shape[0]):
        if inside[k].any():
            filled[k] = ndimage.binary_fill_holes(inside[k])
    labelled, n = ndimage.label(filled)
    if n == 0:
        return filled
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return np.asarray(sizes[labelled] * 50 >= sizes.max())  # the body, and what is at least 2 % of it


def neck_slice(body: BoolArray, volume: Volume, search_fraction: float) -> int | None:
    """The slice of the narrowest body section in the cranial `search_fraction` of the
    slices that show the body (None when the field shows no narrowing)."""
    area = body.reshape(body.shape[0], -1).sum(axis=1)
    shown = np.flatnonzero(area)
    if len(shown) < 3:
        return None
    sign = cranial_sign(volume)
    order = shown if sign < 0 else shown[::-1]  # cranial first
    n = max(int(len(order) * search_fraction), 2)
    search = order[:n]
    head = 0  # the widest section of the head (the first maximum from the top), when the field shows it
    while head + 1 < n and area[search[head + 1]] >= area[search[head]]:
        head += 1
    after = search[head:]
    k = int(after[int(np.argmin(area[after]))])
    below = area[order[n:]]
    # a real neck: narrower than half the widest section below it, and below the head's widest
    if k == int(search[head]) or below.size == 0 or area[k] * 2 > below.max():
        return None
    return k


def below(volume: Volume, k: int | None) -> BoolArray:
    """Per slice: strictly caudal of slice k (all slices when k is None)."""
    ks = np.arange(volume.shape[0])
    if k is None:
        return np.ones(volume.shape[0], dtype=bool)
    return np.asarray(ks < k if cranial_sign(volume) > 0 else ks > k)


def compartments(ct: Volume, fat_hu: tuple[float, float], muscle_hu: tuple[float, float], body_hu_min: float,
                 neck_search_fraction: float) -> Compartments:
    hu = np.asarray(ct.array, dtype=np.float32)
    body = body_outline(ct, body_hu_min)
    keep = below(ct, neck_slice(body, ct, neck_search_fraction))
    measured = body & keep[:, None, None]
    fat = measured & (hu >= fat_hu[0]) & (hu <= fat_hu[1])
    soft = measured & (hu >= muscle_hu[0]) & (hu <= muscle_hu[1])
    skin = body & ~ndimage.binary_erosion(body, structure=_PLANE)
    fat_parts, _ = ndimage.label(fat, structure=_PLANE)
    sat = np.isin(fat_parts, np.unique(fat_parts[skin & fat])[1:]) if (skin & fat).any() else np.zeros_like(fat)
    soft_parts, _ = ndimage.label(soft, structure=_PLANE)
    touching = ndimage.binary_dilation(sat, structure=_PLANE) & soft
    muscle = np.isin(soft_parts, np.unique(soft_parts[touching])[1:]) if touching.any() else np.zeros_like(soft)
    return Compartments(body, np.asarray(sat), np.asarray(fat & ~sat), np.asarray(muscle), keep,
                        ct.voxel_volume_mm3 / 1000.0)


def resample_to(source: Volume, target: Volume, fill: float, order: int = 1) -> Volume:
    """`source` sampled at `target`'s voxel centres (same patient frame), `fill` outside."""
    to_source = np.linalg.inv(source.affine) @ target.affine
    out = ndimage.affine_transform(np.asarray(source.array, dtype=np.float32), to_source[:3, :3],
                                   offset=to_source[:3, 3], output_shape=target.shape, order=order,
                                   mode="constant", cval=fill)
    return target.with_array(np.asarray(out, dtype=np.float32))


def mean_on(image: Volume, mask: BoolArray, grid: Volume) -> float | None:
    """Mean of `image` at the voxel centres of `mask` (a mask on `grid`), nearest voxel;
    a regular subsample of the mask when it is large."""
    count = int(np.count_nonzero(mask))
    if count == 0:
        return None
    step = max(int(np.ceil((count / _MAX_SAMPLES) ** (1.0 / 3.0))), 1)
    sub = mask[::step, ::step, ::step]
    idx = np.argwhere(sub).astype(np.float64) * step
    where = image.patient_to_index(grid.index_to_patient(idx))
    k = np.rint(where).astype(np.int64)
    ok = np.all((k >= 0) & (k < np.asarray(image.shape)), axis=1)
    if not ok.any():
        return None
    values = np.asarray(image.array)[k[ok, 0], k[ok, 1], k[ok, 2]]
    return float(np.mean(values, dtype=np.float64))
