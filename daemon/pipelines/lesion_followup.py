"""The one lesion-follow-up pipeline that every lesion route configures.

Steps, the same for each route: series selection (declarative spec, route
parameter `series`) -> the model named by the route (`model`) -> its lesion labels
measured component by component (its organ labels kept as reference regions) ->
the route's extra per-lesion features -> tracking against the patient's earlier
timepoints (the runtime's `PriorsSource`: database, else our SRs read back from the
PACS, else a baseline, said so; the latest prior registered onto the study when its
images can be had) -> the route's criterion (targets at baseline, a category at
follow-up) and extra assessments -> report objects (SR, SEG, key images, KOS) ->
the timepoint recorded for the next study.

A route is a `FollowUpRoute`: what it looks for (`Anatomy`), its default model and
series, how lesions are measured, its `ResponseRule` and its optional per-lesion
features and extra assessments. `brain_mets.py` (RANO-BM) and `liver_ct.py`
(RECIST 1.1 with Chun) are such configurations. No suitable series, or no lesion
found: a valid SR that says so, nothing else. The pipeline does no I/O besides
reading its files: priors come through `PipelineInput.priors`.

Parameters (route `parameters:`), all optional:
  model: a folder name under models/ or a path (default: the route's demo model)
  providers: auto | cpu | cuda | tensorrt (default auto)
  series: a series spec (daemon.imaging.selection.SeriesSpec; default: the route's)
  priors_from: destination queried for priors when the database has none (default pacs; "" = never)
  register_priors: register the latest prior onto the study for tracking when its images
      can be had (default true; otherwise positions are compared as they are)
  language: en | fr
  rules_dir: a site folder whose <criterion>.yaml override the shipped rules files key by key
      (default: the one the runtime provides, the node's `criteria.site_dir`)
  radiomics: {profile: NAME} -- PyRadiomics features per tracked lesion and their delta since the
      latest prior, for research: a research SR and a CSV (daemon.pipelines.lesion_radiomics)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import ValidationError
from pydicom.dataset import Dataset
from scipy import ndimage

from daemon import resources
from daemon.config import format_validation_error
from daemon.criteria.assessment import Assessment
from daemon.criteria.rules import RulesSource
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.imaging.loader import ScanResult, read_header, scan
from daemon.imaging.selection import SeriesSpec
from daemon.measure.lesions import MeasuredLesion, MeasureOptions, measure_mask
from daemon.measure.registration import Alignment, AlignmentMethod, align, identity
from daemon.measure.tracking import PriorTimepoint, TrackingResult, track
from daemon.pipelines import lesion_radiomics
from daemon.pipelines import params as pipeline_params
from daemon.pipelines.base import PipelineError, PipelineInput
from daemon.pipelines.followup_input import (
    Found,
    ImageInput,
    RuleFinder,
    StudyImage,
    model_finder,
    organ_masks,
    single_series,
)
from daemon.pipelines.irradiated_field import FieldInput
from daemon.pipelines.params import FollowUpParams as Params
from daemon.pipelines.priors import Priors, PriorsSource, Request, not_compared
from daemon.report.bundle import build_report
from daemon.report.codes import as_coded
from daemon.report.inputs import (
    ExtraKeyImage,
    ModelInfo,
    Outcome,
    Reason,
    ReferenceRegion,
    ReportRequest,
    StudyMeasurementGroup,
    TrendKind,
)
from daemon.report.uids import lesion_uid
from daemon.volume import Code, LesionMask, SegmentLabel, Volume

log = logging.getLogger(__name__)

MODELS_DIR = resources.MODELS_DIR
ALTERED_STRUCTURE = Code("49755003", "SCT", "Morphologically Altered Structure")
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
Organs = Mapping[str, BoolArray]
# (rules, image, organs of an organ model, the runtime's priors, this study's priors request) -> found
PriorFinder = Callable[[RulesSource, StudyImage, Organs, PriorsSource, Request], Found]


class ResponseRule(Protocol):
    """A route's criterion, from its rules file: targets at baseline, a category at follow-up."""

    criterion: str

    def baseline_kinds(self, lesions: Sequence[MeasuredLesion], volume: Volume, sites: Sequence[str],
                       nodes: Sequence[bool]) -> list[LesionKind]: ...

    def assess(self, history: Sequence[Timepoint], current: Timepoint,
               volume: Volume) -> tuple[Assessment | None, str]: ...

    def thresholds(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class StudyFacts:
    """What the extra assessments may read of the study besides its lesions."""

    headers: tuple[Dataset, ...]
    rules: RulesSource
    image: StudyImage | None = None  # what was measured (and its companions, e.g. the CT)
    organs: Organs | None = None
    mask: LesionMask | None = None  # the tracked lesions, one label each


# per-lesion features: (image, organ masks, lesion) -> (numbers for `intensity`, texts for `notes`)
LesionFeatures = Callable[[Volume, Organs, MeasuredLesion], tuple[dict[str, float], dict[str, str]]]
Features = Callable[[RulesSource], LesionFeatures]  # the rules -> the route's feature function
# extra assessments beside the criterion's, e.g. Chun beside RECIST
ExtraAssessments = Callable[[StudyFacts, Sequence[Timepoint], Timepoint], tuple[Assessment, ...]]
# what a timepoint records besides its lesions: (rules, image, organs, lesions) -> Timepoint.context
TimepointContext = Callable[[RulesSource, StudyImage, Organs, Sequence[MeasuredLesion]], dict[str, str]]
# study-level measurements (whole-body features, body composition): one SR group each
StudyMeasurements = Callable[[StudyFacts, Timepoint], tuple[StudyMeasurementGroup, ...]]
# the route's own key images after the lesions' (brain PET: reference regions, TAC plot): (facts, timepoint, footer)
KeyImages = Callable[[StudyFacts, Timepoint, str], tuple[ExtraKeyImage, ...]]


@dataclass(frozen=True)
class Anatomy:
    finding: Code  # what a lesion is, e.g. (SCT 14799000 "Neoplasm, Metastatic")
    finding_site: Code  # the route's organ, e.g. (SCT 12738006 "Brain")
    site: str  # a lesion's site when no organ mask says otherwise ("brain", "abdomen")
    organ_sites: tuple[str, ...] = ()  # organ labels of the model that name a lesion's site ("liver")


@dataclass(frozen=True)
class FollowUpRoute:
    criterion: str  # for messages: "RANO-BM", "RECIST 1.1"
    anatomy: Anatomy
    default_model: str
    default_series: SeriesSpec
    no_series: str  # the report's first sentence when no series fits
    measure: MeasureOptions
    rule: Callable[[RulesSource], ResponseRule]  # the rules -> the criterion's rule
    features: Features | None = None
    feature_sites: tuple[str, ...] = ()  # the sites whose lesions get the features (none: all)
    extra: ExtraAssessments | None = None
    # an organ label of the model that the series must show (at least `min_organ_ml`), else
    # "no suitable series" (e.g. a CT labelled abdomen whose field of view misses the liver)
    required_organ: str | None = None
    min_organ_ml: float = 0.0
    # what is measured: None = the one series of the series spec, as it is (followup_input)
    image_input: ImageInput | None = None
    # the route's lesion finder without a model, and which finder runs when the route's
    # `segmenter` parameter does not say (model: the manifest's model)
    rule_finder: RuleFinder | None = None
    default_segmenter: Literal["model", "rule"] = "model"
    # a rule finder that also reads the patient's lesions recorded by another route (brain PET: the
    # brain MR route's), through the runtime's priors; used instead of `rule_finder` when set
    prior_finder: PriorFinder | None = None
    # measure options from the rules (e.g. the PERCIST peak sphere) instead of `measure`
    measure_from: Callable[[RulesSource], MeasureOptions] | None = None
    # what the timepoint records of the study besides its lesions (e.g. the liver reference)
    context: TimepointContext | None = None
    # study-level measurements for the report (e.g. TMTV, body composition)
    study_measurements: StudyMeasurements | None = None
    # the SR's Procedure Reported (CID 100); None: from the modality (report/sr.py)
    procedure: Code | None = None
    # what the trend plot shows over the visits (daemon.report.trend)
    trend: TrendKind = "sum_of_diameters"
    mip: bool = False  # a coronal MIP key image (whole-body PET), daemon.report.mip
    # the route's reference regions written as SEG segments beside the lesions (brain PET)
    reference_regions: Callable[[StudyFacts], tuple[ReferenceRegion, ...]] | None = None
    key_images: KeyImages | None = None
    # the irradiated field from the patient's RT objects (brain: daemon.pipelines.irradiated_field):
    # the lesions with the field noted on those inside it, and what the report says
    irradiated: Callable[[FieldInput], tuple[tuple[Lesion, ...], tuple[str, ...]]] | None = None


def parameters(pipeline: str, raw: Any) -> Params:
    try:
        return Params.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise PipelineError(format_validation_error(f"{pipeline} parameters", exc, {},
                                                    unknown="unknown parameter (check the spelling)")) from exc


def model_dir(name: str) -> Path:
    return pipeline_params.model_dir(name)


@dataclass(frozen=True)
class _Job:
    """One run: the route, its parameters and the pipeline's input."""

    route: FollowUpRoute
    params: Params
    inp: PipelineInput

    @property
    def series(self) -> SeriesSpec:
        return self.params.series or self.route.default_series

    @property
    def rules(self) -> RulesSource:
        """The shipped rules files, overridden by the route's site folder, else the node's."""
        site = self.params.rules_dir if self.params.rules_dir is not None else self.inp.site_rules_dir
        return RulesSource(self.inp.rules_dir, site)


@dataclass(frozen=True)
class _Image:
    """The measured series and what was found on it."""

    volume: Volume
    sources: tuple[Dataset, ...]
    model: ModelInfo
    organs: Organs
    measured: tuple[MeasuredLesion, ...]
    sites: tuple[str, ...]
    nodes: tuple[bool, ...]
    series_uid: str
    study: StudyImage
    excluded: tuple[str, ...] = ()  # what the finder set aside, for the report
    identities: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # label -> carried (id, UID)
    reasons: tuple[Reason, ...] = ()  # what the finder said, coded (Found.reasons)


def _study_date(ds: Dataset) -> date | None:
    s = str(ds.get("StudyDate", "") or "")
    return date(int(s[:4]), int(s[4:6]), int(s[6:8])) if len(s) == 8 and s.isdigit() else None


def _study_headers(inp: PipelineInput, found: ScanResult) -> list[Dataset]:
    headers = [i.header for s in found.series.values() for i in s.instances]
    if not headers:  # no image at all: any readable header identifies patient and study
        for f in inp.files:
            try:
                headers.append(read_header(f))
            except (OSError, ValueError):
                continue
    return [h for h in headers if str(h.get("StudyInstanceUID", "")) == inp.study_instance_uid]


def _report(job: _Job, req: ReportRequest) -> list[Dataset]:
    # the node's report settings (series numbers, descriptions, language...); a route may set the language
    settings = job.inp.report
    if job.params.language:
        settings = settings.model_copy(update={"language": job.params.language})
    # the RT Structure Set only when one of the job's destinations takes it (a planning system)
    return build_report(req, settings, rtstruct="rtstruct" in job.inp.outputs).datasets()


def _empty(job: _Job, sources: Sequence[Dataset], outcome: Outcome, reason: str, model: ModelInfo | None = None,
           volume: Volume | None = None, *, reasons: tuple[Reason, ...] = ()) -> list[Dataset]:
    inp = job.inp
    if not sources:
        raise PipelineError(f"study {inp.study_instance_uid}: no readable instance")
    tp = Timepoint(inp.study_instance_uid, _study_date(sources[0]), ())
    anatomy = job.route.anatomy
    req = ReportRequest(route=inp.route, source_images=tuple(sources), timepoint=tp, outcome=outcome,
                        volume=volume, model=model, finding=anatomy.finding, finding_site=anatomy.finding_site,
                        reason=reason, reasons=reasons, revision=max(inp.revision - 1, 0),
                        procedure=job.route.procedure)
    log.info("study %s: %s: %s", inp.study_instance_uid, outcome, reason.splitlines()[0] if reason else "")
    return _report(job, req)


def _site(anatomy: Anatomy, organs: Organs, lesion: MeasuredLesion, node: bool) -> str:
    """A node's site is "lymph node"; a lesion's is the organ most of its surroundings (a
    2-voxel ring: organ masks leave the lesion out) belong to, else the route's default."""
    if node:
        return "lymph node"
    box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in lesion.box)
    inner = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(lesion.box, box, strict=True))
    shape = tuple(b.stop - b.start for b in box)
    mask = np.zeros(shape, dtype=bool)
    mask[inner] = lesion.local_mask
    ring = ndimage.binary_dilation(mask, iterations=2) & ~mask
    for name in anatomy.organ_sites:
        organ = organs.get(name)
        if organ is None:
            continue
        local = organ[box]
        ring_here = ring[tuple(slice(0, n) for n in local.shape)]  # a box clipped by the volume's far edge
        if ring_here.any() and np.count_nonzero(local & ring_here) * 2 > np.count_nonzero(ring_here):
            return name
    return anatomy.site


