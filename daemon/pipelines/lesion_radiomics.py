"""Radiomics per tracked lesion, for research: a step of the lesion-follow-up pipeline.

When a route asks for it (`radiomics: {profile: NAME}`, daemon.pipelines.params), each
tracked lesion's PyRadiomics features are extracted on the measured series inside its
label (daemon.measure.radiomics, profile from rules/radiomics.yaml with the site's
overrides), recorded with the timepoint (the next study's delta reads them from the
patient's history), compared with the latest prior timepoint (daemon.measure.delta_radiomics),
and exported twice, apart from the clinical report: a research SR (daemon.report.research_sr)
among the outputs, and a CSV table handed to the runtime (daemon.pipelines.research), which
writes it under the settings' `research.folder`. Nothing of this enters the clinical SR.

Which prior: the features the patient's latest prior timepoint recorded (the database
history). They are not recomputed from the prior's images: the prior's lesion masks are not
at hand. A prior without features (radiomics off then, or read back from a PACS SR), a
lesion new since, another profile, or priors that could not be looked up: the delta is
"not computable" with that reason, never zeros.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset

from daemon.criteria.rules import RulesSource
from daemon.findings import Lesion, Timepoint
from daemon.measure.delta_radiomics import COMPUTED, NOTE_KEY, LesionDelta, Provenance, deltas
from daemon.measure.radiomics import (
    RadiomicsRules,
    extract_features,
    profile_hash,
    pyradiomics_version,
)
from daemon.measure.radiomics_io import RadiomicsRow, csv_name
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.params import RadiomicsParams
from daemon.pipelines.research import ResearchTable, record_research
from daemon.report.identity import object_identity
from daemon.report.research_sr import ResearchSrRequest, build_research_sr
from daemon.report.sr import SrIdentity
from daemon.volume import LesionMask

log = logging.getLogger(__name__)

TOO_SMALL = "not computable: PyRadiomics refused the lesion (too small or flat for the profile)"


@dataclass(frozen=True)
class LesionRadiomics:
    """The tracked lesions with their features, and how they were computed."""

    lesions: tuple[Lesion, ...]
    provenance: Provenance
    profile_source: str
    feature_status: dict[str, str]  # tracking UID -> "computed" / "not computable: why"


def measure(params: RadiomicsParams, rules: RulesSource, mask: LesionMask,
            lesions: Sequence[Lesion]) -> LesionRadiomics:
    """Each lesion's features inside its label of `mask` (on the measured series' grid)."""
    table = rules.load(RadiomicsRules, "radiomics")
    name = params.profile or table.default_profile
    profile = table.profile(name)
    provenance = Provenance(name, profile_hash(profile), pyradiomics_version())
    out, status = [], {}
    for les in lesions:
        features = extract_features(mask.volume, mask.labels == les.segment_number, profile) \
            if les.segment_number is not None else {}
        status[les.tracking_uid] = COMPUTED if features else TOO_SMALL
        m = replace(les.measurements, radiomics=features,
                    notes={**les.measurements.notes, NOTE_KEY: provenance.note()} if features else les.measurements.notes)
        out.append(replace(les, measurements=m))
    log.info("radiomics: %d lesion(s), profile %s, PyRadiomics %s", len(out), name, provenance.version)
    return LesionRadiomics(tuple(out), provenance, profile.source, status)


def lesion_deltas(result: LesionRadiomics, history: Sequence[Timepoint], uncompared: str | None) -> dict[str, LesionDelta]:
    """Tracking UID -> delta against the latest prior; all not computable when the priors
    could not be looked up (`uncompared`, the report's sentence)."""
    if uncompared:
        why = f"not computable: earlier timepoints could not be looked up ({uncompared.rstrip('.')})"
        return {les.tracking_uid: LesionDelta(why) for les in result.lesions}
    return deltas(result.lesions, history)


def _day(d: date | None) -> str:
    return d.strftime("%Y%m%d") if d else ""


def rows(result: LesionRadiomics, delta: dict[str, LesionDelta], study: Timepoint, series_uid_: str,
         seg: Dataset | None) -> tuple[RadiomicsRow, ...]:
    p = result.provenance
    out = []
    for les in result.lesions:
        d = delta[les.tracking_uid]
        mask_ref = str(seg.SOPInstanceUID) if seg is not None else "no SEG written (label of the run's mask)"
        out.append(RadiomicsRow(
            study.study_instance_uid, series_uid_, les.tracking_id, les.tracking_uid, les.segment_number, mask_ref,
            p.profile, p.profile_hash, p.version, dict(les.measurements.radiomics), _day(study.study_date),
            result.feature_status[les.tracking_uid], d.prior_study_instance_uid, _day(d.prior_study_date),
            d.status, dict(d.values),
        ))
    return tuple(out)


def _identity(inp: PipelineInput) -> SrIdentity:
    settings = inp.report
    return SrIdentity(**vars(object_identity(inp.study_instance_uid, inp.route, "research-sr", settings.research_sr,
                                             max(inp.revision - 1, 0), settings, inp.software_version)))


def research_outputs(inp: PipelineInput, result: LesionRadiomics, history: Sequence[Timepoint],
                     uncompared: str | None, current: Timepoint, measured_series: str,
                     sources: tuple[Dataset, ...], finding: CodedConcept, datasets: Sequence[Dataset]) -> Dataset:
    """The research SR (returned, for the outputs) and the CSV table (recorded for the runtime)."""
    delta = lesion_deltas(result, history, uncompared)
    seg = next((ds for ds in datasets if ds.Modality == "SEG"), None)
    table = rows(result, delta, current, measured_series, seg)
    record_research(ResearchTable(csv_name(inp.route, inp.study_instance_uid), table))
    req = ResearchSrRequest(inp.study_instance_uid, sources, result.lesions, result.provenance, result.profile_source,
                            delta, result.feature_status, finding, seg)
    computed = sum(1 for d in delta.values() if d.computable)
    log.info("radiomics: research SR and CSV, %d lesion(s), delta computed for %d", len(table), computed)
    return build_research_sr(req, _identity(inp))
