"""Brain metastases on MRI, RANO-BM: the post-contrast 3D T1 -> lesions -> response -> SR, SEG, key images, KOS.

Steps: series selection (declarative spec, route parameter `series`) -> the model
named by the route (`model`, default the demo model) -> measurement of each
connected component -> tracking against the patient's earlier timepoints (from the
database, else read back from our SRs in the PACS, else a baseline, said so) ->
RANO-BM (diameters; volumetric companion) from rules/rano_bm.yaml -> report objects.

A baseline selects the targets (measurable per rules/rano_bm.yaml, largest first,
at most `max_targets`); a follow-up gets its category against baseline and nadir.
No suitable series, or no lesion found: a valid SR that says so, nothing else.

Parameters (route `parameters:`), all optional:
  model: a folder name under models/ or a path (default demo-brain-mets)
  providers: auto | cpu | cuda | tensorrt (default auto)
  series: a series spec (daemon.imaging.selection.SeriesSpec)
  priors_from: destination queried for priors when the database has none (default pacs; "" = never)
  register_priors: register the latest prior onto the study for tracking when its images are
      still in the spool (default true; otherwise positions are compared as they are)
  language: en | fr
  rules_dir: folder of rano_bm.yaml (default: the one the runtime provides, the routing rules' folder)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError
from pydicom.dataset import Dataset

from daemon import __version__
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.imaging.loader import ScanResult, read_header, scan
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.imaging.series import load_volume
from daemon.measure.lesions import MeasuredLesion, MeasureOptions, measure_mask
from daemon.measure.registration import Alignment, AlignmentMethod, align, identity
from daemon.measure.tracking import PriorTimepoint, TrackingResult, track
from daemon.pipelines import brain_mets_response as response
from daemon.pipelines import priors as prior_lookup
from daemon.pipelines.base import PipelineError, PipelineInput
from daemon.pipelines.priors import PriorsSource
from daemon.report.bundle import build_report
from daemon.report.inputs import ModelInfo, Outcome, ReportRequest
from daemon.report.uids import lesion_uid
from daemon.segment import ModelError, load_model, segment
from daemon.volume import Code, LesionMask, SegmentLabel, Volume

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "models"
BRAIN = Code("12738006", "SCT", "Brain")
METASTASIS = Code("14799000", "SCT", "Neoplasm, Metastatic")
DEFAULT_SERIES = SeriesSpec(modality=["MR"], contrast=True, acquisition_3d=True)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "demo-brain-mets"
    providers: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    series: SeriesSpec = DEFAULT_SERIES
    priors_from: str = "pacs"
    register_priors: bool = True  # rigid registration with the latest prior when its images are at hand
    language: Literal["en", "fr"] | None = None
    rules_dir: Path | None = None


def parameters(raw: Any) -> Params:
    try:
        return Params.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise PipelineError(f"brain_mets parameters: {exc}") from exc


def model_dir(name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() or len(p.parts) > 1 else MODELS_DIR / name


def rules_dir(inp: PipelineInput, params: Params) -> Path:
    return params.rules_dir if params.rules_dir is not None else inp.rules_dir


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


def _relabel(volume: Volume, measured: list[MeasuredLesion], lesions: tuple[Lesion, ...]) -> tuple[LesionMask, tuple[Lesion, ...]]:
    """One label (= SEG segment) per tracked lesion, numbered in order."""
    labels = np.zeros(volume.shape, dtype=np.uint16)
    info = []
    out = []
    for n, (m, les) in enumerate(zip(measured, lesions, strict=True), start=1):
        labels[m.box][m.local_mask] = n
        info.append(SegmentLabel(n, les.tracking_id, Code("49755003", "SCT", "Morphologically Altered Structure"),
                                 METASTASIS))
        out.append(replace(les, segment_number=n, site=les.site or "brain"))
    return LesionMask(volume=volume, labels=labels, label_info=tuple(info)), tuple(out)


def _alignments(source: PriorsSource, priors: prior_lookup.Priors, volume: Volume, register: bool) -> list[Alignment]:
    """The latest prior registered onto this study when its images are still in the spool; the others as they are."""
    none = identity(AlignmentMethod.NONE, "positions compared as they are (prior images not registered)")
    out = [none] * len(priors.timepoints)
    if register and priors.series:
        prior = source.prior_volume(priors.series[-1])
        if prior is not None:
            out[-1] = align(prior, volume)
            log.info("latest prior registered: %s, %.1f deg, %.1f mm", out[-1].method, out[-1].rotation_deg,
                     out[-1].translation_mm)
    return out


def _track(measured: list[MeasuredLesion], volume: Volume, history: tuple[Timepoint, ...], req: prior_lookup.Request,
           kinds: list[LesionKind], alignments: list[Alignment]) -> TrackingResult:
    first = history[0].study_instance_uid if history else req.study_instance_uid
    key = req.patient_id or first

    def mint(tid: str) -> str:
        return lesion_uid(key, first, req.route, int(tid[1:]) if tid[1:].isdigit() else 0)

    priors = [PriorTimepoint(tp, al) for tp, al in zip(history, alignments, strict=True)]
    return track(measured, volume, priors, study_uid=req.study_instance_uid, baseline_kinds=kinds, uid_for=mint)


def _report(inp: PipelineInput, params: Params, req: ReportRequest) -> list[Dataset]:
    # the node's report settings (series numbers, descriptions, language...); a route may set the language
    settings = inp.report
    if params.language:
        settings = settings.model_copy(update={"language": params.language})
    return build_report(req, settings).datasets()


def _empty(inp: PipelineInput, params: Params, sources: list[Dataset], outcome: Outcome, reason: str,
           model: ModelInfo | None = None, volume: Volume | None = None) -> list[Dataset]:
    if not sources:
        raise PipelineError(f"study {inp.study_instance_uid}: no readable instance")
    tp = Timepoint(inp.study_instance_uid, _study_date(sources[0]), ())
    req = ReportRequest(route=inp.route, source_images=tuple(sources), timepoint=tp, outcome=outcome,
                        volume=volume, model=model, finding=METASTASIS, finding_site=BRAIN, reason=reason,
                        revision=max(inp.revision - 1, 0))
    log.info("study %s: %s: %s", inp.study_instance_uid, outcome, reason.splitlines()[0] if reason else "")
    return _report(inp, params, req)


def run(inp: PipelineInput) -> list[Dataset]:
    params = parameters(inp.parameters)
    found = scan(list(inp.files))
    headers = _study_headers(inp, found)
    series = {uid: s for uid, s in found.series.items() if s.study_instance_uid == inp.study_instance_uid}
    selection = select_series(params.series, series)
    if selection.chosen is None:
        return _empty(inp, params, headers, Outcome.NO_SUITABLE_SERIES,
                      "No post-contrast 3D T1 series suitable for RANO-BM. " + selection.explain())
    chosen = series[str(selection.series_instance_uid)]
    sources = [i.header for i in chosen.instances]
    try:
        volume = load_volume(chosen).volume
    except SeriesRefused as exc:
        return _empty(inp, params, headers, Outcome.NO_SUITABLE_SERIES, f"the chosen series cannot be used: {exc}")
    try:
        model = load_model(model_dir(params.model), providers=params.providers)
    except ModelError as exc:
        raise PipelineError(f"model {params.model!r}: {exc}") from exc
    m = model.manifest
    info = ModelInfo(m.name, m.version, m.sha256)
    measured = measure_mask(volume, segment(volume, model), MeasureOptions(quantity="signal", intensity_statistics=False))
    req = prior_lookup.Request(inp.route, str(sources[0].get("PatientID", "")), inp.study_instance_uid,
                               _study_date(sources[0]), params.priors_from, inp.report.sr_series_number)
    priors = inp.priors.find(req)
    if not measured and not priors.timepoints:
        return _empty(inp, params, sources, Outcome.NO_LESION,
                      f"the model {m.name} {m.version} found no lesion in the series", info, volume)
    return _follow(inp, params, req, priors, (volume, sources, info), measured, chosen.series_instance_uid)


def _follow(inp: PipelineInput, params: Params, req: prior_lookup.Request, priors: prior_lookup.Priors,
            image: tuple[Volume, list[Dataset], ModelInfo], measured: list[MeasuredLesion],
            series_uid: str) -> list[Dataset]:
    """Track, assess and report the measured lesions (none: every earlier lesion has gone)."""
    volume, sources, info = image
    rano = response.load_params(rules_dir(inp, params))
    kinds = response.baseline_kinds(rano, measured, volume) if not priors.timepoints else None
    alignments = _alignments(inp.priors, priors, volume, params.register_priors)
    tracked = _track(measured, volume, priors.timepoints, req, kinds or [], alignments)
    mask, lesions = _relabel(volume, measured, tracked.lesions)
    current = Timepoint(inp.study_instance_uid, req.study_date, lesions, context={"priors": priors.note})
    assessment, reason = response.assess(rano, priors.timepoints, current, volume)
    report = ReportRequest(
        route=inp.route, source_images=tuple(sources), timepoint=current,
        outcome=Outcome.MEASURED if lesions else Outcome.NO_LESION,
        volume=volume, mask=mask if lesions else None, assessment=assessment, history=priors.timepoints,
        priors=priors.studies, model=info, finding=METASTASIS, finding_site=BRAIN, reason=reason,
        revision=max(inp.revision - 1, 0), thresholds=response.thresholds(rano),
    )
    datasets = _report(inp, params, report)
    sr = next(ds for ds in datasets if ds.Modality == "SR")
    inp.priors.record(req, current, series_uid, (str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID)))
    log.info("study %s: %d lesion(s), RANO-BM %s (priors: %s)", inp.study_instance_uid, len(lesions),
             assessment.category if assessment else "not assessed", priors.source)
    return datasets


__all__ = ["Params", "run", "__version__"]
