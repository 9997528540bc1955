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
  rules_dir: folder of the criteria's rules files (default: the one the runtime provides)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError
from pydicom.dataset import Dataset
from scipy import ndimage

from daemon.criteria.assessment import Assessment
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.imaging.loader import ScanResult, read_header, scan
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.imaging.series import load_volume
from daemon.measure.lesions import MeasuredLesion, MeasureOptions, measure_mask
from daemon.measure.registration import Alignment, AlignmentMethod, align, identity
from daemon.measure.tracking import PriorTimepoint, TrackingResult, track
from daemon.pipelines.base import PipelineError, PipelineInput
from daemon.pipelines.params import FollowUpParams as Params
from daemon.pipelines.priors import Priors, PriorsSource, Request
from daemon.report.bundle import build_report
from daemon.report.inputs import ModelInfo, Outcome, ReportRequest
from daemon.report.uids import lesion_uid
from daemon.segment import LoadedModel, ModelError, load_model, segment, split_roles
from daemon.volume import Code, LesionMask, SegmentLabel, Volume

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "models"
ALTERED_STRUCTURE = Code("49755003", "SCT", "Morphologically Altered Structure")
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
Organs = Mapping[str, BoolArray]


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
    rules_dir: Path


# per-lesion features: (image, organ masks, lesion) -> (numbers for `intensity`, texts for `notes`)
LesionFeatures = Callable[[Volume, Organs, MeasuredLesion], tuple[dict[str, float], dict[str, str]]]
Features = Callable[[Path], LesionFeatures]  # rules folder -> the route's feature function
# extra assessments beside the criterion's, e.g. Chun beside RECIST
ExtraAssessments = Callable[[StudyFacts, Sequence[Timepoint], Timepoint], tuple[Assessment, ...]]


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
    rule: Callable[[Path], ResponseRule]  # rules folder -> the criterion's rule
    features: Features | None = None
    feature_sites: tuple[str, ...] = ()  # the sites whose lesions get the features (none: all)
    extra: ExtraAssessments | None = None
    # an organ label of the model that the series must show (at least `min_organ_ml`), else
    # "no suitable series" (e.g. a CT labelled abdomen whose field of view misses the liver)
    required_organ: str | None = None
    min_organ_ml: float = 0.0


def parameters(pipeline: str, raw: Any) -> Params:
    try:
        return Params.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise PipelineError(f"{pipeline} parameters: {exc}") from exc


