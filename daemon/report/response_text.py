"""What the report text says of a lesion response beyond its category (issue 19): the lesions in
an irradiated field (volume, plan, date, dose), the possible treatment effect with the rules'
radionecrosis-versus-progression question in the report's language (never a diagnosis), the
exploratory volumetric companion and the near-threshold review flag (templates/report/*.j2)."""

from __future__ import annotations

from typing import Any

from daemon.report.inputs import ReportRequest
from daemon.report.sr_rano_bm import field_text, treatment_effect_lesions


def response_context(req: ReportRequest, language: str) -> dict[str, Any]:
    a = req.assessment
    notes = {les.tracking_id: les.measurements.notes for les in req.timepoint.lesions}
    irradiated = [{"id": les.tracking_id, "field": field_text(les), "roi": notes[les.tracking_id]["rt_field"],
                   "date": notes[les.tracking_id].get("rt_treated_on", ""),
                   "dose": notes[les.tracking_id].get("rt_dose", "")}
                  for les in req.timepoint.lesions if "rt_field" in les.measurements.notes]
    effect = treatment_effect_lesions(a)
    details = a.details if a is not None else {}
    latest = a.timepoints[-1] if a is not None and a.timepoints else None
    numbers = latest.numbers if latest is not None else {}
    volumetric = None
    if details.get("volumetric_response"):
        volumetric = {"category": details["volumetric_response"], "sum_ml": numbers.get("vol_sum_ml"),
                      "pct_baseline": numbers.get("vol_pct_vs_baseline"), "pct_nadir": numbers.get("vol_pct_vs_nadir"),
                      "exploratory": "volumetric_exploratory" in (a.flags if a is not None else ())}
    return {
        "irradiated": irradiated,
        "effect": [i for i in irradiated if i["id"] in effect] or [{"id": x, "roi": "", "date": "", "dose": ""}
                                                                    for x in effect],
        "question": details.get(f"treatment_effect_question_{language}", ""),
        "volumetric": volumetric,
        "near_threshold": bool(latest is not None and latest.checks.get("near_threshold")),
    }
