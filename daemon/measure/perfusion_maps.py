"""Lesion / healthy-liver values and ratios from vendor perfusion maps (perfusion.md §3-§5), pure.

The maps are on one grid (the pipeline resamples the lesion and liver masks onto it). Per lesion:
its eroded mask, its healthy-liver region (same slab, distance from every lesion, vessels
excluded: voxels of the liver above `vessel_peak_percentile` of BV, else of BF), each map's mean
in both, every ratio, and the BF-ratio rule with the maps' method (`off_label_method` unless
deconvolution). Values are the maps' own (`value = stored * slope + intercept` is done on reading).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from daemon.criteria import perfusion as rule
from daemon.criteria.assessment import Assessment
from daemon.criteria.params import PerfusionParams
from daemon.measure.perfusion_analysis import LesionInput, LesionPerfusion
from daemon.measure.perfusion_params import RegionParams
from daemon.measure.perfusion_regions import healthy_region, lesion_roi

F32 = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


def map_vessels(maps: Mapping[str, F32], liver: BoolArray, params: RegionParams) -> BoolArray:
    """Liver voxels whose BV (else BF) lies above the rules' percentile of the liver's."""
    source = maps.get("BV", maps.get("BF"))
    if source is None or not liver.any():
        return np.zeros(liver.shape, dtype=bool)
    values = source[liver]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(liver.shape, dtype=bool)
    cut = float(np.percentile(values, params.vessel_peak_percentile))
    return np.asarray(source > cut)


def _means(maps: Mapping[str, F32], roi: BoolArray | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, array in maps.items():
        v = array[roi] if roi is not None and roi.any() else np.empty(0, dtype=np.float32)
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if v.size else None
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def lesions_from_maps(maps: Mapping[str, F32], spacing: tuple[float, float, float], lesions: Sequence[LesionInput],
                      liver: BoolArray, params: RegionParams, criteria: PerfusionParams,
                      method: str) -> tuple[LesionPerfusion, ...]:
    """Every lesion's values, ratios and BF-ratio assessment from the vendor's maps."""
    shape = next(iter(maps.values())).shape
    all_lesions = np.logical_or.reduce([les.mask for les in lesions]) if lesions else np.zeros(shape, bool)
    excluded = map_vessels(maps, liver & ~all_lesions, params)
    out = []
    for les in lesions:
        roi = lesion_roi(les.mask, params)
        healthy = healthy_region(les.mask, all_lesions, liver, excluded, spacing, params)
        values, hv = _means(maps, roi), _means(maps, healthy.mask)
        ratios = {name: _ratio(values[name], hv[name]) for name in maps}
        a = rule.classify(criteria, values.get("BF"), hv.get("BF"), "BF", method, les.diameter_mm)
        if healthy.mask is None and a.category != "not_evaluable":
            a = Assessment(a.criterion, a.citation, "not_computable", evaluable=False, flags=a.flags,
                           details=a.details | {"reason": "no_healthy_liver_region"},
                           reasons=(f"no healthy-liver region: {healthy.reason}",))
        elif "BF" not in maps and a.category != "not_evaluable":
            a = Assessment(a.criterion, a.citation, "not_computable", evaluable=False, flags=a.flags,
                           details={"reason": "no_bf_map"}, reasons=("no BF map among the series: the "
                                                                    "BF-ratio rule cannot be applied",))
        out.append(LesionPerfusion(les, roi, healthy.mask, values, hv, ratios, a))
    return tuple(out)
