"""What the report text says of a PERCIST 1.0 assessment: the hottest lesion's SULpeak and its
change from the baseline's, the measurability threshold, the liver reference of this visit and
of the baseline, and the new lesions (the templates word it, templates/report/*.j2 `percist`)."""

from __future__ import annotations

from typing import Any

from daemon.criteria.percist import CRITERION
from daemon.findings import LesionKind, Timepoint
from daemon.report.inputs import ReportRequest


def timepoint_number(tp: Timepoint, key: str) -> float | None:
    """A number of the timepoint's context, else of its lesions' notes (a timepoint read back
    from the node's database keeps its lesions, not its context)."""
    found = [tp.context.get(key, ""), *(les.measurements.notes.get(key, "") for les in tp.lesions)]
    for text in found:
        try:
            return float(text)
        except ValueError:
            continue
    return None


def _hottest_id(tp: Timepoint) -> str | None:
    peaks = [(les.measurements.intensity["sul_peak"], les.tracking_id) for les in tp.lesions
             if "sul_peak" in les.measurements.intensity]
    return max(peaks)[1] if peaks else None


def percist_context(req: ReportRequest) -> dict[str, Any] | None:
    """The numbers of the PERCIST sentence; None when the assessment is not PERCIST's."""
    a = req.assessment
    if a is None or a.criterion != CRITERION or not a.timepoints:
        return None
    latest = a.timepoints[-1]
    n = latest.numbers
    baseline_tp = req.history[0] if req.history else None
    return {
        "hottest": n.get("hottest_sulpeak"),
        "hottest_id": _hottest_id(req.timepoint),
        "baseline": n.get("baseline_sulpeak"),
        "delta": n.get("delta_sul"),
        "pct": n.get("pct_vs_baseline"),
        "threshold": n.get("measurability_threshold"),
        "measurable": bool(latest.checks.get("measurable")),
        "liver": timepoint_number(req.timepoint, "liver_sul_mean"),
        "liver_sd": timepoint_number(req.timepoint, "liver_sul_sd"),
        "liver_baseline": timepoint_number(baseline_tp, "liver_sul_mean") if baseline_tp is not None else None,
        "n_new": sum(1 for les in req.timepoint.lesions if les.kind is LesionKind.NEW),
        "new_ids": [les.tracking_id for les in req.timepoint.lesions if les.kind is LesionKind.NEW],
        "comparability_warning": bool(latest.checks.get("comparability_warning")),
        "is_baseline": latest.category == "BASELINE",
    }
