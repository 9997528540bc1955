"""RANO-BM for the brain-metastases route: target selection at baseline and the
timepoint inputs of the criterion, from tracked lesions (pure; thresholds from rules/rano_bm.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from daemon.criteria import rano_bm
from daemon.criteria.assessment import Assessment
from daemon.criteria.inputs import LesionInput, NonTarget, Role, TimepointInput, from_finding
from daemon.criteria.params import RanoBmParams
from daemon.criteria.rules import RulesSource, rules_source
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.measure.lesions import MeasuredLesion
from daemon.pipelines.irradiated_field import NOTE_DATE, NOTE_FIELD
from daemon.volume import Volume


def load_params(rules: Path | RulesSource) -> RanoBmParams:
    """rano_bm.yaml: the shipped file with the site's overrides (a folder alone: its file)."""
    return rules_source(rules).load(RanoBmParams, "rano_bm")


def thresholds(params: RanoBmParams) -> dict[str, float]:
    """The lines of the trend plot."""
    return {"pr_pct_vs_baseline": float(params.pr_pct_vs_baseline), "pd_pct_vs_nadir": float(params.pd_pct_vs_nadir)}


def _slice_mm(volume: Volume) -> float:
    return float(volume.spacing[0])


class RanoBmRule:
    """RANO-BM as the brain route's response rule (daemon.pipelines.lesion_followup.ResponseRule)."""

    criterion = "RANO-BM"

    def __init__(self, rules: Path | RulesSource) -> None:
        self.params = load_params(rules)

    def baseline_kinds(self, lesions: Sequence[MeasuredLesion], volume: Volume, sites: Sequence[str],
                       nodes: Sequence[bool]) -> list[LesionKind]:
        return baseline_kinds(self.params, lesions, volume)

    def assess(self, history: Sequence[Timepoint], current: Timepoint, volume: Volume) -> tuple[Assessment | None, str]:
        return assess(self.params, history, current, volume)

    def thresholds(self) -> dict[str, float]:
        return thresholds(self.params)


def baseline_kinds(params: RanoBmParams, measured: Sequence[MeasuredLesion], volume: Volume) -> list[LesionKind]:
    """Targets: the measurable lesions, largest long axis first, at most `max_targets`; the rest non-target."""
    tp = TimepointInput("baseline", slice_thickness_mm=_slice_mm(volume))
    ranked = []
    for n, m in enumerate(measured):
        la, sa = m.measurements.long_axis, m.measurements.short_axis
        les = LesionInput(str(n), long_axis_mm=la.length_mm if la else None, short_axis_mm=sa.length_mm if sa else None)
        if la is not None and rano_bm.measurable(params, les, tp):
            ranked.append((la.length_mm, n))
    targets = {n for _, n in sorted(ranked, reverse=True)[: params.max_targets]}
    return [LesionKind.TARGET if n in targets else LesionKind.NON_TARGET for n in range(len(measured))]


def _nontarget(baseline: Timepoint, tp: Timepoint) -> NonTarget:
    wanted = {les.tracking_uid for les in baseline.lesions if les.kind is LesionKind.NON_TARGET}
    if not wanted:
        return NonTarget.NONE
    present = {les.tracking_uid for les in tp.lesions} & wanted
    return NonTarget.NON_CR_NON_PD if present else NonTarget.CR


def _treated(les: Lesion, when: date | None) -> LesionInput:
    """A lesion inside an irradiated field (its notes, daemon.pipelines.irradiated_field), with the
    days from its treatment to the timepoint when both dates are known."""
    found = from_finding(les)
    notes = les.measurements.notes
    if NOTE_FIELD not in notes:
        return found
    treated_on = notes.get(NOTE_DATE, "")
    days = (when - date.fromisoformat(treated_on)).days if treated_on and when else None
    return replace(found, treated_field=True, days_since_treatment=days)


def timepoint_input(baseline: Timepoint, tp: Timepoint, slice_mm: float | None) -> TimepointInput:
    """The criterion's view of one timepoint: a baseline target not found is 0 mm (disappeared)."""
    lesions = [_treated(les, tp.study_date) for les in tp.lesions]
    seen = {les.tracking_id for les in tp.lesions}
    for les in baseline.lesions:
        if les.kind is LesionKind.TARGET and les.tracking_id not in seen:
            lesions.append(LesionInput(les.tracking_id, Role.TARGET, long_axis_mm=0.0, short_axis_mm=0.0, volume_ml=0.0))
    label = tp.study_date.isoformat() if tp.study_date else tp.study_instance_uid
    return TimepointInput(label, tuple(lesions), nontarget=_nontarget(baseline, tp), slice_thickness_mm=slice_mm)


def assess(params: RanoBmParams, history: Sequence[Timepoint], current: Timepoint,
           volume: Volume) -> tuple[Assessment | None, str]:
    """RANO-BM over the history and this timepoint; (None, why) when it cannot be assessed."""
    timepoints = [*history, current]
    baseline = timepoints[0]
    if not any(les.kind is LesionKind.TARGET for les in baseline.lesions):
        return None, "no measurable target lesion at baseline: RANO-BM response cannot be assessed"
    inputs = [timepoint_input(baseline, tp, _slice_mm(volume) if tp is current else None) for tp in timepoints]
    try:
        return rano_bm.assess(inputs, params), ""
    except ValueError as exc:
        return None, f"RANO-BM not assessable: {exc}"
