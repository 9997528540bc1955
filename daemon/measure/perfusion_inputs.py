"""The input regions of the dual-input model, found from each voxel's enhancement curve.

- aorta: the earliest-peaking region whose peak enhancement reaches `aorta_min_peak_hu`;
- portal vein: among regions peaking at least `portal_min_delay_s` after the aorta with a
  peak of `portal_min_peak_hu` or more, the highest-peaking one (inside or beside the liver
  when a liver mask is given);
- spleen: the largest region (at least `spleen_min_ml`) outside the liver that peaks after
  the aorta and before the portal vein.

Each region is then reduced to its core (voxels above `core_fraction` of its highest
peak) so that partial-volume edges do not lower the input peak. Engineering defaults in
rules/perfusion_dynamic.yaml; the key image shows the regions for the reader to check.
A region that cannot be found raises `InputNotFound` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.measure.perfusion import F32, F64, InputCurves, region_curve
from daemon.measure.perfusion_params import InputParams

BoolArray = NDArray[np.bool_]
I32 = NDArray[np.int32]


class InputNotFound(ValueError):
    """An input region is not in the field of view (the message says which and why)."""


@dataclass(frozen=True, eq=False)
class InputRegions:
    aorta: BoolArray
    portal: BoolArray
    spleen: BoolArray
    curves: InputCurves


@dataclass(frozen=True)
class _Region:
    label: int
    voxels: int
    ttp: float  # median time to peak (s)
    peak: float  # highest peak enhancement (HU)


def _regions(candidates: BoolArray, peak: F32, ttp: F32, min_voxels: int) -> tuple[I32, list[_Region]]:
    labels, n = ndimage.label(candidates)
    lab = np.asarray(labels, dtype=np.int32)
    if n == 0:
        return lab, []
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(peak), lab, idx)
    ttps = ndimage.median(ttp, lab, idx)
    peaks = ndimage.maximum(peak, lab, idx)
    found = [_Region(int(i), int(s), float(t), float(p)) for i, s, t, p in zip(idx, sizes, ttps, peaks, strict=True)]
    return lab, [r for r in found if r.voxels >= min_voxels]


def _core(labels: I32, region: _Region, peak: F32, fraction: float) -> BoolArray:
    mask = labels == region.label
    core = mask & (peak >= fraction * region.peak)
    eroded = ndimage.binary_erosion(core)
    return np.asarray(eroded if eroded.sum() >= 8 else core)


def find_inputs(delta: F32, times: F64, peak: F32, ttp: F32, voxel_ml: float, params: InputParams,
                liver: BoolArray | None = None, baseline_hu: F32 | None = None) -> InputRegions:
    """The aorta, portal vein and spleen regions and their curves (raises InputNotFound).

    Only voxels whose unenhanced value (`baseline_hu`) is that of blood or soft tissue are
    candidates: bone and air edges, where any residual motion mimics enhancement, are not."""
    min_vox = max(int(np.ceil(params.min_region_ml / voxel_ml)), 1)
    low, high = params.baseline_hu_range
    tissue = np.ones(peak.shape, dtype=bool) if baseline_hu is None else (baseline_hu >= low) & (baseline_hu <= high)
    peak = np.where(tissue, peak, 0.0).astype(np.float32)
    labels, regions = _regions(peak >= params.aorta_min_peak_hu, peak, ttp, min_vox)
    if not regions:
        raise InputNotFound(f"no aorta in the field of view: no region of {params.min_region_ml:g} mL or more "
                            f"enhances by {params.aorta_min_peak_hu:g} HU or more")
    aorta_r = min(regions, key=lambda r: (r.ttp, -r.voxels))
    aorta = _core(labels, aorta_r, peak, params.core_fraction)
    labels_p, portal_rs = _regions((peak >= params.portal_min_peak_hu) & (ttp >= aorta_r.ttp + params.portal_min_delay_s)
                                   & ~aorta, peak, ttp, min_vox)
    if liver is not None and liver.any():
        near = ndimage.binary_dilation(liver, iterations=3)
        touching = set(np.unique(labels_p[near]).tolist())
        portal_rs = [r for r in portal_rs if r.label in touching] or portal_rs
    if not portal_rs:
        raise InputNotFound(f"no portal vein found: no region peaking {params.portal_min_delay_s:g} s or more after "
                            f"the aorta ({aorta_r.ttp:.0f} s) with {params.portal_min_peak_hu:g} HU or more"
                            + _widest_gap(np.asarray(times, dtype=np.float64), aorta_r.ttp))
    portal_r = max(portal_rs, key=lambda r: (r.peak, r.voxels))
    portal = _core(labels_p, portal_r, peak, params.core_fraction)
    spleen = _spleen(peak, ttp, voxel_ml, params, aorta_r.ttp, portal_r.ttp, aorta | portal, liver)
    curves = InputCurves(np.asarray(times, dtype=np.float64), region_curve(delta, aorta), region_curve(delta, portal),
                         region_curve(delta, spleen))
    return InputRegions(aorta, portal, spleen, curves)


def _widest_gap(times: F64, after_s: float) -> str:
    """Where the sampling leaves the longest interval after `after_s`: a peak may lie in it."""
    t = times[times >= after_s]
    if t.size < 2:
        return ""
    k = int(np.argmax(np.diff(t)))
    return (f"; no frame between {t[k]:.0f} s and {t[k + 1]:.0f} s (from the first frame): the portal peak "
            "may lie in that interval, unsampled (perfusion.md §6)")


def _spleen(peak: F32, ttp: F32, voxel_ml: float, params: InputParams, aorta_ttp: float, portal_ttp: float,
            vessels: BoolArray, liver: BoolArray | None) -> BoolArray:
    candidates = (peak >= params.spleen_min_peak_hu) & (ttp > aorta_ttp) & (ttp < portal_ttp) & ~vessels
    if liver is not None:
        candidates &= ~ndimage.binary_dilation(liver, iterations=2)
    candidates = ndimage.binary_opening(candidates, iterations=1)
    labels, regions = _regions(candidates, peak, ttp, max(int(np.ceil(params.spleen_min_ml / voxel_ml)), 1))
    if not regions:
        raise InputNotFound(f"no spleen found: no region of {params.spleen_min_ml:g} mL or more peaking between the "
                            f"aorta ({aorta_ttp:.0f} s) and the portal vein ({portal_ttp:.0f} s)")
    best = max(regions, key=lambda r: r.voxels)
    mask = labels == best.label
    eroded = ndimage.binary_erosion(mask, iterations=2)
    return np.asarray(eroded if eroded.sum() >= 8 else mask)
