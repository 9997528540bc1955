"""Lesion and healthy-liver regions for the perfusion ratios (perfusion.md §3), pure.

- lesion: its mask eroded `lesion_erosion_voxels` in all 26 directions (whole-lesion variant);
- healthy liver: liver voxels in the lesion's slab (its slices, widened by
  `healthy_slab_margin_mm`), at least `healthy_min_distance_mm` from every lesion,
  without vessels (peak enhancement above the liver's `vessel_peak_percentile`, or
  brighter than `vessel_hu` on the averaged image) and without the input regions;
  refused under `healthy_min_area_cm2` per slice on average;
- the liver, when no model or SEG gives it: the largest connected portal-dominant tissue
  (HPI at most `liver_max_hpi_pct`, TLP at least `liver_min_tlp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.measure.perfusion import VoxelMaps
from daemon.measure.perfusion_params import RegionParams

BoolArray = NDArray[np.bool_]
Spacing = tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class HealthyRegion:
    mask: BoolArray | None
    reason: str = ""  # why there is none


# erosion by whole voxels in every direction, diagonals included: with the default (face-connected)
# element a voxel whose edge or corner touches the border stays in the ROI, and on coarse voxels its
# partial volume with the liver (9 times the lesion's portal slope on the phantom) biased P1's HPP +6 %
_CUBE = np.ones((3, 3, 3), dtype=bool)


def lesion_roi(lesion: BoolArray, params: RegionParams) -> BoolArray:
    """The lesion mask eroded `lesion_erosion_voxels` in all 26 directions (the unchanged mask if
    erosion would empty it): no voxel of the ROI touches the lesion's border, even by a corner."""
    n = params.lesion_erosion_voxels
    if n == 0:
        return lesion
    eroded = np.asarray(ndimage.binary_erosion(lesion, structure=_CUBE, iterations=n))
    return eroded if eroded.any() else lesion


def vessels(liver: BoolArray, maps: VoxelMaps, params: RegionParams) -> BoolArray:
    """Voxels of the liver that look like vessels (perfusion.md §3)."""
    if not liver.any():
        return np.zeros_like(liver)
    cut = float(np.nanpercentile(maps.peak_hu[liver], params.vessel_peak_percentile))
    return np.asarray((maps.peak_hu > cut) | (maps.mean_hu > params.vessel_hu))


def liver_from_maps(maps: VoxelMaps, body: BoolArray, params: RegionParams) -> BoolArray:
    """Portal-dominant tissue, largest connected part: the liver when nothing else says."""
    hpi = np.nan_to_num(maps.hpi, nan=100.0)
    candidate = body & (hpi <= params.liver_max_hpi_pct) & (maps.tlp >= params.liver_min_tlp)
    candidate = ndimage.binary_opening(candidate, iterations=1)
    labels, n = ndimage.label(candidate)
    if n == 0:
        return np.zeros_like(body)
    sizes = ndimage.sum_labels(np.ones(labels.shape), labels, np.arange(1, n + 1))
    return np.asarray(labels == int(np.argmax(sizes)) + 1)


def healthy_region(lesion: BoolArray, all_lesions: BoolArray, liver: BoolArray, excluded: BoolArray,
                   spacing: Spacing, params: RegionParams) -> HealthyRegion:
    """The healthy-liver region for one lesion (None with the reason when too small)."""
    ks = np.flatnonzero(lesion.any(axis=(1, 2)))
    if ks.size == 0:
        return HealthyRegion(None, "empty lesion mask")
    margin = int(np.ceil(params.healthy_slab_margin_mm / spacing[0] - 1e-9))
    k0, k1 = max(int(ks[0]) - margin, 0), min(int(ks[-1]) + margin + 1, lesion.shape[0])
    slab = np.zeros_like(lesion)
    slab[k0:k1] = True
    distance = ndimage.distance_transform_edt(~all_lesions, sampling=spacing)
    region = liver & slab & ~all_lesions & ~excluded & (distance >= params.healthy_min_distance_mm)
    area_cm2 = float(region.sum()) * spacing[1] * spacing[2] / 100.0 / (k1 - k0)
    if area_cm2 < params.healthy_min_area_cm2:
        return HealthyRegion(None, f"healthy liver in the lesion's slab {params.healthy_min_distance_mm:g} mm from "
                                   f"every lesion, vessels excluded: {area_cm2:.2f} cm2 per slice, "
                                   f"{params.healthy_min_area_cm2:g} cm2 needed")
    return HealthyRegion(np.asarray(region))
