"""Liver CT perfusion: per-lesion maps' values, lesion / healthy-liver ratios and the BF-ratio rule.

Input, from the study's series (daemon.pipelines.perfusion_input):
- (a) vendor perfusion maps (BF, BV, HABF, HPBF, HAF, MTT, TTP, PS) recognised by
  rules/perfusion_vendor.yaml, quantitative only; their method is the vendor's (the rule is
  on-label for deconvolution maps only);
- (b) the dynamic series itself: motion correction, input regions found automatically, maps
  by the dual-input maximum-slope method (rules/perfusion_dynamic.yaml; always
  `off_label_method`: the 0.68 cut-off was derived on deconvolution BF).
Lesions: the liver model (`model`) on the portal-venous series of the study when there is one,
else on the averaged perfusion image, moved onto the map grid; named as the liver route
(`liver_route`) named them in its report of this study (its timepoint, from the runtime's
priors source; the job waits for it while it has attempts left). Healthy liver: the model's
liver label, by the rules of perfusion.md §3. What cannot be computed (too few frames, frames of
different geometry, no aorta in the field of view...) is a valid SR saying why.

Parameters (route `parameters:`), all optional: model, providers, input (auto | dynamic | maps),
liver_route, portal_series (a series spec), language, rules_dir. The pipeline does no I/O
besides reading its files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydantic import ValidationError
from pydicom.dataset import Dataset

from daemon.config import format_validation_error
from daemon.criteria.params import PerfusionParams
from daemon.criteria.rules import RulesSource
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.imaging.dynamic import DynamicRefused, DynamicSeries, load_dynamic
from daemon.imaging.loader import scan
from daemon.imaging.series import load_volume
from daemon.measure.perfusion_analysis import (
    METHOD,
    NotComputable,
    analyse,
    averaged,
    motion_corrected,
)
from daemon.measure.perfusion_maps import lesions_from_maps
from daemon.measure.perfusion_params import DynamicParams
from daemon.measure.perfusion_vendor import VendorRules
from daemon.pipelines import perfusion_report as pr
from daemon.pipelines.base import PipelineError, PipelineInput
from daemon.pipelines.followup_input import StudyImage
from daemon.pipelines.liver_ct import DEFAULT_SERIES, LIVER, METASTASIS
from daemon.pipelines.params import PerfusionRouteParams
from daemon.pipelines.perfusion_input import PerfusionSeries, find_series, load_maps
from daemon.pipelines.perfusion_lesions import FoundLesions, find_lesions
from daemon.pipelines.priors import Request
from daemon.report.bundle import build_report
from daemon.report.inputs import ExtraKeyImage, Outcome, ReportRequest, StudyMeasurementGroup
from daemon.volume import Code, LesionMask, SegmentLabel, Volume

log = logging.getLogger(__name__)
ALTERED_STRUCTURE = Code("49755003", "SCT", "Morphologically Altered Structure")


@dataclass(frozen=True)
class _Job:
    inp: PipelineInput
    params: PerfusionRouteParams
    rules: RulesSource
    criteria: PerfusionParams
    dynamic: DynamicParams
    vendor: VendorRules
    headers: tuple[Dataset, ...]

    @property
    def first(self) -> Dataset:
        return self.headers[0]

    def footer(self) -> str:
        return f"Nadir {self.inp.software_version} - automated measurement, not verified by a physician"


def _params(raw: object) -> PerfusionRouteParams:
    try:
        return PerfusionRouteParams.model_validate(dict(raw or {}))  # type: ignore[call-overload]
    except ValidationError as exc:
        raise PipelineError(format_validation_error("ct_perfusion parameters", exc, {},
                                                    unknown="unknown parameter (check the spelling)")) from exc


def _date(ds: Dataset) -> date | None:
    s = str(ds.get("StudyDate", "") or "")
    return date(int(s[:4]), int(s[4:6]), int(s[6:8])) if len(s) == 8 and s.isdigit() else None


def _report(job: _Job, req: ReportRequest) -> list[Dataset]:
    settings = job.inp.report
    if job.params.language:
        settings = settings.model_copy(update={"language": job.params.language})
    return build_report(req, settings).datasets()


def _request(job: _Job, sources: Sequence[Dataset], **kw: object) -> ReportRequest:
    inp = job.inp
    tp = kw.pop("timepoint", None) or Timepoint(inp.study_instance_uid, _date(job.first), ())
    return ReportRequest(route=inp.route, source_images=tuple(sources), timepoint=tp,  # type: ignore[arg-type]
                         finding=METASTASIS, finding_site=LIVER, revision=max(inp.revision - 1, 0), **kw)  # type: ignore[arg-type]


def _not_computable(job: _Job, sources: Sequence[Dataset], reason: str) -> list[Dataset]:
    log.info("study %s: perfusion not computable: %s", job.inp.study_instance_uid, reason)
    a = pr.not_computable(job.criteria.citation.to_citation(), f"Perfusion not computable: {reason}")
    return _report(job, _request(job, sources or job.headers, outcome=Outcome.NO_SUITABLE_SERIES,
                                 assessment=a, reason=f"Perfusion not computable: {reason}"))


def run(inp: PipelineInput) -> list[Dataset]:
    params = _params(inp.parameters)
    rules = RulesSource(inp.rules_dir, params.rules_dir if params.rules_dir is not None else inp.site_rules_dir)
    found = scan(list(inp.files))
    series = {uid: s for uid, s in found.series.items() if s.study_instance_uid == inp.study_instance_uid}
    headers = tuple(s.first for s in series.values())
    if not headers:
        raise PipelineError(f"study {inp.study_instance_uid}: no readable image")
    job = _Job(inp, params, rules, rules.load(PerfusionParams, "perfusion"), rules.load(DynamicParams, "perfusion_dynamic"),
               rules.load(VendorRules, "perfusion_vendor"), headers)
    sel = find_series(series, job.vendor, params.portal_series or DEFAULT_SERIES)
    use_maps = bool(sel.maps) and params.input != "dynamic"
    if params.input == "maps" and not sel.maps or not use_maps and sel.dynamic is None:
        said = " ".join(sel.refused)
        what = "vendor perfusion map" if params.input == "maps" else "dynamic CT series or vendor perfusion map"
        return _not_computable(job, headers, f"no {what} in the study. {said}".strip())
    liver_tp = None
    if sel.portal is not None and params.liver_route:
        req = Request(params.liver_route, str(job.first.get("PatientID", "")), inp.study_instance_uid,
                      _date(job.first), "", inp.report.sr_series_number, ("CT",),
                      str(job.first.get("IssuerOfPatientID", "")))
        liver_tp = inp.priors.same_study(req, wait=True)
    return _maps(job, sel, liver_tp) if use_maps else _dynamic(job, sel, liver_tp)


def _segment(job: _Job, sel: PerfusionSeries, fallback: Volume | None, grid: Volume,
             liver_tp: Timepoint | None) -> tuple[FoundLesions, Volume, tuple[Dataset, ...]] | str:
    """The lesions on the portal-venous series (else `fallback`), on the map grid."""
    if sel.portal is not None:
        image = load_volume(sel.portal).volume
        sources = tuple(i.header for i in sel.portal.instances)
        on = "portal-venous series"
    elif fallback is not None:
        image, sources, on = fallback, (), "averaged perfusion image"
    else:
        return "no portal-venous series nor dynamic series to segment the lesions on"
    model = job.params.model or "demo-liver-mets"
    lesions = find_lesions(model, job.params.providers, StudyImage(image, sources, image.series_instance_uid), grid,
                           liver_tp, str(job.first.get("PatientID", "")), job.inp.study_instance_uid,
                           job.inp.route, on)
    return lesions, image, sources


def _frame_headers(dyn: DynamicSeries, sel: PerfusionSeries) -> list[Dataset | None]:
    assert sel.dynamic is not None
    by_uid = {str(i.header.SOPInstanceUID): i.header for i in sel.dynamic.instances}
    return [by_uid.get(s.sop_instance_uid) for s in dyn.reference.slices]


def _dynamic(job: _Job, sel: PerfusionSeries, liver_tp: Timepoint | None) -> list[Dataset]:
    assert sel.dynamic is not None
    frame_sources = tuple(i.header for i in sel.dynamic.instances[:1])
    try:
        dyn = load_dynamic(sel.dynamic)
        moved = motion_corrected(dyn, job.dynamic)
    except (DynamicRefused, NotComputable) as exc:
        return _not_computable(job, frame_sources, str(exc))
    refs = _frame_headers(dyn, sel)
    avg = averaged(dyn, moved)
    got = _segment(job, sel, avg, dyn.reference, liver_tp)
    if isinstance(got, str):
        return _not_computable(job, frame_sources, got)
    lesions, image, image_sources = got
    try:
        study = analyse(dyn, lesions.inputs(), job.dynamic, job.criteria, lesions.liver,
                        f"liver label of {lesions.model.name}", corrected=moved)
    except NotComputable as exc:
        return _not_computable(job, frame_sources, str(exc))
    method = pr.Method(METHOD, pr.MAX_SLOPE_UNITS, "TLP",
                       f"Dual-input maximum slope from the dynamic series ({len(dyn.frames)} frames over "
                       f"{dyn.times_s[-1]:.0f} s), per 100 ml of tissue (no density division). "
                       f"{job.dynamic.citation.text} Lesions on the {lesions.segmented_on}; healthy liver from "
                       f"the {study.liver_source}.")
    curves = study.inputs.curves
    arterial = int(np.argmax(curves.aorta))
    images = pr.map_images(study.lesions, study.maps.tlp, "TLP", "ml/100 ml/min", refs, job.footer())
    images.append(pr.inputs_image(moved.frames[arterial], {"aorta": study.inputs.aorta, "portal vein":
                                                           study.inputs.portal, "spleen": study.inputs.spleen},
                                  refs, job.footer(), float(dyn.times_s[arterial])))
    notes = (*study.notes, *lesions.notes, f"aortic peak {curves.aortic_peak_hu:.0f} HU, portal peak "
             f"{curves.portal_peak_hu:.0f} HU, splenic peak at {curves.split_s:.0f} s")
    sources = (*[r for r in refs if r is not None], *image_sources)
    return _measured(job, sources, lesions, image, study.lesions, method, images, notes)


def _maps(job: _Job, sel: PerfusionSeries, liver_tp: Timepoint | None) -> list[Dataset]:
    mapset = load_maps(sel)
    first_map = next(iter(sel.maps.values()))[0]
    map_sources = tuple(i.header for i in first_map.instances)
    if isinstance(mapset, str):
        return _not_computable(job, map_sources, mapset)
    grid = mapset.grid
    fallback = None
    if sel.dynamic is not None:
        try:
            dyn = load_dynamic(sel.dynamic)
            fallback = dyn.reference.with_array(np.mean([f.array for f in dyn.frames], axis=0))
        except DynamicRefused:
            fallback = None
    got = _segment(job, sel, fallback, grid, liver_tp)
    if isinstance(got, str):
        return _not_computable(job, map_sources, f"{got}: the vendor maps alone show no anatomy")
    lesions, image, image_sources = got
    if lesions.liver is None or not lesions.liver.any():
        return _not_computable(job, map_sources, f"the model {lesions.model.name} found no liver on the "
                                                 f"{lesions.segmented_on}")
    methods = {i.method for i in mapset.info.values()}
    method_name = methods.pop() if len(methods) == 1 else "unknown"
    arrays = {name: np.asarray(v.array, dtype=np.float32) for name, v in mapset.volumes.items()}
    results = lesions_from_maps(arrays, grid.spacing, lesions.inputs(), lesions.liver, job.dynamic.regions,
                                job.criteria, method_name)
    software = sorted({f"{i.vendor or 'unknown vendor'} ({i.software})" for i in mapset.info.values()})
    method = pr.Method(method_name, {n: mapset.info[n].unit for n in arrays}, "BF",
                       f"Vendor maps ({', '.join(arrays)}) by {method_name}, from {'; '.join(software)}. "
                       f"Lesions on the {lesions.segmented_on}; healthy liver from the liver label of "
                       f"{lesions.model.name}.")
    by_uid = {str(i.header.SOPInstanceUID): i.header for i in sel.maps["BF" if "BF" in sel.maps else
                                                                       next(iter(sel.maps))][0].instances}
    refs = [by_uid.get(s.sop_instance_uid) for s in grid.slices]
    shown = "BF" if "BF" in arrays else next(iter(arrays))
    images = pr.map_images(results, arrays[shown], shown, method.units[shown], refs, job.footer())
    sources = (*[r for r in refs if r is not None], *image_sources)
    return _measured(job, sources, lesions, image, results, method, images, (*lesions.notes, *sel.refused))


def _measured(job: _Job, sources: Sequence[Dataset], lesions: FoundLesions, image: Volume, results: Sequence,  # type: ignore[type-arg]
              method: pr.Method, images: list[ExtraKeyImage], notes: Sequence[str]) -> list[Dataset]:
    labels = np.zeros(image.shape, dtype=np.uint16)
    found: list[Lesion] = []
    info: list[SegmentLabel] = []
    groups: list[StudyMeasurementGroup] = []
    for n, (named, r) in enumerate(zip(lesions.lesions, results, strict=True), start=1):
        m = named.measured
        labels[m.box][m.local_mask] = n
        info.append(SegmentLabel(n, named.tracking_id, ALTERED_STRUCTURE, METASTASIS))
        found.append(Lesion(named.tracking_id, named.tracking_uid, LesionKind.TARGET, m.measurements,
                            segment_number=n, site="liver"))
        groups.append(pr.lesion_group(r, named.tracking_uid, method))
    inp = job.inp
    tp = Timepoint(inp.study_instance_uid, _date(job.first), tuple(found), context={"perfusion_method": method.name})
    summary = pr.summary(results, job.criteria.citation.to_citation(), (method.basis, *notes))
    req = _request(job, sources, timepoint=tp, outcome=Outcome.MEASURED if found else Outcome.NO_LESION,
                   volume=image, mask=LesionMask(image, labels, tuple(info)) if found else None, assessment=summary,
                   model=lesions.model, study_measurements=tuple(groups), extra_images=tuple(images),
                   reason="" if found else f"the model {lesions.model.name} found no liver metastasis")
    log.info("study %s: perfusion (%s) of %d lesion(s)", inp.study_instance_uid, method.name, len(found))
    return _report(job, req)
