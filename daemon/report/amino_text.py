"""What the report text says of a brain PET (route brain-pet-amino): per lesion its
lesion-to-reference ratios and each published criterion (its cut-off, the values compared,
the category, sensitivity and specificity, or why it is not applicable / not evaluable / not
computable), the reference regions, and why a study could not be read. Structured here, worded
by the templates (templates/report/*.j2 `amino`), so a French report is French throughout."""

from __future__ import annotations

import re
from typing import Any

from daemon.criteria.amino_pet import CRITERION
from daemon.criteria.assessment import Assessment
from daemon.report.inputs import Outcome, Reason, ReportRequest

RATIOS = (("s", "max"), ("s", "mean"), ("n", "max"), ("n", "mean"), ("wm", "max"), ("wm", "mean"),
          ("gm", "max"), ("gm", "mean"))
# region key (daemon.pipelines.brain_pet REGION_NAMES) by the study group's measurement names
REGIONS = ("normal_brain", "striatum", "white_matter", "grey_matter_thalamus")
_TRIGGER = re.compile(r"^(?P<quantity>.+)_(?P<op>ge|gt|lt|le)_(?P<value>[0-9.]+)$")


def _coded(r: Reason) -> dict[str, str]:
    """A reason as the templates word it: its code, its values, and its English `text`, which a
    template whose table (amino.*.j2 `reasons`, `origins`) lacks the code gives as it is."""
    return {**r.values, "code": r.code, "text": r.text}


def _criterion(a: Assessment) -> dict[str, Any]:
    conditions = []
    for trigger in a.lists.get("triggered_by", ()):
        m = _TRIGGER.match(trigger)
        if m is not None:
            conditions.append(m.groupdict())
    return {
        "label": a.details.get("label", ""),
        "cutoff": a.details.get("cutoff", ""),
        "tracer": a.details.get("tracer", ""),
        "setting": a.details.get("setting", ""),
        "cut_tracer": a.details.get("cut_tracer", ""),
        "cut_setting": a.details.get("cut_settings", "").split(" ")[0],
        "category": a.category,
        "conditions": conditions,
        "values": {k: v for k, v in a.numbers.items()
                   if v is not None and not k.endswith("_pct") and k != "auc"},
        "missing": list(a.lists.get("missing", ())),
        "se": a.numbers.get("sensitivity_pct"),
        "sp": a.numbers.get("specificity_pct"),
        "early": a.details.get("early", ""),  # Horky: none_within | not_paired | paired
        "early_within_h": a.details.get("early_within_h", ""),
        "early_study": a.details.get("early_study", ""),
        "early_minutes": a.details.get("early_minutes", ""),
        "citation": a.citation.text,
    }


def _regions(req: ReportRequest) -> list[dict[str, Any]]:
    out = []
    for g in req.study_measurements:
        values = {m.name: m.value for m in g.items}
        key = next((r for r in REGIONS if f"{r}_volume_ml" in values), None)
        if key is None:
            continue
        out.append({"key": key, "volume": values[f"{key}_volume_ml"], "max": values.get(f"{key}_suv_max"),
                    "mean": values.get(f"{key}_suv_mean"), "peak": values.get(f"{key}_suv_peak")})
    return out


def amino_context(req: ReportRequest) -> dict[str, Any] | None:
    """The brain PET's sentences' data; None for another route's report."""
    ctx = req.timepoint.context
    extras = [a for a in req.extra_assessments if a.criterion == CRITERION]
    if not extras and not req.route.startswith("brain-pet"):
        return None
    lesions = []
    for les in req.timepoint.lesions:
        i = les.measurements.intensity
        ratios = [{"region": r, "stat": s, "value": i[f"l_{r}_{s}"]} for r, s in RATIOS if f"l_{r}_{s}" in i]
        criteria = [_criterion(a) for a in extras if a.details.get("lesion") == les.tracking_id]
        lesions.append({"id": les.tracking_id, "suv_max": i.get("suv_max"), "ratios": ratios, "criteria": criteria})
    model = req.model.name if req.model else ""
    return {
        "tracer": ctx.get("tracer", ""),
        "setting": ctx.get("setting", ""),
        "lesions": lesions,
        "regions": _regions(req),
        "lesion_source": "mr" if model.endswith("from-mr") else ("rule" if model.endswith("rule") else ""),
        # a study not read has the input's reasons, any other the finder's (where the lesion came from)
        "reasons": [_coded(r) for r in req.reasons] if req.outcome == Outcome.NO_SUITABLE_SERIES else [],
        "origin": _coded(req.reasons[0]) if req.reasons and req.outcome != Outcome.NO_SUITABLE_SERIES else {},
    }