def _with_features(job: _Job, volume: Volume, organs: Organs, measured: Sequence[MeasuredLesion],
                   sites: Sequence[str]) -> tuple[MeasuredLesion, ...]:
    route = job.route
    if route.features is None:
        return tuple(measured)
    features = route.features(job.rules)
    out = []
    for m, site in zip(measured, sites, strict=True):
        if route.feature_sites and site not in route.feature_sites:
            out.append(m)
            continue
        numbers, notes = features(volume, organs, m)
        ms = replace(m.measurements, intensity={**m.measurements.intensity, **numbers},
                     notes={**m.measurements.notes, **notes})
        out.append(replace(m, measurements=ms))
    return tuple(out)


def _finder(job: _Job, req: Request) -> Callable[[StudyImage], Found]:
    """The route's finder: the manifest's model, or the route's rule (with an organ model's
    organs when the route names one)."""
    route, params = job.route, job.params
    which = params.segmenter or route.default_segmenter
    if which == "model":
        return model_finder(params.model or route.default_model, params.providers)
    if route.prior_finder is not None:
        prior_rule = route.prior_finder

        def find_with_priors(image: StudyImage) -> Found:
            organs = organ_masks(params.organ_model, params.providers, image)
            return prior_rule(job.rules, image, organs, job.inp.priors, req)

        return find_with_priors
    rule = route.rule_finder
    if rule is None:
        raise PipelineError(f"route {job.inp.route!r}: the {route.criterion} pipeline has no rule to find "
                            "lesions without a model (segmenter: model)")

    def find(image: StudyImage) -> Found:
        return rule(job.rules, image, organ_masks(params.organ_model, params.providers, image))

    return find


