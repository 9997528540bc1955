"""A coarse site for each FDG-avid lesion, for PERCIST's per-organ limit, from the CT alone.

Without a site model, the CT (on the PET grid) gives what any whole-body PET/CT shows,
whatever the patient: the liver (the route's CT liver rule), the lungs (air-density voxels
inside the body outline), bone (voxels above a bone HU threshold). A lesion's site is the
tissue that holds most of the ring of voxels around it (the lesion itself is left out: a
metastasis changes the density it replaces); else, when its centroid lies within a band
about the body's midline in the trunk, the "lymph node region" (mediastinal, para-aortic,
iliac chains); else "other soft tissue". Thresholds are arguments; the numbers live in
rules/wholebody_fdg.yaml (`lesion_sites`, engineering defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.measure.hot_lesions import BodyFrame
from daemon.volume import Volume

BoolArray = NDArray[np.bool_]
Box = tuple[slice, slice, slice]
NODAL, OTHER = "lymph node region", "other soft tissue"


@dataclass(frozen=True)
class SiteRules:
    lung_hu_max: float  # inside the body outline, at or below: lung
    bone_hu_min: float  # at or above: bone
    ring_voxels: int  # the ring around a lesion that is looked at
    min_ring_fraction: float  # the tissue must hold at least this share of the ring
    nodal_band_mm: float  # half-width of the midline band of the trunk taken for nodal chains


def tissues(ct_hu: NDArray[np.floating], body: BoolArray, liver: BoolArray | None,
            rules: SiteRules) -> dict[str, BoolArray]:
    """The site tissues on the grid of `ct_hu` (the CT resampled onto the PET): liver, lung, bone."""
    hu = np.asarray(ct_hu)
    out = {"lung": np.asarray(body & (hu <= rules.lung_hu_max)), "bone": np.asarray(body & (hu >= rules.bone_hu_min))}
    if liver is not None:
        out = {"liver": np.asarray(liver), **out}
    return out


def _ring(local_mask: BoolArray, box: Box, shape: tuple[int, ...], n: int) -> tuple[Box, BoolArray]:
    """The ring of `n` voxels around the lesion, on a box grown by `n` (clipped to the grid)."""
    grown = tuple(slice(max(s.start - n, 0), min(s.stop + n, size)) for s, size in zip(box, shape, strict=True))
    mask = np.zeros(tuple(g.stop - g.start for g in grown), dtype=bool)
    inner = tuple(slice(s.start - g.start, s.stop - g.start) for s, g in zip(box, grown, strict=True))
    mask[inner] = local_mask[tuple(slice(0, i.stop - i.start) for i in inner)]
    ring = ndimage.binary_dilation(mask, iterations=n) & ~mask
    return (grown[0], grown[1], grown[2]), np.asarray(ring)


def lesion_site(local_mask: BoolArray, box: Box, grid: Volume, found: Mapping[str, BoolArray],
                frame: BodyFrame, rules: SiteRules) -> str:
    """The lesion's coarse site: a tissue of `found` holding most of its ring, else the nodal band
    about the trunk's midline, else other soft tissue."""
    grown, ring = _ring(local_mask, box, grid.shape, rules.ring_voxels)
    total = int(np.count_nonzero(ring))
    if total:
        shares = {name: np.count_nonzero(mask[grown] & ring) / total for name, mask in found.items()}
        name, share = max(shares.items(), key=lambda kv: kv[1], default=("", 0.0))
        if name and share >= rules.min_ring_fraction:
            return name
    where = np.argwhere(local_mask).mean(axis=0) + np.asarray([s.start for s in box], dtype=np.float64)
    p = grid.index_to_patient(where)
    k = int(np.clip(round(float(where[0])), 0, grid.shape[0] - 1))
    top, bottom = frame.trunk_z
    in_trunk = bottom <= float(p[2]) <= top
    return NODAL if in_trunk and abs(float(p[0]) - float(frame.centre_xy[k][0])) <= rules.nodal_band_mm else OTHER
