"""The irradiated field: which tracked lesions lie inside a treated volume of the patient's
radiotherapy objects, with the treatment date and prescribed dose (issue 19).

The runtime's priors source gives the patient's RT objects from the PACS
(`PriorsSource.rt_objects`); they are read (`daemon.imaging.rt_objects`), each treated volume
(PTV/CTV/GTV by RT ROI Interpreted Type or name, rules/irradiated_field.yaml) is rasterised onto
this study's grid (`daemon.measure.rt_field`) and laid over the lesions' labels. A structure in
this study's frame of reference is used as it is; one drawn on a prior series is carried over by
the rigid registration of that series onto this study (the one the pipeline computed for the
latest prior, else one computed here when that series can be had). A structure in another frame
of reference with no registration is not mapped, and the report says so: never a guess.

A lesion in the field gets notes (`rt_field`, `rt_treated_on`, `rt_dose`, `rt_plan`) that the
RANO-BM inputs read (`treated_field`, days since treatment) and the report shows; the sentences
returned say which lesions were in the field, with date and dose, and every warning. A lookup that
failed is said ("could not be looked up"), never taken for "no RT objects".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.criteria.params import CitationModel
from daemon.criteria.rules import RulesSource
from daemon.findings import Lesion
from daemon.imaging.rt_objects import Plan, Roi, RtObjects, StructureSet, read_rt_objects
from daemon.measure.registration import Alignment, AlignmentMethod, align
from daemon.measure.rt_field import FloatArray, Overlap, is_treated_volume, overlaps, rasterise
from daemon.pipelines.priors import UNAVAILABLE, Priors, PriorsSource, Request
from daemon.volume import LesionMask, Volume

log = logging.getLogger(__name__)

NOTE_FIELD, NOTE_DATE, NOTE_DOSE, NOTE_PLAN = "rt_field", "rt_treated_on", "rt_dose", "rt_plan"


class FieldRules(BaseModel):
    """rules/irradiated_field.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    citation: CitationModel
    treated_types: tuple[str, ...] = Field(min_length=1)
    name_patterns: tuple[str, ...] = ()
    min_overlap_fraction: float = Field(gt=0, le=1)

    @field_validator("name_patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a regular expression: {exc}") from exc
        return patterns


@dataclass(frozen=True, eq=False)
class FieldInput:
    rules: RulesSource
    source: PriorsSource
    req: Request
    priors: Priors
    alignments: Sequence[Alignment]  # per prior timepoint, as the pipeline aligned them
    mask: LesionMask  # the tracked lesions, label = Lesion.segment_number
    lesions: tuple[Lesion, ...]
    register: bool = True  # may register a structure's series onto this study


@dataclass(frozen=True)
class InField:
    roi: str
    fraction: float
    plan: Plan | None
    dose_gy: float | None


def _to_grid(inp: FieldInput, ss: StructureSet, roi: Roi, cache: dict[str, FloatArray | None]) -> FloatArray | None:
    """4x4 from the structure's patient coordinates onto this study's, None when there is none."""
    volume = inp.mask.volume
    if roi.frame_of_reference_uid == volume.frame_of_reference_uid:
        return np.eye(4)
    series = ss.referenced_series_uid
    if not series:
        return None
    if series not in cache:
        cache[series] = _registered(inp, ss, roi, volume)
    return cache[series]


def _registered(inp: FieldInput, ss: StructureSet, roi: Roi, volume: Volume) -> FloatArray | None:
    series = ss.referenced_series_uid
    latest = inp.priors.series[-1] if inp.priors.series else ""
    if latest == series and inp.alignments and inp.alignments[-1].method is AlignmentMethod.REGISTRATION:
        return np.asarray(np.linalg.inv(inp.alignments[-1].matrix), dtype=np.float64)
    if not inp.register:
        return None
    prior = inp.source.prior_volume(inp.req, ss.study_instance_uid, series)
    if prior is None or prior.frame_of_reference_uid != roi.frame_of_reference_uid:
        return None
    found = align(prior, volume)
    if found.method is not AlignmentMethod.REGISTRATION:
        return None
    log.info("structure set %s: its series registered onto the study (%.1f deg, %.1f mm)", ss.sop_instance_uid,
             found.rotation_deg, found.translation_mm)
    return np.asarray(np.linalg.inv(found.matrix), dtype=np.float64)


def _dose(plan: Plan | None, roi: Roi) -> float | None:
    if plan is None:
        return None
    for number, gy in plan.prescription.roi_doses:
        if number == roi.number:
            return gy
    return plan.prescription.dose_gy


