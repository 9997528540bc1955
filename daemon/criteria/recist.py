"""RECIST 1.1 (Eisenhauer 2009): target sums, nadir, target / non-target / new lesions, Table 1 and 2.

Time-point response only; best overall response needs protocol parameters and is
left to the caller. Thresholds come from rules/recist.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from daemon.criteria.assessment import Assessment, TimepointResult
from daemon.criteria.exact import f, fmt, pct_change, pct_of, q
from daemon.criteria.inputs import (
    Clinical,
    LesionInput,
    NewLesion,
    NonTarget,
    Role,
    TimepointInput,
)
from daemon.criteria.params import RecistParams
from daemon.criteria.sums import SumRow, last_complete_before, nadir_before, sum_rows

CRITERION = "RECIST1.1"


def lesion_value(params: RecistParams, target: LesionInput, lesion: LesionInput | None) -> Fraction | None:
    """What a target contributes to the sum: node short axis, otherwise long axis (mm)."""
    if lesion is None or lesion.not_assessed:
        return None
    if lesion.too_small:
        return q(params.too_small_default_mm)
    if lesion.fragments_mm:
        return sum((q(x) for x in lesion.fragments_mm), Fraction(0))
    raw = lesion.short_axis_mm if target.is_node else lesion.long_axis_mm
    return None if raw is None else q(raw)


def organ(params: RecistParams, site: str) -> str:
    return params.same_organ.get(site, site)


def measurable(params: RecistParams, lesion: LesionInput, slice_thickness_mm: float | None) -> bool:
    """§3.1.1: LD >= max(10 mm, 2 x slice) for non-nodal lesions; node SA >= 15 mm."""
    if lesion.is_node:
        return lesion.short_axis_mm is not None and q(lesion.short_axis_mm) >= q(params.node_target_sa_mm)
    minimum = q(params.min_ld_mm)
    if slice_thickness_mm is not None:
        minimum = max(minimum, q(params.slice_multiplier) * q(slice_thickness_mm))
    return lesion.long_axis_mm is not None and q(lesion.long_axis_mm) >= minimum


def select_targets(
    lesions: Sequence[LesionInput], params: RecistParams, slice_thickness_mm: float | None = None
) -> tuple[tuple[LesionInput, ...], tuple[LesionInput, ...]]:
    """§4.2: the largest measurable lesions, at most 5 in all and 2 per organ; the rest non-target."""

    def size(les: LesionInput) -> Fraction:
        raw = les.short_axis_mm if les.is_node else les.long_axis_mm
        return q(raw or 0)

    ranked = sorted(lesions, key=lambda les: (-size(les), les.lesion_id))
    targets: list[LesionInput] = []
    per_organ: dict[str, int] = {}
    for les in ranked:
        o = organ(params, les.site)
        if (
            len(targets) < params.max_targets
            and per_organ.get(o, 0) < params.max_targets_per_organ
            and measurable(params, les, slice_thickness_mm)
        ):
            targets.append(les)
            per_organ[o] = per_organ.get(o, 0) + 1
    chosen = {t.lesion_id for t in targets}
    others = tuple(les for les in lesions if les.lesion_id not in chosen)
    return tuple(targets), others


def _baseline_flags(params: RecistParams, baseline: TimepointInput, targets: Sequence[LesionInput]) -> list[str]:
    flags = []
    if any(not measurable(params, t, baseline.slice_thickness_mm) for t in targets):
        flags.append("target_not_measurable_at_baseline")
    if len(targets) > params.max_targets:
        flags.append("too_many_targets")
    organs = [organ(params, t.site) for t in targets]
    if any(organs.count(o) > params.max_targets_per_organ for o in organs):
        flags.append("too_many_targets_in_organ")
    return flags


def _is_pd(params: RecistParams, total: Fraction, nadir: Fraction) -> bool:
    if total - nadir < q(params.pd_abs_mm):
        return False
    pct = pct_change(total, nadir)
    return pct is None or pct >= q(params.pd_pct_vs_nadir)


def _all_gone(params: RecistParams, targets: Sequence[LesionInput], row: SumRow) -> bool:
    """CR of targets: non-nodal 0 mm, every node short axis below 10 mm."""
    limit = q(params.node_pathologic_sa_mm)
    for t in targets:
        v = row.values[t.lesion_id]
        if v is None or (v >= limit if t.is_node else v > 0):
            return False
    return True


def _reappeared(params: RecistParams, targets: Sequence[LesionInput], row: SumRow, prev: SumRow) -> list[str]:
    limit = q(params.node_pathologic_sa_mm)
    out = []
    for t in targets:
        now, before = row.values[t.lesion_id], prev.values[t.lesion_id]
        if now is None or before is None:
            continue
        if (t.is_node and before < limit <= now) or (not t.is_node and before == 0 < now):
            out.append(t.lesion_id)
    return out


def _target_response(
    params: RecistParams,
    targets: Sequence[LesionInput],
    rows: Sequence[SumRow],
    i: int,
    previous_overall: str | None,
) -> tuple[str, list[str]]:
    row = rows[i]
    nadir, _ = nadir_before(rows, i)
    base = rows[0].total
    if previous_overall == "CR":
        back = _reappeared(params, targets, row, last_complete_before(rows, i))
        if back:
            return "PD", [f"target {', '.join(back)} reappeared after a complete response: PD (§4.3.2)"]
    if _is_pd(params, row.total, nadir):
        pct = pct_change(row.total, nadir)
        partial = "" if row.complete else " by the measured targets alone"
        return "PD", [
            f"sum {fmt(row.total, ' mm')} is {fmt(row.total - nadir, ' mm')} and {fmt(pct, '%')} above "
            f"the nadir {fmt(nadir, ' mm')}{partial} (PD: >= {fmt(q(params.pd_pct_vs_nadir), '%')} "
            f"and >= {fmt(q(params.pd_abs_mm), ' mm')}, §4.3.1)"
        ]
    if not row.complete:
        missing = [k for k, v in row.values.items() if v is None]
        return "NE", [f"target {', '.join(missing)} not assessed and the measured ones do not prove PD (§4.4.2)"]
    if _all_gone(params, targets, row):
        return "CR", ["all non-nodal targets disappeared and every target node is below "
                      f"{fmt(q(params.node_pathologic_sa_mm), ' mm')} short axis (§4.3.1)"]
    pct_b = pct_of(row.total, base)
    if pct_b <= q(params.pr_pct_vs_baseline):
        return "PR", [f"sum {fmt(row.total, ' mm')} is {fmt(pct_b, '%')} vs baseline {fmt(base, ' mm')} "
                      f"(PR: <= {fmt(q(params.pr_pct_vs_baseline), '%')}, §4.3.1)"]
    return "SD", [f"sum {fmt(row.total, ' mm')}: {fmt(pct_b, '%')} vs baseline, "
                  f"{fmt(pct_change(row.total, nadir), '%')} and {fmt(row.total - nadir, ' mm')} vs nadir "
                  f"{fmt(nadir, ' mm')}: neither PR nor PD (§4.3.1)"]


def overall(target: str | None, nontarget: NonTarget, new: NewLesion) -> tuple[str, str]:
    """Table 1 (target disease) or Table 2 (non-target only, `target` None) of §4.4.1."""
    if new is NewLesion.UNEQUIVOCAL:
        return "PD", "unequivocal new lesion: PD (§4.3.5)"
    if nontarget is NonTarget.PD:
        return "PD", "unequivocal progression of non-target disease: PD (§4.3.3)"
    if target is None:
        table2 = {NonTarget.CR: "CR", NonTarget.NON_CR_NON_PD: "NON_CR_NON_PD", NonTarget.NE: "NE"}
        cat = table2.get(nontarget, "NE")
        return cat, f"non-target disease only, non-target {nontarget.value}: {cat} (Table 2)"
    if target in ("PD", "NE"):
        return target, f"target response {target}: overall {target} (Table 1)"
    if target == "CR" and nontarget in (NonTarget.NON_CR_NON_PD, NonTarget.NE):
        return "PR", f"targets CR but non-target {nontarget.value}: PR (Table 1)"
    return target, f"target {target}, non-target {nontarget.value}, no new lesion: {target} (Table 1)"


def _context_flags(tp: TimepointInput, first_equivocal: str | None) -> tuple[list[str], dict[str, str]]:
    flags: list[str] = []
    details: dict[str, str] = {}
    new = tp.has_new_lesion()
    if new is NewLesion.EQUIVOCAL:
        flags.append("equivocal_new_lesion")
    if new is NewLesion.UNEQUIVOCAL and first_equivocal is not None:
        details["progression_dated_to"] = first_equivocal
    if tp.clinical is Clinical.WORSE:
        flags.append("symptomatic_deterioration")
    return flags, details


def _followup(
    params: RecistParams,
    targets: Sequence[LesionInput],
    rows: Sequence[SumRow],
    tp: TimepointInput,
    i: int,
    state: tuple[str | None, str | None],
) -> TimepointResult:
    previous_overall, first_equivocal = state
    flags, details = _context_flags(tp, first_equivocal)
    new = tp.has_new_lesion()
    details |= {"nontarget": tp.nontarget.value, "new_lesion": new.value}
    if not tp.imaging_done:
        return TimepointResult(tp.label, "NE", evaluable=False, reasons=("no imaging at this timepoint (§4.4.2)",),
                               details=details, flags=tuple(flags))
    if not targets:
        cat, why = overall(None, tp.nontarget, new)
        return TimepointResult(tp.label, cat, evaluable=cat != "NE", reasons=(why,), details=details,
                               flags=tuple(flags))
    row = rows[i]
    nadir, where = nadir_before(rows, i)
    target, reasons = _target_response(params, targets, rows, i, previous_overall)
    cat, why = overall(target, tp.nontarget, new)
    numbers = {
        "sum_mm": f(row.total),
        "nadir_mm": f(nadir),
        "pct_vs_baseline": f(pct_of(row.total, rows[0].total)),
        "pct_vs_nadir": f(pct_change(row.total, nadir)),
        "abs_change_vs_nadir_mm": f(row.total - nadir),
        "abs_change_vs_baseline_mm": f(row.total - rows[0].total),
    }
    details["target_response"] = target
    return TimepointResult(
        tp.label, cat, numbers=numbers, nadir_timepoint=rows[where].label, evaluable=cat != "NE",
        reasons=(*reasons, why), details=details, flags=tuple(flags),
    )


def assess(timepoints: Sequence[TimepointInput], params: RecistParams) -> Assessment:
    """RECIST 1.1 time-point responses; timepoints[0] is the baseline."""
    if not timepoints:
        raise ValueError("timepoints: at least the baseline is needed")
    baseline = timepoints[0]
    targets = [les for les in baseline.lesions if les.role is Role.TARGET]
    rows = sum_rows(timepoints, targets, lambda t, les: lesion_value(params, t, les))
    if not rows[0].complete:
        missing = [k for k, v in rows[0].values.items() if v is None]
        raise ValueError(f"baseline target {', '.join(missing)} has no measurement")
    if targets and rows[0].total == 0:
        raise ValueError("baseline: the sum of the target diameters is 0 mm")
    base_flags = _baseline_flags(params, baseline, targets)
    results = [
        TimepointResult(
            baseline.label, "BASELINE", numbers={"sum_mm": f(rows[0].total)} if targets else {},
            reasons=(f"baseline sum of diameters {fmt(rows[0].total, ' mm')} over {len(targets)} targets",),
            flags=tuple(base_flags),
        )
    ]
    previous: str | None = None
    first_equivocal: str | None = None
    for i in range(1, len(timepoints)):
        tp = timepoints[i]
        res = _followup(params, targets, rows, tp, i, (previous, first_equivocal))
        results.append(res)
        if res.category != "NE":
            previous = res.category
        if first_equivocal is None and tp.has_new_lesion() is NewLesion.EQUIVOCAL:
            first_equivocal = tp.label
    return Assessment.from_timepoints(CRITERION, params.citation.to_citation(), tuple(results))