def _segment(job: _Job, volume: Volume,
             found: Found) -> tuple[tuple[MeasuredLesion, ...], tuple[bool, ...], tuple[str, ...]]:
    """The found lesions measured (with the route's features), and per lesion whether it is a
    node and its site."""
    route = job.route
    options = route.measure_from(job.rules) if route.measure_from is not None else route.measure
    measured = measure_mask(volume, found.lesions, options)
    nodes = tuple(m.label in found.node_labels for m in measured)
    sites = tuple(found.site_of(m) if found.site_of is not None and not node else
                  _site(route.anatomy, found.organs, m, node) for m, node in zip(measured, nodes, strict=True))
    return _with_features(job, volume, found.organs, measured, sites), nodes, sites


def _organ_missing(route: FollowUpRoute, volume: Volume, organs: Organs) -> str:
    """Why the series cannot be used for the route's organ ("" when it can)."""
    if route.required_organ is None:
        return ""
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    organ = organs.get(route.required_organ)
    found = float(np.count_nonzero(organ)) * voxel_ml if organ is not None else 0.0
    if found >= route.min_organ_ml:
        return ""
    return (f"{route.no_series} The series does not show the {route.required_organ}: "
            f"{found:.0f} mL found by the model, at least {route.min_organ_ml:g} mL needed.")


