"""RANO-BM (Lin 2015): CNS response from target diameters, non-target and new lesions,
corticosteroids and clinical status, with an exploratory volumetric companion.

Differs from RECIST 1.1 where it matters: the 5 mm absolute increase is judged per
lesion (against the lesion's own value at the nadir timepoint), not on the sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from daemon.criteria.assessment import Assessment, TimepointResult
from daemon.criteria.exact import f, fmt, pct_change, pct_of, q
from daemon.criteria.inputs import (
    Clinical,
    LesionInput,
    NewLesion,
    NonTarget,
    Role,
    SteroidTrend,
    TimepointInput,
)
from daemon.criteria.params import RanoBmParams
from daemon.criteria.sums import SumRow, last_complete_before, nadir_before, sum_rows

CRITERION = "RANO-BM"

_ON = (SteroidTrend.DECREASED, SteroidTrend.STABLE, SteroidTrend.INCREASED)


def lesion_value(params: RanoBmParams, lesion: LesionInput | None) -> Fraction | None:
    """The longest axial diameter a target contributes (mm)."""
    if lesion is None or lesion.not_assessed:
        return None
    if lesion.too_small:
        return q(params.too_small_default_mm)
    if lesion.fragments_mm:
        return sum((q(x) for x in lesion.fragments_mm), Fraction(0))
    return None if lesion.long_axis_mm is None else q(lesion.long_axis_mm)


def measurable(params: RanoBmParams, lesion: LesionInput, tp: TimepointInput) -> bool:
    """LD >= max(10 mm, 2 x (slice + gap)) and perpendicular >= 5 mm when measured."""
    minimum = q(params.min_ld_mm)
    if tp.slice_thickness_mm is not None:
        minimum = max(minimum, q(params.slice_multiplier) * (q(tp.slice_thickness_mm) + q(tp.slice_gap_mm)))
    if lesion.long_axis_mm is None or q(lesion.long_axis_mm) < minimum:
        return False
    return lesion.short_axis_mm is None or q(lesion.short_axis_mm) >= q(params.min_perp_mm)


@dataclass(frozen=True)
class Steroids:
    on: bool | None  # above physiological replacement (None: not known)
    increased: bool


def steroids(params: RanoBmParams, tp: TimepointInput, reference: TimepointInput) -> Steroids:
    """The steroid state at `tp`, and whether the dose rose against `reference`."""
    if tp.steroid_trend is not None:
        return Steroids(on=tp.steroid_trend in _ON, increased=tp.steroid_trend is SteroidTrend.INCREASED)
    if tp.steroid_dose_mg_day is None:
        return Steroids(on=None, increased=False)
    dose = q(tp.steroid_dose_mg_day)
    ref = reference.steroid_dose_mg_day
    return Steroids(
        on=dose > q(params.steroid_physiological_max_mg_day),
        increased=ref is not None and dose > q(ref),
    )


def _increases(params: RanoBmParams, rows: Sequence[SumRow], i: int, ref: int) -> dict[str, Fraction]:
    """Each measured target's change against its reference: its value at the nadir timepoint,
    or (setting) its own smallest value on study. Reference rows are complete."""
    prior = [r for r in rows[:i] if r.complete]
    out = {}
    for key, now in rows[i].values.items():
        if now is None:
            continue
        if params.single_lesion_reference == "lesion_smallest":
            before = min(r.values[key] or Fraction(0) for r in prior)
        else:
            before = rows[ref].values[key] or Fraction(0)
        out[key] = now - before
    return out


def _target_response(
    params: RanoBmParams, rows: Sequence[SumRow], i: int, previous: str | None
) -> tuple[str, list[str], dict[str, Fraction]]:
    row = rows[i]
    nadir, where = nadir_before(rows, i)
    inc = _increases(params, rows, i, where)
    if previous == "CR":
        before = last_complete_before(rows, i).values
        back = [k for k, v in row.values.items() if v is not None and v > 0 and before[k] == 0]
        if back:
            return "PD", [f"target {', '.join(back)} reappeared after a complete response: PD"], inc
    pct_n = pct_change(row.total, nadir)
    grown = [k for k, v in inc.items() if v >= q(params.pd_single_lesion_abs_mm)]
    if grown and (pct_n is None or pct_n >= q(params.pd_pct_vs_nadir)):
        return "PD", [
            f"sum {fmt(row.total, ' mm')} is {fmt(pct_n, '%')} above the nadir {fmt(nadir, ' mm')} and "
            f"{', '.join(grown)} grew by >= {fmt(q(params.pd_single_lesion_abs_mm), ' mm')} "
            f"(max {fmt(max(inc.values()), ' mm')}) (PD: >= {fmt(q(params.pd_pct_vs_nadir), '%')} "
            f"and one lesion >= {fmt(q(params.pd_single_lesion_abs_mm), ' mm')})"
        ], inc
    if not row.complete:
        missing = [k for k, v in row.values.items() if v is None]
        return "NE", [f"target {', '.join(missing)} not assessed and the measured ones do not prove PD"], inc
    if row.total == 0:
        return "CR", ["all target lesions disappeared"], inc
    pct_b = pct_of(row.total, rows[0].total)
    if pct_b <= q(params.pr_pct_vs_baseline):
        return "PR", [f"sum {fmt(row.total, ' mm')} is {fmt(pct_b, '%')} vs baseline "
                      f"(PR: <= {fmt(q(params.pr_pct_vs_baseline), '%')})"], inc
    top = fmt(max(inc.values()), " mm") if inc else "undefined"
    return "SD", [f"sum {fmt(row.total, ' mm')}: {fmt(pct_b, '%')} vs baseline, {fmt(pct_n, '%')} vs nadir "
                  f"{fmt(nadir, ' mm')}, largest lesion increase {top}: neither PR nor PD"], inc


def _overall(
    target: str, tp: TimepointInput, st: Steroids
) -> tuple[str, str, list[str]]:
    new = tp.has_new_lesion()
    if target == "PD":
        return "PD", "target progression: PD", []
    if tp.nontarget is NonTarget.PD:
        return "PD", "unequivocal progression of non-target lesions: PD", []
    if new is NewLesion.UNEQUIVOCAL:
        return "PD", "unequivocal new lesion: PD", []
    if tp.clinical is Clinical.WORSE:
        return "PD", "tumour-related clinical deterioration: PD", []
    if target == "NE":
        return "NE", "target response not evaluable: NE", []
    if st.increased:
        return "SD", ("corticosteroid dose increased with stable clinical status: neither response nor PD "
                      "(SD, clinical review)"), ["steroid_increase"]
    if target == "CR":
        return _complete(tp, st)
    return target, f"target {target}, non-target {tp.nontarget.value}, steroids not increased: {target}", []


def _complete(tp: TimepointInput, st: Steroids) -> tuple[str, str, list[str]]:
    if tp.nontarget not in (NonTarget.NONE, NonTarget.CR):
        return "PR", f"targets gone but non-target {tp.nontarget.value}: PR", []
    if st.on:
        return "PR", "targets gone but corticosteroids above physiological replacement: PR", []
    if tp.clinical is Clinical.WORSE_NON_TUMOUR:
        return "PR", "targets gone but clinical status worse (non-tumour cause): PR", []
    flags = ["steroid_status_unknown"] if st.on is None else []
    return "CR", "all targets gone, no non-target or new lesion, no corticosteroids, clinically stable: CR", flags


def _near(params: RanoBmParams, row: SumRow, inc: dict[str, Fraction]) -> bool:
    ld, up = params.near_threshold.ld_mm, params.near_threshold.increase_mm
    if any(v is not None and q(ld.low) <= v <= q(ld.high) for v in row.values.values()):
        return True
    return any(q(up.low) <= v <= q(up.high) for v in inc.values())


def _volumes(params: RanoBmParams, timepoints: Sequence[TimepointInput], targets: Sequence[LesionInput],
             i: int) -> tuple[dict[str, float | None], str | None]:
    """Exploratory volumetric numbers (sum of target volumes) when every target has a volume."""
    sums: list[Fraction | None] = []
    for tp in timepoints[: i + 1]:
        vols = [les.volume_ml if les else None for les in (tp.lesion(t.lesion_id) for t in targets)]
        sums.append(None if any(v is None for v in vols) else sum((q(v) for v in vols if v is not None), Fraction(0)))
    now, base = sums[i], sums[0]
    if now is None or not base:
        return {}, None
    nadir = min(s for s in sums[:i] if s is not None)
    pct_b = pct_of(now, base)
    pct_n = pct_change(now, nadir)
    vol = params.volumetric
    if now == 0:
        cat = "CR"
    elif pct_n is None or pct_n >= q(vol.vol_pd_pct):
        cat = "PD"  # (pct_n None: regrowth after a volumetric complete response)
    elif pct_b <= q(vol.vol_pr_pct):
        cat = "PR"
    else:
        cat = "SD"
    numbers = {"vol_sum_ml": f(now), "vol_nadir_ml": f(nadir), "vol_pct_vs_baseline": f(pct_b),
               "vol_pct_vs_nadir": f(pct_n)}
    return numbers, cat


# mean days per month (365.25 / 12), to compare a window in months with days exactly
_DAYS_PER_MONTH = Fraction(1461, 48)


def _treated(params: RanoBmParams, timepoints: Sequence[TimepointInput], i: int) -> set[str]:
    """The lesions treated (inside a radiotherapy field) up to timepoint i and, where the treatment
    date is known at timepoint i, treated before it and within the rules' window."""
    limit = q(params.treatment_effect.window_months) * _DAYS_PER_MONTH
    now = {les.lesion_id: les for les in timepoints[i].lesions}
    treated = {les.lesion_id for tp in timepoints[: i + 1] for les in tp.lesions if les.treated_field}

    def in_window(key: str) -> bool:
        days = now[key].days_since_treatment if key in now else None
        return days is None or 0 <= days <= limit

    return {k for k in treated if in_window(k)}


