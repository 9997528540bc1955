"""SR content of a lesion response beyond its category (issue 19), in the groups of sr_groups.py.

In the assessment group: the exploratory volumetric companion (its category as a 99NADIR
"Volumetric response (exploratory)" evaluation, its numbers as NUMs on the assessment's anchor),
the near-threshold review flag (Yes / No) and every flag of the assessment coded as (99NADIR FLAG).
In a lesion group: whether the lesion is inside an irradiated field (with a TEXT naming the
treated volume, the plan, the treatment date and the prescribed dose) and whether its growth is
a possible treatment effect (radionecrosis not excluded).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

from daemon.criteria.assessment import Assessment
from daemon.findings import Lesion
from daemon.report import codes as nc

# the criterion's number name -> (concept, unit) of the volumetric companion
VOLUMETRIC_NUMBERS: dict[str, tuple[CodedConcept, CodedConcept]] = {
    "vol_sum_ml": (nc.VOLUME_SUM, nc.ML),
    "vol_pct_vs_baseline": (nc.VOLUME_PCT_VS_BASELINE, nc.PERCENT),
    "vol_pct_vs_nadir": (nc.VOLUME_PCT_VS_NADIR, nc.PERCENT),
}
# the notes daemon.pipelines.irradiated_field writes on a lesion in the field
FIELD_NOTES = ("rt_field", "rt_plan", "rt_treated_on", "rt_dose")


def _yes(value: bool) -> CodedConcept:
    return CodedConcept(codes.SCT.Yes.value, "SCT", "Yes") if value else CodedConcept(
        codes.SCT.No.value, "SCT", "No")


def assessment_evaluations(assessment: Assessment) -> list[hd.sr.QualitativeEvaluation]:
    """The volumetric companion's category, the near-threshold flag and the assessment's flags."""
    out = []
    volumetric = assessment.details.get("volumetric_response")
    if volumetric:
        out.append(hd.sr.QualitativeEvaluation(nc.VOLUMETRIC_RESPONSE, nc.category_code(volumetric)))
    latest = assessment.timepoints[-1] if assessment.timepoints else None
    if latest is not None and "near_threshold" in latest.checks:
        out.append(hd.sr.QualitativeEvaluation(nc.NEAR_THRESHOLD, _yes(latest.checks["near_threshold"])))
    out.extend(hd.sr.QualitativeEvaluation(nc.FLAG, nc.flag_code(flag)) for flag in assessment.flags)
    return out


def volumetric_numbers(assessment: Assessment) -> list[tuple[CodedConcept, float | None, CodedConcept]]:
    """The volumetric companion's numbers (none when it was not computed)."""
    if not assessment.details.get("volumetric_response"):
        return []
    return [(concept, assessment.numbers.get(name), unit) for name, (concept, unit) in VOLUMETRIC_NUMBERS.items()]


def treatment_effect_lesions(assessment: Assessment | None) -> tuple[str, ...]:
    """The tracking ids whose growth the criterion flagged as a possible treatment effect."""
    if assessment is None:
        return ()
    said = assessment.details.get("treatment_effect_lesions", "")
    return tuple(x.strip() for x in said.split(",") if x.strip())


def field_text(lesion: Lesion) -> str:
    """'PTV_L1; RT plan SRS 1; 2025-01-20; 24 Gy in 3 fractions' ('' when not in a field)."""
    notes = lesion.measurements.notes
    if "rt_field" not in notes:
        return ""
    parts = [notes["rt_field"], f"RT plan {notes.get('rt_plan') or 'not known'}",
             f"treated {notes.get('rt_treated_on') or 'on a date not known'}",
             notes.get("rt_dose") or "prescribed dose not known"]
    return "; ".join(parts)


def lesion_evaluations(lesion: Lesion, effect: Sequence[str]) -> list[hd.sr.QualitativeEvaluation]:
    if "rt_field" not in lesion.measurements.notes:
        return []
    out = [hd.sr.QualitativeEvaluation(nc.IRRADIATED, _yes(True))]
    if lesion.tracking_id in effect:
        out.append(hd.sr.QualitativeEvaluation(nc.TREATMENT_EFFECT, _yes(True)))
    return out


def lesion_texts(lesion: Lesion) -> list[hd.sr.TextContentItem]:
    text = field_text(lesion)
    if not text:
        return []
    return [hd.sr.TextContentItem(nc.IRRADIATED_FIELD, text[:1024], hd.sr.RelationshipTypeValues.CONTAINS)]