def run(route: FollowUpRoute, inp: PipelineInput, pipeline: str) -> list[Dataset]:
    """The pipeline `pipeline` (for messages) configured by `route`, on one study."""
    job = _Job(route, parameters(pipeline, inp.parameters), inp)
    found = scan(list(inp.files))
    headers = _study_headers(inp, found)
    series = {uid: s for uid, s in found.series.items() if s.study_instance_uid == inp.study_instance_uid}
    study = (route.image_input or single_series)(series, job.series, job.rules)
    if not isinstance(study, StudyImage):
        why = study if isinstance(study, Reason) else Reason("", study)
        lead = Reason("no_series", route.no_series)
        # an input's own "no series fits" adds, in another language, nothing to the route's sentence
        coded = (lead,) if why.code == lead.code else (lead, why)
        return _empty(job, headers, Outcome.NO_SUITABLE_SERIES, f"{route.no_series} {why.text}", reasons=coded)
    volume, sources = study.volume, study.sources
    req = Request(inp.route, str(sources[0].get("PatientID", "")), inp.study_instance_uid,
                  _study_date(sources[0]), job.params.priors_from, inp.report.sr_series_number,
                  tuple(job.series.modality), str(sources[0].get("IssuerOfPatientID", "")))
    found_by = _finder(job, req)(study)
    info, organs = found_by.model, found_by.organs
    measured, nodes, sites = _segment(job, volume, found_by)
    if missing := _organ_missing(route, volume, organs):
        return _empty(job, sources, Outcome.NO_SUITABLE_SERIES, missing, info, volume)
    priors = inp.priors.find(req)
    if not measured and not priors.timepoints:
        who = "the model" if (job.params.segmenter or route.default_segmenter) == "model" else "the rule"
        said = " ".join(found_by.excluded)
        return _empty(job, sources, Outcome.NO_LESION,
                      f"{who} {info.name} {info.version} found no lesion in the series. {said}".strip(),
                      info, volume, reasons=found_by.reasons)
    image = _Image(volume, sources, info, organs, measured, sites, nodes, study.series_uid, study,
                   found_by.excluded, found_by.identities, found_by.reasons)
    return _follow(job, req, priors, image, tuple(headers))