def _treatment_effect(params: RanoBmParams, timepoints: Sequence[TimepointInput], i: int, target: str,
                      grown: Sequence[str]) -> tuple[list[str], str]:
    """The treated lesions that grew by the single-lesion margin within the window, and the reason
    to give (the rules' question asked, never a diagnosis; the category is not changed)."""
    effect = sorted(set(grown) & _treated(params, timepoints, i))
    if not effect:
        return [], ""
    untreated = sorted(set(grown) - set(effect))
    if target == "PD" and not untreated:
        said = "progression driven by treated lesion(s) only: radionecrosis cannot be excluded"
    elif untreated:
        said = (f"untreated {', '.join(untreated)} also grew by >= "
                f"{fmt(q(params.pd_single_lesion_abs_mm), ' mm')}: radionecrosis cannot be excluded for the treated "
                "lesion(s) only")
    else:
        said = "radionecrosis cannot be excluded"
    return effect, (f"treated lesion(s) {', '.join(effect)} grew by >= {fmt(q(params.pd_single_lesion_abs_mm), ' mm')} "
                    f"within {fmt(q(params.treatment_effect.window_months), ' months')} of treatment; {said}. "
                    f"{params.treatment_effect.question.en}")


def _followup(params: RanoBmParams, timepoints: Sequence[TimepointInput], targets: Sequence[LesionInput],
              rows: Sequence[SumRow], i: int, previous: str | None) -> TimepointResult:
    tp = timepoints[i]
    ref = timepoints[0] if params.steroid_reference == "baseline" else timepoints[i - 1]
    st = steroids(params, tp, ref)
    details = {"nontarget": tp.nontarget.value, "new_lesion": tp.has_new_lesion().value}
    if not tp.imaging_done:
        return TimepointResult(tp.label, "NE", evaluable=False, reasons=("no imaging at this timepoint",),
                               details=details)
    target, reasons, inc = _target_response(params, rows, i, previous)
    cat, why, flags = _overall(target, tp, st)
    row = rows[i]
    nadir, where = nadir_before(rows, i)
    grown = [k for k, v in inc.items() if v >= q(params.pd_single_lesion_abs_mm)]
    effect, said = _treatment_effect(params, timepoints, i, target, grown)
    if effect:
        flags.append("possible_treatment_effect")
        details["treatment_effect_lesions"] = ", ".join(effect)
        details["treatment_effect_question_en"] = params.treatment_effect.question.en
        details["treatment_effect_question_fr"] = params.treatment_effect.question.fr
        reasons.append(said)
    if tp.clinical is Clinical.WORSE_NON_TUMOUR:
        flags.append("clinical_deterioration_non_tumour")
    numbers = {
        "sum_mm": f(row.total), "nadir_mm": f(nadir),
        "pct_vs_baseline": f(pct_of(row.total, rows[0].total)),
        "pct_vs_nadir": f(pct_change(row.total, nadir)),
        "abs_change_vs_nadir_mm": f(row.total - nadir),
        "max_single_lesion_increase_vs_nadir_mm": f(max(inc.values())) if inc else None,
    }
    vol_numbers, vol_cat = _volumes(params, timepoints, targets, i)
    numbers |= vol_numbers
    details["target_response"] = target
    if vol_cat is not None:
        details["volumetric_response"] = vol_cat
        if params.volumetric.exploratory:
            flags.append("volumetric_exploratory")
    return TimepointResult(
        tp.label, cat, numbers=numbers, nadir_timepoint=rows[where].label, evaluable=cat != "NE",
        reasons=(*reasons, why), details=details, flags=tuple(flags),
        checks={"near_threshold": _near(params, row, inc)},
    )


