"""Chun morphologic response (Chun 2009): the transition between a lesion's groups 1/2/3
at baseline and follow-up gives optimal / incomplete / no response.

The group comes from the radiologist, or from an assisting classifier as a proposal
that a radiologist must confirm; the result says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daemon.criteria.assessment import Assessment, TimepointResult
from daemon.criteria.params import ChunParams

CRITERION = "Chun"
SOURCES = ("radiologist", "assisting_classifier")


@dataclass(frozen=True)
class ChunLesion:
    lesion_id: str
    baseline_group: int
    followup_group: int | None  # None: not visible at follow-up
    group_source: str = "radiologist"


def _one(params: ChunParams, les: ChunLesion) -> TimepointResult:
    if les.group_source not in SOURCES:
        raise ValueError(f"group_source must be one of {', '.join(SOURCES)}")
    details = {"group_source": les.group_source}
    flags: list[str] = []
    if les.group_source == "assisting_classifier":
        flags.append("proposed_group_unconfirmed")
    if les.baseline_group not in params.groups or (
        les.followup_group is not None and les.followup_group not in params.groups
    ):
        groups = "/".join(str(g) for g in params.groups)
        return TimepointResult(les.lesion_id, "invalid_input", evaluable=False,
                               details=details | {"response": "invalid_input"},
                               reasons=(f"groups must be {groups}; got {les.baseline_group} -> {les.followup_group}",))
    if les.followup_group is None:
        return TimepointResult(les.lesion_id, "not_evaluable", evaluable=False,
                               details=details | {"response": "not_evaluable"},
                               reasons=("lesion not visible at follow-up: Chun does not define "
                                        "disappearance (see RECIST CR)",))
    rule = next(t for t in params.transitions
                if (t.baseline, t.followup) == (les.baseline_group, les.followup_group))
    flags += rule.flags
    return TimepointResult(
        les.lesion_id, rule.response, details=details | {"response": rule.response}, flags=tuple(flags),
        reasons=(f"group {les.baseline_group} -> {les.followup_group}: {rule.response} response",),
    )


def assess(lesions: Sequence[ChunLesion], params: ChunParams, bevacizumab: bool | None = None) -> Assessment:
    """Per-lesion responses (no patient-level aggregation is published); the Assessment's
    category is the single lesion's when there is one, else 'per_lesion'."""
    if not lesions:
        raise ValueError("lesions: at least one lesion is needed")
    results = tuple(_one(params, les) for les in lesions)
    flags = [flag for r in results for flag in r.flags]
    if bevacizumab is False:
        flags.append("context_warning")
    only = results[0] if len(results) == 1 else None
    reasons = only.reasons if only else tuple(f"{r.timepoint}: {r.category}" for r in results)
    if bevacizumab is False:
        reasons += ("regimen without bevacizumab: Chun criteria validated with bevacizumab",)
    return Assessment(
        criterion=CRITERION,
        citation=params.citation.to_citation(),
        category=only.category if only else "per_lesion",
        timepoints=results,
        evaluable=all(r.evaluable for r in results),
        reasons=reasons,
        flags=tuple(dict.fromkeys(flags)),
        details=dict(only.details) if only else {},
    )