def model_dir(name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() or len(p.parts) > 1 else MODELS_DIR / name


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
    def rules_dir(self) -> Path:
        return self.params.rules_dir if self.params.rules_dir is not None else self.inp.rules_dir


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
    return build_report(req, settings).datasets()


def _empty(job: _Job, sources: Sequence[Dataset], outcome: Outcome, reason: str,
           model: ModelInfo | None = None, volume: Volume | None = None) -> list[Dataset]:
    inp = job.inp
    if not sources:
        raise PipelineError(f"study {inp.study_instance_uid}: no readable instance")
    tp = Timepoint(inp.study_instance_uid, _study_date(sources[0]), ())
    anatomy = job.route.anatomy
    req = ReportRequest(route=inp.route, source_images=tuple(sources), timepoint=tp, outcome=outcome,
                        volume=volume, model=model, finding=anatomy.finding, finding_site=anatomy.finding_site,
                        reason=reason, revision=max(inp.revision - 1, 0))
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
    features = route.features(job.rules_dir)
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


def _segment(job: _Job, volume: Volume,
             model: LoadedModel) -> tuple[tuple[MeasuredLesion, ...], Organs, tuple[bool, ...], tuple[str, ...]]:
    """The model's lesions measured (with the route's features), its organs, and per lesion
    whether it is a node and its site."""
    lesions, organs = split_roles(segment(volume, model), model.manifest)
    measured = measure_mask(volume, lesions, job.route.measure)
    node_labels = {label.value for label in model.manifest.labels if label.role == "lesion" and label.node}
    nodes = tuple(m.label in node_labels for m in measured)
    sites = tuple(_site(job.route.anatomy, organs, m, node) for m, node in zip(measured, nodes, strict=True))
    return _with_features(job, volume, organs, measured, sites), organs, nodes, sites


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
    selection = select_series(job.series, series)
    if selection.chosen is None:
        return _empty(job, headers, Outcome.NO_SUITABLE_SERIES, f"{route.no_series} {selection.explain()}")
    chosen = series[str(selection.series_instance_uid)]
    sources = tuple(i.header for i in chosen.instances)
    try:
        volume = load_volume(chosen).volume
    except SeriesRefused as exc:
        return _empty(job, headers, Outcome.NO_SUITABLE_SERIES, f"the chosen series cannot be used: {exc}")
    name = job.params.model or route.default_model
    try:
        model = load_model(model_dir(name), providers=job.params.providers)
    except ModelError as exc:
        raise PipelineError(f"model {name!r}: {exc}") from exc
    m = model.manifest
    info = ModelInfo(m.name, m.version, m.sha256)
    measured, organs, nodes, sites = _segment(job, volume, model)
    if missing := _organ_missing(route, volume, organs):
        return _empty(job, sources, Outcome.NO_SUITABLE_SERIES, missing, info, volume)
    req = Request(inp.route, str(sources[0].get("PatientID", "")), inp.study_instance_uid,
                  _study_date(sources[0]), job.params.priors_from, inp.report.sr_series_number,
                  tuple(job.series.modality))
    priors = inp.priors.find(req)
    if not measured and not priors.timepoints:
        return _empty(job, sources, Outcome.NO_LESION, f"the model {m.name} {m.version} found no lesion in the series",
                      info, volume)
    image = _Image(volume, sources, info, organs, measured, sites, nodes, chosen.series_instance_uid)
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


def _follow(job: _Job, req: Request, priors: Priors, image: _Image, headers: tuple[Dataset, ...]) -> list[Dataset]:
    """Track, assess and report the measured lesions (none: every earlier lesion has gone)."""
    route, inp = job.route, job.inp
    rule = route.rule(job.rules_dir)
    volume = image.volume
    kinds = [] if priors.timepoints else rule.baseline_kinds(image.measured, volume, image.sites, image.nodes)
    alignments = _alignments(inp.priors, req, priors, volume, job.params.register_priors)
    tracked = _track(image, priors.timepoints, req, kinds, alignments)
    mask, lesions = _relabel(route, image, tracked.lesions)
    current = Timepoint(inp.study_instance_uid, req.study_date, lesions, context={"priors": priors.note})
    assessment, reason = rule.assess(priors.timepoints, current, volume)
    caveats = tuple(_caveats(priors, alignments))
    if assessment is not None:  # said with the reasons behind the category
        assessment = replace(assessment, reasons=(*assessment.reasons, *caveats))
    else:
        reason = " ".join(r for r in (reason, *caveats) if r)
    extra = route.extra(StudyFacts(headers, job.rules_dir), priors.timepoints, current) if route.extra else ()
    report = ReportRequest(
        route=inp.route, source_images=image.sources, timepoint=current,
        outcome=Outcome.MEASURED if lesions else Outcome.NO_LESION,
        volume=volume, mask=mask if lesions else None, assessment=assessment, history=priors.timepoints,
        priors=priors.studies, model=image.model, finding=route.anatomy.finding,
        finding_site=route.anatomy.finding_site, reason=reason, revision=max(inp.revision - 1, 0),
        thresholds=rule.thresholds(), extra_assessments=extra,
    )
    datasets = _report(job, report)
    sr = next(ds for ds in datasets if ds.Modality == "SR")
    inp.priors.record(req, current, image.series_uid, (str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID)))
    log.info("study %s: %d lesion(s), %s %s (priors: %s)", inp.study_instance_uid, len(lesions), route.criterion,
             assessment.category if assessment else "not assessed", priors.source)
    return datasets