def assess(timepoints: Sequence[TimepointInput], params: RanoBmParams) -> Assessment:
    """RANO-BM responses of the CNS compartment; timepoints[0] is the baseline."""
    if not timepoints:
        raise ValueError("timepoints: at least the baseline is needed")
    baseline = timepoints[0]
    targets = [les for les in baseline.lesions if les.role is Role.TARGET]
    if not targets:
        raise ValueError("targets: RANO-BM needs at least one measurable target lesion at baseline")
    rows = sum_rows(timepoints, targets, lambda _t, les: lesion_value(params, les))
    if not rows[0].complete:
        missing = [k for k, v in rows[0].values.items() if v is None]
        raise ValueError(f"baseline target {', '.join(missing)} has no measurement")
    if rows[0].total == 0:
        raise ValueError("baseline: the sum of the target diameters is 0 mm")
    flags = []
    if any(not measurable(params, t, baseline) for t in targets):
        flags.append("target_not_measurable_at_baseline")
    if len(targets) > params.max_targets:
        flags.append("too_many_targets")
    results = [TimepointResult(
        baseline.label, "BASELINE", numbers={"sum_mm": f(rows[0].total)}, flags=tuple(flags),
        reasons=(f"baseline sum of longest diameters {fmt(rows[0].total, ' mm')} over {len(targets)} targets",),
        checks={"near_threshold": _near(params, rows[0], {})},
    )]
    previous: str | None = None
    for i in range(1, len(timepoints)):
        res = _followup(params, timepoints, targets, rows, i, previous)
        results.append(res)
        if res.category != "NE":
            previous = res.category
    return Assessment.from_timepoints(CRITERION, params.citation.to_citation(), tuple(results))
