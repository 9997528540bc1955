"""PERCIST 1.0 (Wahl 2009): the hottest lesion's SULpeak against the baseline's, with the
liver reference for measurability and for the comparability of two scans.

SUV and SUL themselves are computed in `suv.py` from header values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from daemon.criteria.assessment import Assessment, TimepointResult
from daemon.criteria.exact import f, fmt, pct_change, q
from daemon.criteria.inputs import LesionInput
from daemon.criteria.params import PercistParams

CRITERION = "PERCIST1.0"


@dataclass(frozen=True)
class PetTimepoint:
    label: str
    liver_sul_mean: float | None = None
    liver_sul_sd: float | None = None
    hottest_sulpeak: float | None = None  # the single hottest lesion (any lesion)
    lesions: tuple[LesionInput, ...] = ()  # uptake["sul_peak"] per lesion; hottest taken when not given
    new_lesion: bool = False  # new FDG-avid lesion typical of cancer
    all_lesions_at_background: bool | None = None  # reader: every lesion at background (CMR)
    liver_abnormal: bool = False  # use the blood pool instead of the liver
    blood_pool_sul_mean: float | None = None
    blood_pool_sul_sd: float | None = None
    uptake_time_min: float | None = None
    tlg: float | None = None  # total lesion glycolysis
    recist_pd: bool = False  # anatomic PD blocks PMR
    nontarget_increase: bool = False  # > 30 % SUL or size increase of a non-target blocks PMR

    def hottest(self) -> Fraction | None:
        if self.hottest_sulpeak is not None:
            return q(self.hottest_sulpeak)
        peaks = [q(les.uptake["sul_peak"]) for les in self.lesions if "sul_peak" in les.uptake]
        return max(peaks) if peaks else None


def hottest_sum(params: PercistParams, tp: PetTimepoint) -> Fraction | None:
    """Exploratory: sum of SULpeak of the hottest lesions, at most 5 and 2 per organ."""
    ranked = sorted((les for les in tp.lesions if "sul_peak" in les.uptake),
                    key=lambda les: (-q(les.uptake["sul_peak"]), les.lesion_id))
    if not ranked:
        return None
    chosen: list[Fraction] = []
    per_organ: dict[str, int] = {}
    for les in ranked:
        if len(chosen) < params.max_lesions and per_organ.get(les.site, 0) < params.max_lesions_per_organ:
            chosen.append(q(les.uptake["sul_peak"]))
            per_organ[les.site] = per_organ.get(les.site, 0) + 1
    return sum(chosen, Fraction(0))


def threshold(params: PercistParams, tp: PetTimepoint) -> Fraction | None:
    """Measurability: 1.5 x liver SULmean + 2 SD; blood pool 2.0 x mean + 2 SD when the liver is abnormal."""
    if not tp.liver_abnormal and tp.liver_sul_mean is not None:
        sd = q(tp.liver_sul_sd or 0)
        return q(params.measurable_liver_factor) * q(tp.liver_sul_mean) + q(params.measurable_liver_sd_mult) * sd
    if tp.blood_pool_sul_mean is not None:
        sd = q(tp.blood_pool_sul_sd or 0)
        return q(params.blood_pool_factor) * q(tp.blood_pool_sul_mean) + q(params.blood_pool_sd_mult) * sd
    return None


def _comparable(params: PercistParams, base: PetTimepoint, tp: PetTimepoint) -> tuple[bool, list[str]]:
    reasons = []
    if base.liver_sul_mean is not None and tp.liver_sul_mean is not None:
        b, n = q(base.liver_sul_mean), q(tp.liver_sul_mean)
        pct = pct_change(n, b)
        if (pct is not None and abs(pct) > q(params.liver_stability_pct)) or abs(n - b) >= q(
            params.liver_stability_abs_sul
        ):
            reasons.append(f"liver SULmean {fmt(b)} -> {fmt(n)} ({fmt(pct, '%')}, {fmt(n - b)} SUL): scans not "
                           f"comparable (within {fmt(q(params.liver_stability_pct), '%')} and < "
                           f"{fmt(q(params.liver_stability_abs_sul))} SUL)")
    if base.uptake_time_min is not None and tp.uptake_time_min is not None:
        diff = abs(q(tp.uptake_time_min) - q(base.uptake_time_min))
        if diff > q(params.uptake_time_diff_max_min):
            reasons.append(f"uptake times differ by {fmt(diff, ' min')} (> "
                           f"{fmt(q(params.uptake_time_diff_max_min), ' min')})")
    return bool(reasons), reasons


def _is_pmd(params: PercistParams, delta: Fraction, pct: Fraction | None) -> bool:
    if pct is None:
        return False
    if params.pmd_inclusive:
        return pct >= q(params.pmd_pct) and delta >= q(params.pmd_abs_sul)
    return pct > q(params.pmd_pct) and delta > q(params.pmd_abs_sul)


def _tlg_pmd(params: PercistParams, base: PetTimepoint, tp: PetTimepoint, delta: Fraction) -> bool:
    if base.tlg is None or tp.tlg is None or delta < 0:
        return False
    pct = pct_change(q(tp.tlg), q(base.tlg))
    return pct is not None and pct > q(params.tlg_pmd_pct)


def _category(params: PercistParams, base: PetTimepoint, tp: PetTimepoint, measurable: bool) -> tuple[str, str]:
    b, h = base.hottest(), tp.hottest()
    if tp.new_lesion:
        return "PMD", "new FDG-avid lesion typical of cancer: PMD"
    if not measurable or b is None:
        return "NE", "no baseline lesion reaches the measurability threshold: not evaluable by SULpeak"
    if h is None:
        if tp.all_lesions_at_background:
            return "CMR", "no residual uptake above background: CMR"
        return "NE", "no follow-up SULpeak given"
    delta, pct = h - b, pct_change(h, b)
    if _is_pmd(params, delta, pct):
        op = ">=" if params.pmd_inclusive else ">"
        return "PMD", (f"SULpeak {fmt(b)} -> {fmt(h)} ({fmt(pct, '%')}, {fmt(delta)} SUL): PMD "
                       f"({op} {fmt(q(params.pmd_pct), '%')} and {op} {fmt(q(params.pmd_abs_sul))} SUL)")
    if _tlg_pmd(params, base, tp, delta):
        return "PMD", f"TLG increase > {fmt(q(params.tlg_pmd_pct), '%')} without SUL decline: PMD"
    liver = tp.liver_sul_mean
    if tp.all_lesions_at_background and liver is not None and h < q(liver):
        return "CMR", f"SULpeak {fmt(h)} below liver SULmean {fmt(q(liver))}, all lesions at background: CMR"
    if pct is not None and pct <= q(params.pmr_pct) and delta <= q(params.pmr_abs_sul):
        if tp.recist_pd or tp.nontarget_increase:
            return "SMD", "SULpeak meets PMR but anatomic or non-target progression excludes PMR: SMD"
        return "PMR", (f"SULpeak {fmt(b)} -> {fmt(h)} ({fmt(pct, '%')}, {fmt(delta)} SUL): PMR "
                       f"(<= {fmt(q(params.pmr_pct), '%')} and <= {fmt(q(params.pmr_abs_sul))} SUL)")
    return "SMD", f"SULpeak {fmt(b)} -> {fmt(h)} ({fmt(pct, '%')}, {fmt(delta)} SUL): neither PMR nor PMD: SMD"


def _window_flag(params: PercistParams, tp: PetTimepoint) -> list[str]:
    w = params.uptake_window_min
    if tp.uptake_time_min is not None and not q(w.low) <= q(tp.uptake_time_min) <= q(w.high):
        return ["uptake_window_warning"]
    return []


def assess(timepoints: Sequence[PetTimepoint], params: PercistParams) -> Assessment:
    """PERCIST 1.0 responses of each follow-up against timepoints[0], the baseline."""
    if not timepoints:
        raise ValueError("timepoints: at least the baseline is needed")
    base = timepoints[0]
    base_thr, b = threshold(params, base), base.hottest()
    measurable = base_thr is not None and b is not None and b >= base_thr
    results = [TimepointResult(
        base.label, "BASELINE",
        numbers={"measurability_threshold": f(base_thr), "hottest_sulpeak": f(b),
                 "sulpeak_sum_exploratory": f(hottest_sum(params, base))},
        checks={"measurable": measurable}, flags=tuple(_window_flag(params, base)),
        reasons=(f"hottest SULpeak {fmt(b)} vs measurability threshold {fmt(base_thr)}: "
                 f"{'measurable' if measurable else 'not measurable'}",),
    )]
    for tp in timepoints[1:]:
        thr, h = threshold(params, tp), tp.hottest()
        cat, why = _category(params, base, tp, measurable)
        warn, warn_reasons = _comparable(params, base, tp)
        delta = h - b if h is not None and b is not None else None
        results.append(TimepointResult(
            tp.label, cat,
            numbers={
                "measurability_threshold": f(thr), "hottest_sulpeak": f(h), "baseline_sulpeak": f(b),
                "delta_sul": f(delta), "pct_vs_baseline": f(pct_change(h, b) if h is not None and b else None),
                "sulpeak_sum_exploratory": f(hottest_sum(params, tp)),
            },
            nadir_timepoint=base.label, evaluable=cat != "NE", reasons=(why, *warn_reasons),
            checks={"comparability_warning": warn,
                    "measurable": thr is not None and h is not None and h >= thr},
            flags=tuple(["comparability_warning"] * warn + _window_flag(params, tp)),
        ))
    last = results[-1]
    return Assessment(
        criterion=CRITERION, citation=params.citation.to_citation(), category=last.category,
        timepoints=tuple(results), numbers=dict(last.numbers), evaluable=last.evaluable,
        reasons=last.reasons, flags=last.flags,
    )