def _alignments(source: PriorsSource, req: Request, priors: Priors, volume: Volume, register: bool) -> list[Alignment]:
    """The latest prior registered onto this study when its images can be had; the others as they are."""
    none = identity(AlignmentMethod.NONE, "positions compared as they are (prior images not registered)")
    out = [none] * len(priors.timepoints)
    if not register or not priors.timepoints:
        return out
    latest = priors.timepoints[-1]
    series = priors.series[-1] if priors.series else ""
    prior = source.prior_volume(req, latest.study_instance_uid, series) if series else None
    if prior is None:
        out[-1] = identity(AlignmentMethod.NONE, "the latest prior's images could not be had: positions compared "
                           "as they are, without registration")
        return out
    out[-1] = align(prior, volume)
    log.info("latest prior registered: %s, %.1f deg, %.1f mm", out[-1].method, out[-1].rotation_deg,
             out[-1].translation_mm)
    return out


def _track(image: _Image, history: tuple[Timepoint, ...], req: Request, kinds: list[LesionKind],
           alignments: list[Alignment]) -> TrackingResult:
    first = history[0].study_instance_uid if history else req.study_instance_uid
    key = req.patient_id or first

    def mint(tid: str) -> str:
        return lesion_uid(key, first, req.route, int(tid[1:]) if tid[1:].isdigit() else 0)

    priors = [PriorTimepoint(tp, al) for tp, al in zip(history, alignments, strict=True)]
    return track(list(image.measured), image.volume, priors, study_uid=req.study_instance_uid,
                 baseline_kinds=kinds, uid_for=mint)


def _carried(image: _Image, lesions: tuple[Lesion, ...]) -> tuple[Lesion, ...]:
    """The identities the finder carried over (a brain PET lesion keeps the brain MR's L1 and its UID)."""
    if not image.identities:
        return lesions
    return tuple(replace(les, tracking_id=image.identities[m.label][0], tracking_uid=image.identities[m.label][1])
                 if m.label in image.identities else les for m, les in zip(image.measured, lesions, strict=True))


def _relabel(route: FollowUpRoute, image: _Image, lesions: tuple[Lesion, ...]) -> tuple[LesionMask, tuple[Lesion, ...]]:
    """One label (= SEG segment) per tracked lesion, numbered in order, with its site."""
    labels = np.zeros(image.volume.shape, dtype=np.uint16)
    info = []
    out = []
    for n, (m, les) in enumerate(zip(image.measured, lesions, strict=True), start=1):
        labels[m.box][m.local_mask] = n
        info.append(SegmentLabel(n, les.tracking_id, ALTERED_STRUCTURE, route.anatomy.finding))
        out.append(replace(les, segment_number=n, site=image.sites[n - 1], is_node=image.nodes[n - 1]))
    return LesionMask(volume=image.volume, labels=labels, label_info=tuple(info)), tuple(out)


