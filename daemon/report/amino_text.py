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
from daemon.report.inputs import Outcome, ReportRequest

RATIOS = (("s", "max"), ("s", "mean"), ("n", "max"), ("n", "mean"), ("wm", "max"), ("wm", "mean"),
          ("gm", "max"), ("gm", "mean"))
# region key (daemon.pipelines.brain_pet REGION_NAMES) by the study group's measurement names
REGIONS = ("normal_brain", "striatum", "white_matter", "grey_matter_thalamus")
_TRIGGER = re.compile(r"^(?P<quantity>.+)_(?P<op>ge|gt|lt|le)_(?P<value>[0-9.]+)$")
# the brain PET input's reasons (daemon.pipelines.brain_pet_input, lesion_followup), by code
_REASONS = (
    ("no_series", re.compile(r"^No brain PET \(FDOPA, FET or FDG\) suitable")),
    ("suv_no_dose", re.compile(r"^SUV not computable: the PET header lacks the injected dose")),
    ("suv_weight", re.compile(r"PatientWeight missing or 0")),
    ("suv_header", re.compile(r"^SUV not computable from the PET header")),
    ("tracer", re.compile(r"^The radiopharmaceutical \((?P<name>.*)\) is none of")),
    ("extent", re.compile(r"^The series is not a brain PET: it covers (?P<mm>\d+) mm")),
    ("not_brain", re.compile(r"^The series is not a brain PET: the MNI152 brain template does not fit it")),
    ("frame_times", re.compile(r"^The PET series is dynamic \(4D.*lack their frame time")),
)
# why the lesion was not taken from the brain MR (daemon.pipelines.brain_pet_lesions), by code; `note`:
# the priors source's own words (where it looked, why it failed), quoted as they are
_NOT_FROM_MR = (
    ("no_mr", re.compile(r"no brain MR of the patient processed by route (?P<route>\S+) within (?P<days>\d+) days")),
    ("lookup", re.compile(r"the brain MR's lesions could not be looked up \((?P<note>.*)\)$")),
    ("no_date", re.compile(r"the PET has no study date")),
    ("mr_no_lesion", re.compile(r"the brain MR of (?P<date>\S+) \(route (?P<route>\S+)\) recorded no lesion")),
    ("mr_images", re.compile(r"the images of the brain MR of (?P<date>\S+) could not be had")),
    ("mr_registration", re.compile(r"the brain MR of (?P<date>\S+) could not be registered onto the PET")),
)
_NOT_FROM_MR_SENTENCE = re.compile(r"Lesion not taken from a brain MR: (?P<why>.*?)\.(?:\s+(?:Lesion region|No focus)|$)")
_FROM_MR = re.compile(r"from the brain MR of (?P<date>\S+) \(study")
_SENTENCE_END = re.compile(r"(?<=[.)])\s+(?=[A-Z])")


def reason_codes(text: str) -> list[dict[str, str]]:
    """Each sentence of `text` as a known reason, {code, and its values}; [] when a sentence is not
    known (the template then gives the text as it is, never a part of it)."""
    out = []
    for sentence in _SENTENCE_END.split(text.strip()):
        found = next(({"code": code, **m.groupdict()} for code, pattern in _REASONS
                      if (m := pattern.search(sentence)) is not None), None)
        if found is None:
            return []
        out.append(found)
    return out


def lesion_origin(reason: str) -> dict[str, str]:
    """Where the lesion region came from, as the finder said it in the report's reason: {code, values};
    code "" when not said, "other" (with `text`) when the words are not known."""
    if (m := _FROM_MR.search(reason)) is not None:
        return {"code": "from_mr", **m.groupdict()}
    m = _NOT_FROM_MR_SENTENCE.search(reason)
    if m is None:
        return {"code": ""}
    why = m.group("why")
    for code, pattern in _NOT_FROM_MR:
        if (found := pattern.search(why)) is not None:
            return {"code": code, **found.groupdict()}
    return {"code": "other", "text": why}


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
        "reasons": reason_codes(req.reason) if req.reason and req.outcome != Outcome.MEASURED else [],
        "origin": lesion_origin(req.reason),
    }
