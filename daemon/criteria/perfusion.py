"""Liver CT perfusion: lesion / healthy-liver ratio of each parameter, and the BF-ratio
rule for a major histologic response of colorectal liver metastases (seed thesis 004).

The cut-off was derived on deconvolution maps (GE CT Perfusion 4D, 80 kV): other map
methods still get the ratio, flagged `off_label_method`.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from daemon.criteria.assessment import Assessment
from daemon.criteria.exact import f, fmt, q, ratio
from daemon.criteria.params import PerfusionParams

CRITERION = "CT perfusion"
_SECONDS_PER_MINUTE = 60  # unit conversion s^-1 -> mL/min/100 mL
_PER_100 = 100


def _ratio(lesion: float | None, healthy: float | None) -> Fraction | None:
    if lesion is None or healthy is None:
        return None
    return ratio(q(lesion), q(healthy))


def _plausible(params: PerfusionParams, parameter: str, lesion: float, healthy: float) -> bool:
    rng = params.plausible_ranges.get(parameter)
    if rng is None:
        return True
    return (q(rng.lesion.low) <= q(lesion) <= q(rng.lesion.high)) and (
        q(rng.healthy.low) <= q(healthy) <= q(rng.healthy.high)
    )


def _performance(params: PerfusionParams) -> dict[str, float | None]:
    p = params.performance
    out: dict[str, float | None] = {"cutoff": float(params.bf_ratio_cutoff)}
    for key in ("sensitivity_pct", "specificity_pct", "ppv_pct", "npv_pct", "auc"):
        value = getattr(p, key)
        out[key] = None if value is None else float(value)
    return out


def classify(
    params: PerfusionParams,
    lesion: float | None,
    healthy: float | None,
    parameter: str = "BF",
    map_method: str = "deconvolution",
    lesion_diameter_mm: float | None = None,
) -> Assessment:
    """The ratio of one parameter; classified when it is the BF (or a max-slope TLP) ratio."""
    cite = params.citation.to_citation()
    flags: list[str] = [] if map_method in params.validated_methods else ["off_label_method"]
    if lesion_diameter_mm is not None and q(lesion_diameter_mm) < q(params.min_lesion_diameter_mm):
        code = f"lesion_below_{fmt(q(params.min_lesion_diameter_mm))}mm"
        return Assessment(CRITERION, cite, "not_evaluable", evaluable=False, flags=tuple(flags),
                          details={"reason": code, "parameter": parameter},
                          reasons=(f"lesion {fmt(q(lesion_diameter_mm), ' mm')} below "
                                   f"{fmt(q(params.min_lesion_diameter_mm), ' mm')}: no reliable ROI",))
    r = _ratio(lesion, healthy)
    if r is None or lesion is None or healthy is None:
        return Assessment(CRITERION, cite, "not_computable", evaluable=False, flags=tuple(flags),
                          details={"reason": "healthy_liver_value_missing_or_not_positive", "parameter": parameter},
                          reasons=("healthy-liver value missing or not positive: ratio not computable",))
    numbers: dict[str, float | None] = {"ratio": f(r), "lesion": float(lesion), "healthy": float(healthy)}
    if not _plausible(params, parameter, lesion, healthy):
        flags.append("outside_plausible_range")
    if parameter not in (params.classify_on, "TLP"):
        return Assessment(CRITERION, cite, "no_cutoff", numbers=numbers, flags=tuple(flags), classified=False,
                          details={"parameter": parameter},
                          reasons=(f"{parameter} ratio {fmt(r, places=3)}: no published cut-off, reported only",))
    if parameter == "TLP" and "off_label_method" not in flags:
        flags.append("off_label_method")
    cut = q(params.bf_ratio_cutoff)
    if abs(r - cut) < q(params.at_threshold_margin):
        flags.append("at_threshold")
    major = r < cut
    category = "major_response_predicted" if major else "not_major"
    return Assessment(
        CRITERION, cite, category, numbers=numbers | _performance(params), flags=tuple(flags),
        details={"parameter": parameter, "map_method": map_method},
        reasons=(f"{parameter} ratio {fmt(r, places=3)} {'<' if major else '>='} {fmt(cut)}: {category}",),
    )


def all_ratios(
    params: PerfusionParams,
    values: Mapping[str, tuple[float | None, float | None]],
    map_method: str = "deconvolution",
    lesion_diameter_mm: float | None = None,
) -> Assessment:
    """Every parameter's lesion/healthy ratio; the category from the BF ratio only."""
    ratios = {name: f(_ratio(lesion, healthy)) for name, (lesion, healthy) in values.items()}
    lesion, healthy = values.get(params.classify_on, (None, None))
    a = classify(params, lesion, healthy, params.classify_on, map_method, lesion_diameter_mm)
    return Assessment(
        a.criterion, a.citation, a.category, numbers=a.numbers, evaluable=a.evaluable,
        reasons=(*a.reasons, "no published cut-off for the other ratios: reported only"),
        flags=a.flags, details=a.details | {"classified_on": params.classify_on}, tables={"ratios": ratios},
    )


def max_slope(
    params: PerfusionParams,
    arterial_slope_hu_s: float,
    aortic_peak_hu: float,
    portal_slope_hu_s: float,
    portal_peak_hu: float,
    portal_frames: int | None = None,
) -> Assessment:
    """Dual-input maximum slope: HAP = max arterial slope / aortic peak, HPP likewise (mL/min/100 mL)."""
    hap_s, hpp_s = ratio(q(arterial_slope_hu_s), q(aortic_peak_hu)), ratio(q(portal_slope_hu_s), q(portal_peak_hu))
    if hap_s is None or hpp_s is None:
        raise ValueError("aortic_peak_enhancement_hu and portal_peak_enhancement_hu must be positive")
    hap = hap_s * _SECONDS_PER_MINUTE * _PER_100
    hpp = hpp_s * _SECONDS_PER_MINUTE * _PER_100
    tlp = hap + hpp
    hpi = hap / tlp * 100 if tlp else None
    flags = ["off_label_method"]
    if portal_frames is not None and portal_frames < params.max_slope.min_portal_frames:
        flags.append("sparse_portal_sampling")
    density = q(params.max_slope.tissue_density_g_ml)
    return Assessment(
        CRITERION, params.max_slope.citation.to_citation(), "measured", classified=False,
        numbers={"hap_ml_min_100ml": f(hap), "hpp_ml_min_100ml": f(hpp), "tlp_ml_min_100ml": f(tlp),
                 "hpi_percent": f(hpi), "tlp_ml_min_100g": f(tlp / density)},
        flags=tuple(flags),
        reasons=(f"HAP {fmt(hap)} + HPP {fmt(hpp)} = TLP {fmt(tlp)} mL/min/100 mL, HPI {fmt(hpi, '%')}; "
                 "the 0.68 BF cut-off was derived on deconvolution maps",),
    )