def _map(inp: FieldInput, rules: FieldRules, objects: RtObjects) -> tuple[dict[int, InField], dict[int, float], list[str]]:
    """Label -> the treated volume it lies in; label -> a partial overlap; warnings."""
    best: dict[int, InField] = {}
    partial: dict[int, float] = {}
    said: list[str] = []
    cache: dict[str, FloatArray | None] = {}
    volume = inp.mask.volume
    for ss in objects.structure_sets:
        plan = objects.plan_for(ss.sop_instance_uid)
        for roi in ss.rois:
            if not is_treated_volume(roi.name, roi.interpreted_type, rules.treated_types, rules.name_patterns):
                continue
            to_grid = _to_grid(inp, ss, roi, cache)
            if to_grid is None:
                said.append(f"RT structure set '{ss.label or ss.sop_instance_uid}', volume '{roi.name}': drawn in "
                            f"another frame of reference ({roi.frame_of_reference_uid}) than this study, with no "
                            "registration onto it: not mapped onto the lesions")
                continue
            try:
                field = rasterise([c.points for c in roi.contours], to_grid, volume.affine, volume.shape)
            except ValueError as exc:
                said.append(f"RT structure set '{ss.label or ss.sop_instance_uid}', volume '{roi.name}': {exc}: "
                            "not mapped")
                continue
            for o in overlaps(inp.mask.labels, field):
                _keep(best, partial, o, rules, InField(roi.name, o.fraction, plan, _dose(plan, roi)))
    return best, partial, said


def _keep(best: dict[int, InField], partial: dict[int, float], o: Overlap, rules: FieldRules, found: InField) -> None:
    if o.fraction < rules.min_overlap_fraction:
        partial[o.label] = max(partial.get(o.label, 0.0), o.fraction)
        return
    if o.label not in best or o.fraction > best[o.label].fraction:
        best[o.label] = found


def _dose_text(gy: float | None, fractions: int | None) -> str:
    if gy is None:
        return ""
    return f"{gy:g} Gy" + (f" in {fractions} fraction{'s' if fractions != 1 else ''}" if fractions else "")


def _noted(lesion: Lesion, f: InField) -> Lesion:
    when: date | None = f.plan.when if f.plan else None
    notes = {**lesion.measurements.notes, NOTE_FIELD: f.roi, NOTE_DATE: when.isoformat() if when else "",
             NOTE_DOSE: _dose_text(f.dose_gy, f.plan.prescription.fractions if f.plan else None),
             NOTE_PLAN: f.plan.label if f.plan else ""}
    return replace(lesion, measurements=replace(lesion.measurements, notes=notes))


def _sentence(lesion: Lesion, f: InField) -> str:
    n = lesion.measurements.notes
    if f.plan is None:
        plan = "treatment date not known (no RT plan references its structure set)"
    else:
        when = n[NOTE_DATE] or f"date not known (RT plan '{f.plan.label}' gives no RT Plan Date)"
        plan = f"RT plan '{f.plan.label}' of {when}"
        plan += f", prescribed {n[NOTE_DOSE]}" if n[NOTE_DOSE] else ", no prescribed dose in the plan"
    return (f"{lesion.tracking_id} is in the irradiated field: {f.fraction * 100:.0f} % inside treated volume "
            f"'{f.roi}'; {plan}.")


def mark_treated(inp: FieldInput) -> tuple[tuple[Lesion, ...], tuple[str, ...]]:
    """The lesions with the irradiated field noted on those inside it, and what the report says."""
    lookup = inp.source.rt_objects(inp.req)
    if lookup.source == UNAVAILABLE:
        return inp.lesions, (f"The irradiated field could not be looked up ({lookup.note}): which lesions "
                             "were irradiated is not known.",)
    if not lookup.datasets:
        return inp.lesions, ((f"Irradiated field: {lookup.note}.",) if inp.req.pacs else ())
    rules = inp.rules.load(FieldRules, "irradiated_field")
    objects = read_rt_objects(lookup.datasets)
    best, partial, said = _map(inp, rules, objects)
    out, sentences = [], []
    for les in inp.lesions:
        label = les.segment_number
        if label in best:
            les = _noted(les, best[label])
            sentences.append(_sentence(les, best[label]))
        elif label in partial:
            sentences.append(f"{les.tracking_id} lies {partial[label] * 100:.0f} % inside a treated volume (less "
                             f"than {rules.min_overlap_fraction * 100:.0f} %): not counted as irradiated.")
        out.append(les)
    if not best and not said:
        sentences.append("No tracked lesion lies in a treated volume of the patient's RT structure sets.")
    warnings = [f"RT objects: {w}." for w in (*objects.warnings, *said)]
    return tuple(out), (*sentences, *warnings)