def _caveats(priors: Priors, alignments: Sequence[Alignment]) -> list[str]:
    """What the report must say about the comparison: priors that could not be read,
    lesions matched on positions without registration."""
    out = []
    if priors.source == "none" and ("failed" in priors.note or "not readable" in priors.note):
        out.append(f"Earlier timepoints could not be read: {priors.note}.")
    if alignments and alignments[-1].method is AlignmentMethod.NONE:
        out.append(f"Lesions matched to the prior on positions only: {alignments[-1].note}; "
                   "lesion identities are less certain.")
    return out


def _footer(inp: PipelineInput) -> str:
    return f"Nadir {inp.software_version} - automated measurement, not verified by a physician"


def _follow(job: _Job, req: Request, priors: Priors, image: _Image, headers: tuple[Dataset, ...]) -> list[Dataset]:
    """Track, assess and report the measured lesions (none: every earlier lesion has gone)."""
    route, inp = job.route, job.inp
    rule = route.rule(job.rules)
    volume = image.volume
    uncompared = not_compared(priors)  # priors not looked up: no baseline targets, NE, nothing recorded
    kinds = [] if priors.timepoints or uncompared else rule.baseline_kinds(image.measured, volume, image.sites,
                                                                            image.nodes)
    alignments = _alignments(inp.priors, req, priors, volume, job.params.register_priors)
    tracked = _track(image, priors.timepoints, req, kinds, alignments)
    mask, lesions = _relabel(route, image, _carried(image, tracked.lesions))
    radiomics = None  # research only: into the research SR and CSV, never the clinical report
    if job.params.radiomics is not None and lesions:
        radiomics = lesion_radiomics.measure(job.params.radiomics, job.rules, mask, lesions)
        lesions = radiomics.lesions
    field_said: tuple[str, ...] = ()  # which lesions were irradiated, or why that is not known
    if route.irradiated is not None and not uncompared:
        lesions, field_said = route.irradiated(FieldInput(job.rules, inp.priors, req, priors, alignments, mask,
                                                          lesions, job.params.register_priors))
    context = {"priors": priors.note}
    if route.context is not None:
        context.update(route.context(job.rules, image.study, image.organs, image.measured))
    current = Timepoint(inp.study_instance_uid, req.study_date, lesions, context=context)
    assessment, reason = (None, uncompared) if uncompared else rule.assess(priors.timepoints, current, volume)
    caveats = (*_caveats(priors, alignments), *image.excluded, *field_said)
    if assessment is not None:  # said with the reasons behind the category
        assessment = replace(assessment, reasons=(*assessment.reasons, *caveats))
    else:
        reason = " ".join(r for r in (reason, *caveats) if r)
    facts = StudyFacts(headers, job.rules, image.study, image.organs, mask)
    extra = route.extra(facts, priors.timepoints, current) if route.extra else ()
    study_groups = route.study_measurements(facts, current) if route.study_measurements else ()
    report = ReportRequest(
        route=inp.route, source_images=image.sources, timepoint=current,
        outcome=Outcome.NOT_EVALUABLE if uncompared else Outcome.MEASURED if lesions else Outcome.NO_LESION,
        volume=volume, mask=mask if lesions else None, assessment=assessment, history=priors.timepoints,
        priors=priors.studies, model=image.model, finding=route.anatomy.finding,
        finding_site=route.anatomy.finding_site, reason=reason, reasons=image.reasons,
        revision=max(inp.revision - 1, 0),
        thresholds=rule.thresholds(), extra_assessments=extra, study_measurements=study_groups,
        procedure=route.procedure, trend=route.trend, mip=route.mip,
        reference_regions=route.reference_regions(facts) if route.reference_regions else (),
        extra_images=route.key_images(facts, current, _footer(inp)) if route.key_images else (),
    )
    datasets = _report(job, report)
    sr = next(ds for ds in datasets if ds.Modality == "SR")
    if radiomics is not None:
        datasets.append(lesion_radiomics.research_outputs(
            inp, radiomics, priors.timepoints, uncompared, current, image.series_uid, image.sources,
            as_coded(route.anatomy.finding), datasets))
    if not uncompared:
        inp.priors.record(req, current, image.series_uid, (str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID)))
    log.info("study %s: %d lesion(s), %s %s (priors: %s)", inp.study_instance_uid, len(lesions), route.criterion,
             assessment.category if assessment else "not assessed", priors.source)
    return datasets
