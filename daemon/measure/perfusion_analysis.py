"""A dynamic liver CT -> per-lesion maximum-slope values, lesion/healthy ratios and the rule.

Composes the pure steps (perfusion.md §3 and §6): motion correction onto the first frame,
enhancement over the baseline frames, in-plane smoothing for the voxel maps, automatic
input regions, voxel maps, then per lesion its eroded region and its healthy-liver region,
their values (`statistic`: the region's mean curve, or the mean of the voxel maps), every
ratio, and the BF-ratio rule applied to the TLP ratio (`daemon.criteria.perfusion.classify`,
always `off_label_method`: the 0.68 cut-off comes from deconvolution BF). What makes the
study unusable raises `NotComputable` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.criteria import perfusion as rule
from daemon.criteria.assessment import Assessment
from daemon.criteria.params import PerfusionParams
from daemon.imaging.dynamic import DynamicSeries
from daemon.measure.perfusion import (
    MAP_NAMES,
    CurveValues,
    InputCurves,
    VoxelMaps,
    curve_values,
    enhancement,
    region_curve,
    voxel_maps,
)
from daemon.measure.perfusion_inputs import InputNotFound, InputRegions, find_inputs
from daemon.measure.perfusion_motion import Corrected, correct
from daemon.measure.perfusion_params import DynamicParams
from daemon.measure.perfusion_regions import healthy_region, lesion_roi, liver_from_maps, vessels
from daemon.volume import Volume

log = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
METHOD = "max_slope"


class NotComputable(ValueError):
    """The maps cannot be computed from this series; the message says why."""


@dataclass(frozen=True, eq=False)
class LesionInput:
    name: str  # tracking id or segment label
    mask: BoolArray  # on the dynamic series' reference grid
    diameter_mm: float | None  # longest axial diameter (for the 15 mm rule)
    number: int = 0  # segment number (command) or label


@dataclass(frozen=True, eq=False)
class LesionPerfusion:
    lesion: LesionInput
    roi: BoolArray
    healthy: BoolArray | None
    values: dict[str, float | None]  # map -> lesion value
    healthy_values: dict[str, float | None]
    ratios: dict[str, float | None]
    assessment: Assessment
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class StudyPerfusion:
    maps: VoxelMaps
    inputs: InputRegions
    liver: BoolArray
    liver_source: str
    lesions: tuple[LesionPerfusion, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _smooth(delta: NDArray[np.float32], spacing: tuple[float, float, float], sigma_mm: float) -> NDArray[np.float32]:
    if sigma_mm <= 0:
        return delta
    sigma = (0.0, 0.0, sigma_mm / spacing[1], sigma_mm / spacing[2])
    return np.asarray(ndimage.gaussian_filter(delta, sigma, mode="nearest"), dtype=np.float32)


def _values(roi: BoolArray, delta: NDArray[np.float32], maps: VoxelMaps, inputs: InputCurves,
            statistic: str, window: int) -> dict[str, float | None]:
    if statistic == "roi_curve":
        cv: CurveValues = curve_values(region_curve(delta, roi), inputs, window)
        return cv.as_dict()
    out: dict[str, float | None] = {}
    for name in MAP_NAMES:
        v = maps.get(name)[roi]
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if v.size else None
    return out


def _plausibility(params: PerfusionParams, lesion: float | None, healthy: float | None) -> list[str]:
    rng = params.plausible_ranges.get(params.classify_on)
    out = []
    for who, value, r in (("lesion", lesion, rng.lesion if rng else None), ("healthy liver", healthy,
                                                                              rng.healthy if rng else None)):
        if r is not None and value is not None and not float(r.low) <= value <= float(r.high):
            out.append(f"{who} TLP {value:.1f} mL/min/100 mL outside the seed's {params.classify_on} range "
                       f"{float(r.low):g}-{float(r.high):g} (perfusion.md §4, Table 2)")
    return out


def _lesion(les: LesionInput, all_lesions: BoolArray, liver: BoolArray, excluded: BoolArray,
            delta: NDArray[np.float32], maps: VoxelMaps, inputs: InputCurves, spacing: tuple[float, float, float],
            params: DynamicParams, criteria: PerfusionParams) -> LesionPerfusion:
    roi = lesion_roi(les.mask, params.regions)
    healthy = healthy_region(les.mask, all_lesions, liver, excluded, spacing, params.regions)
    values = _values(roi, delta, maps, inputs, params.statistic, params.slope_window_frames) if roi.any() else dict.fromkeys(MAP_NAMES)
    hv = (_values(healthy.mask, delta, maps, inputs, params.statistic, params.slope_window_frames) if healthy.mask is not None
          else dict.fromkeys(MAP_NAMES))
    ratios = {name: _ratio(values[name], hv[name]) for name in MAP_NAMES}
    a = rule.classify(criteria, values["TLP"], hv["TLP"], "TLP", METHOD, les.diameter_mm)
    warnings = [] if a.category == "not_evaluable" else _plausibility(criteria, values["TLP"], hv["TLP"])
    if healthy.mask is None:
        a = Assessment(a.criterion, a.citation, "not_computable", evaluable=False, flags=a.flags,
                       details=a.details | {"reason": "no_healthy_liver_region"},
                       reasons=(f"no healthy-liver region: {healthy.reason}",))
    return LesionPerfusion(les, roi, healthy.mask, values, hv, ratios, a, tuple(warnings))


def check_frames(dyn: DynamicSeries, params: DynamicParams) -> None:
    """Raise NotComputable when the series has too few frames for the method."""
    n = len(dyn.frames)
    if n < params.min_frames:
        raise NotComputable(f"{n} time frames: at least {params.min_frames} are needed (baseline, arterial "
                            "upslope, splenic peak, portal phase)")


def motion_corrected(dyn: DynamicSeries, params: DynamicParams) -> Corrected:
    """Every frame registered onto the first (raises NotComputable for too few frames)."""
    check_frames(dyn, params)
    return correct(dyn.frames, 0, params.motion)


def averaged(dyn: DynamicSeries, moved: Corrected) -> Volume:
    """The mean of the motion-corrected frames on the reference grid (what lesions are segmented on)."""
    return dyn.reference.with_array(moved.frames.mean(axis=0))


def analyse(dyn: DynamicSeries, lesions: Sequence[LesionInput], params: DynamicParams, criteria: PerfusionParams,
            liver: BoolArray | None = None, liver_source: str = "", corrected: Corrected | None = None) -> StudyPerfusion:
    """Maps and per-lesion results of one dynamic series (raises NotComputable); `corrected`: the
    frames already motion-corrected (`motion_corrected`)."""
    check_frames(dyn, params)
    n = len(dyn.frames)
    moved = corrected if corrected is not None else correct(dyn.frames, 0, params.motion)
    delta = enhancement(moved.frames, min(params.baseline_frames, n - 1))
    delta[:, ~moved.valid] = 0.0
    ref = dyn.reference
    smooth = _smooth(delta, ref.spacing, params.spatial_sigma_mm)
    peak = smooth.max(axis=0)
    ttp = np.asarray(dyn.times_s[np.argmax(smooth, axis=0)], dtype=np.float32)
    voxel_ml = ref.voxel_volume_mm3 / 1000.0
    try:
        baseline = moved.frames[: min(params.baseline_frames, n - 1)].mean(axis=0)
        inputs = find_inputs(delta, dyn.times_s, peak, ttp, voxel_ml, params.inputs, liver, baseline)
    except InputNotFound as exc:
        raise NotComputable(str(exc)) from exc
    mean_hu = moved.frames.mean(axis=0)
    maps = voxel_maps(smooth, dyn.times_s, inputs.curves, mean_hu, params.slope_window_frames)
    body = (mean_hu > -500.0) & moved.valid
    if liver is None or not liver.any():
        liver, liver_source = liver_from_maps(maps, body, params.regions), "portal-dominant tissue of the maps"
    notes = list(moved.notes)
    frames_after = inputs.curves.portal_frames()
    if frames_after < criteria.max_slope.min_portal_frames:
        notes.append(f"sparse portal sampling: {frames_after} frame(s) between the splenic peak "
                     f"({inputs.curves.split_s:.0f} s) and the portal peak ({inputs.curves.portal_peak_s:.0f} s); "
                     f"the portal slope may be underestimated (perfusion.md §6)")
    all_lesions = np.logical_or.reduce([les.mask for les in lesions]) if lesions else np.zeros(ref.shape, bool)
    # the input regions are their cores: their partial-volume rims are vessel too
    rim = max(int(round(params.regions.input_margin_mm / min(ref.spacing[1:]))), 0)
    cores = inputs.aorta | inputs.portal | inputs.spleen
    around = ndimage.binary_dilation(cores, iterations=rim) if rim else cores
    excluded = vessels(liver, maps, params.regions) | around | ~moved.valid
    done = tuple(_lesion(les, all_lesions, liver & moved.valid, excluded, delta, maps, inputs.curves, ref.spacing,
                         params, criteria) for les in lesions)
    if frames_after < criteria.max_slope.min_portal_frames:
        done = tuple(_flag(r, "sparse_portal_sampling") for r in done)
    log.info("perfusion: %d lesion(s); aortic peak %.0f HU, portal peak %.0f HU, t_s %.0f s", len(done),
             inputs.curves.aortic_peak_hu, inputs.curves.portal_peak_hu, inputs.curves.split_s)
    return StudyPerfusion(maps, inputs, liver, liver_source or "given", done, tuple(notes))


def _flag(r: LesionPerfusion, flag: str) -> LesionPerfusion:
    a = r.assessment
    new = Assessment(a.criterion, a.citation, a.category, a.timepoints, a.numbers, a.evaluable, a.reasons,
                     (*a.flags, flag), a.details, a.tables, a.lists, a.classified)
    return LesionPerfusion(r.lesion, r.roi, r.healthy, r.values, r.healthy_values, r.ratios, new, r.warnings)
