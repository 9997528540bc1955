"""Worked cases (the format of ../shared/criteria/*.yaml) -> criterion inputs -> Assessment.

Pure: a parsed YAML/JSON document in, Assessments out. A case whose inputs are wrong
raises `CaseError` naming the field (e.g. `inputs.timepoints[1].target_mm.A`); keys
the format does not know are reported as warnings, never silently used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.criteria import (
    amino_pet,
    chun,
    percist,
    perfusion,
    prognostic,
    rano_bm,
    recist,
    suv,
    tmtv,
)
from daemon.criteria.assessment import Assessment
from daemon.criteria.inputs import (
    Clinical,
    LesionInput,
    NewLesion,
    NonTarget,
    Role,
    SteroidTrend,
    TimepointInput,
)
from daemon.criteria.rules import RuleSet

IGNORED = frozenset({"note", "notes", "description", "comment"})


class CaseError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class CaseResult:
    case_id: str | None
    criterion: str | None
    assessment: Assessment | None
    error: str | None = None
    warnings: tuple[str, ...] = ()


class Reader:
    """Typed access to one mapping of a case, remembering what was read."""

    def __init__(self, data: Any, path: str, warnings: list[str]) -> None:
        if not isinstance(data, Mapping):
            raise CaseError(path, "must be a mapping")
        self.data: Mapping[str, Any] = data
        self.path = path
        self.warnings = warnings
        self.seen: set[str] = set(IGNORED)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self.data.get(key, default)

    def required(self, key: str) -> Any:
        if key not in self.data:
            raise CaseError(self.at(key), "missing")
        return self.raw(key)

    def num(self, key: str, required: bool = False) -> float | None:
        value = self.required(key) if required else self.raw(key)
        return as_number(value, self.at(key))

    def need(self, key: str) -> float:
        value = self.num(key, required=True)
        if value is None:
            raise CaseError(self.at(key), "must be a number, not null")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise CaseError(self.at(key), f"must be text, got {value!r}")
        return str(value)

    def flag(self, key: str, default: bool | None = False) -> bool | None:
        value = self.raw(key, default)
        if value is None or isinstance(value, bool):
            return value
        raise CaseError(self.at(key), f"must be true or false, got {value!r}")

    def sub(self, key: str) -> Reader:
        return Reader(self.required(key), self.at(key), self.warnings)

    def done(self) -> None:
        for key in self.data:
            if key not in self.seen:
                self.warnings.append(f"{self.at(str(key))}: unknown key ignored")


def as_number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise CaseError(field, f"must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise CaseError(field, f"must be a number, got {value!r}") from None
    raise CaseError(field, f"must be a number, got {value!r}")


def enum_value(enum: Any, value: Any, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise CaseError(field, f"must be one of {allowed}, got {value!r}") from None


def key_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def id_list(r: Reader, key: str) -> set[str]:
    value = r.raw(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise CaseError(r.at(key), "must be a list of lesion ids")
    return {str(v) for v in value}


# --- lesion-based criteria (RECIST 1.1, RANO-BM) ---------------------------------------------


_TOO_SMALL = {"too_small", "tstm", "too_small_to_measure"}
_NOT_ASSESSED = {"ne", "not_assessed", "not_evaluable", "na"}
_AXES = (
    ("long_axis_mm", ("long_axis_mm", "ld_mm", "ld")),
    ("short_axis_mm", ("short_axis_mm", "sa_mm", "sa", "perpendicular_mm")),
    ("volume_ml", ("volume_ml",)),
)
_SPEC_KEYS = {alias for _, aliases in _AXES for alias in aliases} | {"too_small", "not_assessed", "fragments_mm"}


def measure_spec(value: Any, field: str, lesion: LesionInput) -> dict[str, Any]:
    """One target value: a number, null (not assessed), 'too_small', a list (fragments) or a mapping."""
    axis = "short_axis_mm" if lesion.is_node else "long_axis_mm"
    if value is None:
        return {"not_assessed": True}
    if isinstance(value, str) and value.strip().lower() in _TOO_SMALL:
        return {"too_small": True}
    if isinstance(value, str) and value.strip().lower() in _NOT_ASSESSED:
        return {"not_assessed": True}
    if isinstance(value, list):
        return {"fragments_mm": tuple(_nonneg(v, f"{field}[{i}]") for i, v in enumerate(value))}
    if isinstance(value, Mapping):
        unknown = [str(k) for k in value if k not in _SPEC_KEYS]
        if unknown:
            raise CaseError(f"{field}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_SPEC_KEYS))})")
        r = Reader(value, field, [])
        out: dict[str, Any] = {}
        for key, aliases in _AXES:
            for alias in aliases:
                if r.has(alias):
                    out[key] = _nonneg(r.raw(alias), r.at(alias))
        if r.flag("too_small"):
            out["too_small"] = True
        if r.flag("not_assessed"):
            out["not_assessed"] = True
        if r.has("fragments_mm"):
            out.update(measure_spec(r.raw("fragments_mm"), r.at("fragments_mm"), lesion))
        return out
    return {axis: _nonneg(value, field)}


def _nonneg(value: Any, field: str) -> float:
    number = as_number(value, field)
    if number is None or number < 0:
        raise CaseError(field, f"must be a number >= 0, got {value!r}")
    return number


def _target_defs(inputs: Reader) -> list[LesionInput]:
    raw = inputs.raw("targets", [])
    if not isinstance(raw, list):
        raise CaseError(inputs.at("targets"), "must be a list")
    defs = []
    for i, item in enumerate(raw):
        r = Reader(item, f"{inputs.at('targets')}[{i}]", inputs.warnings)
        lesion_id = r.text("id")
        if not lesion_id:
            raise CaseError(r.at("id"), "missing")
        site = r.text("organ") or r.text("site") or ""
        defs.append(LesionInput(lesion_id, Role.TARGET, site=site, is_node=bool(r.flag("node")),
                                treated_field=bool(r.flag("treated_field"))))
        r.done()
    ids = [d.lesion_id for d in defs]
    if len(set(ids)) != len(ids):
        raise CaseError(inputs.at("targets"), "lesion ids must be unique")
    return defs


def _new_lesion(r: Reader) -> NewLesion:
    value = r.raw("new_lesion", "none")
    if isinstance(value, bool):
        return NewLesion.UNEQUIVOCAL if value else NewLesion.NONE
    return enum_value(NewLesion, str(value).lower(), r.at("new_lesion"))  # type: ignore[no-any-return]


def _context(r: Reader) -> dict[str, Any]:
    out: dict[str, Any] = {"new_lesion": _new_lesion(r)}
    nontarget = re.sub(r"[^A-Z]+", "_", str(r.raw("nontarget", "NONE")).upper()).strip("_")
    out["nontarget"] = enum_value(NonTarget, nontarget, r.at("nontarget"))
    if r.has("clinical"):
        out["clinical"] = enum_value(Clinical, str(r.raw("clinical")).lower(), r.at("clinical"))
    dose_key = "dexamethasone_mg_day" if r.has("dexamethasone_mg_day") else "steroid_dose_mg_day"
    dose = r.num(dose_key)
    if dose is not None and dose < 0:
        raise CaseError(r.at(dose_key), "must be >= 0")
    out["steroid_dose_mg_day"] = dose
    if r.has("steroids"):
        out["steroid_trend"] = enum_value(SteroidTrend, str(r.raw("steroids")).lower(), r.at("steroids"))
    out["slice_thickness_mm"] = r.num("slice_thickness_mm")
    out["slice_gap_mm"] = r.num("slice_gap_mm") or 0.0
    out["imaging_done"] = r.flag("imaging_done", True) is not False
    return out


def _timepoint(item: Any, field: str, defs: Sequence[LesionInput], warnings: list[str]) -> TimepointInput:
    r = Reader(item, field, warnings)
    label = r.text("label") or r.text("timepoint")
    if not label:
        raise CaseError(r.at("label"), "missing")
    values = r.raw("target_mm", {})
    if not isinstance(values, Mapping):
        raise CaseError(r.at("target_mm"), "must be a mapping of target id to value")
    volume_key = next((k for k in ("target_volume_ml", "volumes_ml") if r.has(k)), "target_ml")
    volumes = r.raw(volume_key, {}) or {}
    if not isinstance(volumes, Mapping):
        raise CaseError(r.at(volume_key), "must be a mapping of target id to volume")
    known = {d.lesion_id for d in defs}
    for key in (*values, *volumes):
        if str(key) not in known:
            raise CaseError(f"{r.at('target_mm')}.{key}", "not a target defined in inputs.targets")
    too_small, not_assessed, treated = id_list(r, "too_small"), id_list(r, "not_assessed"), id_list(r, "treated_field")
    fragments = r.raw("fragments_mm", {}) or {}
    lesions = []
    for d in defs:
        spec: dict[str, Any] = {}
        if d.lesion_id in values:
            spec = measure_spec(values[d.lesion_id], f"{r.at('target_mm')}.{d.lesion_id}", d)
        if d.lesion_id in fragments:
            spec |= measure_spec(list(fragments[d.lesion_id]), f"{r.at('fragments_mm')}.{d.lesion_id}", d)
        if d.lesion_id in volumes:
            spec["volume_ml"] = _nonneg(volumes[d.lesion_id], f"{r.at(volume_key)}.{d.lesion_id}")
        spec["too_small"] = spec.get("too_small", False) or d.lesion_id in too_small
        spec["not_assessed"] = spec.get("not_assessed", False) or d.lesion_id in not_assessed
        if d.lesion_id not in values and not spec["too_small"] and not spec.get("fragments_mm"):
            spec["not_assessed"] = True
        lesions.append(LesionInput(d.lesion_id, Role.TARGET, d.site, d.is_node,
                                   treated_field=d.treated_field or d.lesion_id in treated, **spec))
    ctx = _context(r)
    r.done()
    return TimepointInput(label=label, lesions=tuple(lesions), **ctx)


def lesion_timepoints(inputs: Reader) -> list[TimepointInput]:
    defs = _target_defs(inputs)
    raw = inputs.required("timepoints")
    if not isinstance(raw, list) or not raw:
        raise CaseError(inputs.at("timepoints"), "must be a non-empty list")
    return [_timepoint(item, f"{inputs.at('timepoints')}[{i}]", defs, inputs.warnings) for i, item in enumerate(raw)]


# --- PET -------------------------------------------------------------------------------------


def _pet_timepoint(item: Any, field: str, warnings: list[str]) -> percist.PetTimepoint:
    r = Reader(item, field, warnings)
    label = r.text("label") or r.text("timepoint")
    if not label:
        raise CaseError(r.at("label"), "missing")
    peaks = r.raw("lesions_sulpeak", {}) or {}
    if not isinstance(peaks, Mapping):
        raise CaseError(r.at("lesions_sulpeak"), "must be a mapping of lesion id to SULpeak")
    lesions = tuple(
        LesionInput(str(k), uptake={"sul_peak": _nonneg(v, f"{r.at('lesions_sulpeak')}.{k}")})
        for k, v in peaks.items()
    )
    new = _new_lesion(r) is NewLesion.UNEQUIVOCAL
    tp = percist.PetTimepoint(
        label=label, liver_sul_mean=r.num("liver_sul_mean"), liver_sul_sd=r.num("liver_sul_sd"),
        hottest_sulpeak=r.num("hottest_sulpeak"), lesions=lesions, new_lesion=new,
        all_lesions_at_background=r.flag("all_lesions_at_background", None),
        liver_abnormal=bool(r.flag("liver_abnormal")), blood_pool_sul_mean=r.num("blood_pool_sul_mean"),
        blood_pool_sul_sd=r.num("blood_pool_sul_sd"), uptake_time_min=r.num("uptake_time_min"),
        tlg=r.num("tlg"), recist_pd=bool(r.flag("recist_pd")), nontarget_increase=bool(r.flag("nontarget_increase")),
    )
    r.done()
    return tp


def run_percist(inputs: Reader, rules: RuleSet) -> Assessment:
    raw = inputs.required("timepoints")
    if not isinstance(raw, list) or not raw:
        raise CaseError(inputs.at("timepoints"), "must be a non-empty list")
    tps = [_pet_timepoint(item, f"{inputs.at('timepoints')}[{i}]", inputs.warnings) for i, item in enumerate(raw)]
    return percist.assess(tps, rules.percist.percist)


def run_suv(inputs: Reader, rules: RuleSet) -> Assessment:
    d = inputs.sub("dicom")
    series = suv.parse_da_tm(d.text("SeriesDate") or "", d.text("SeriesTime") or "")
    acq_raw = d.raw("AcquisitionDateTimes", []) or []
    if not isinstance(acq_raw, list):
        raise CaseError(d.at("AcquisitionDateTimes"), "must be a list of DICOM date-times")
    acquisitions = [suv.parse_dt(str(x)) for x in acq_raw]
    private = d.text("GEPrivatePostInjectionDateTime")
    reference, source = suv.scan_reference_time(series, acquisitions, suv.parse_dt(private) if private else None)
    injection = suv.injection_datetime(d.text("RadiopharmaceuticalStartDateTime"),
                                       d.text("RadiopharmaceuticalStartTime"), d.text("SeriesDate") or "", reference)
    corrected = d.raw("CorrectedImage")
    header = suv.SuvInputs(
        units=d.text("Units") or "", decay_correction=d.text("DecayCorrection") or "",
        injected_dose_bq=d.need("RadionuclideTotalDose"), half_life_s=d.need("RadionuclideHalfLife"),
        injection_time=injection, reference_time=reference, weight_kg=d.num("PatientWeight"),
        height_m=d.num("PatientSize"), sex=d.text("PatientSex"),
        corrected_image=None if corrected is None else tuple(str(c) for c in corrected),
    )
    slope = d.num("RescaleSlope")
    intercept = d.num("RescaleIntercept")
    d.done()
    stored = inputs.need("stored_pixel_value")
    cite = rules.percist.suv.citation.to_citation()
    try:
        factors = suv.suv_factors(header, rules.percist.suv)
    except suv.SuvError as exc:
        return Assessment(criterion="SUV", citation=cite, category="NE", evaluable=False,
                          details={"reason": str(exc)}, reasons=(f"SUV not computable: {exc}",))
    activity = stored * (1.0 if slope is None else slope) + (intercept or 0.0)
    suv_bw = activity * factors.suv_per_bqml
    sul = None if factors.sul_per_bqml is None else activity * factors.sul_per_bqml
    return Assessment(
        criterion="SUV", citation=cite, category="measured", classified=False,
        numbers={"delta_t_s": factors.delta_t_s, "decayed_dose_bq": factors.decayed_dose_bq,
                 "activity_bqml": activity, "suv_bw": suv_bw, "bmi": factors.bmi, "lbm_kg": factors.lbm_kg,
                 "sul": sul},
        details={"scan_reference": source, "lbm_formula": factors.lbm_formula},
        reasons=(f"scan reference {source}; uptake {factors.delta_t_s:.0f} s; SUVbw {suv_bw:.3f}",
                 *factors.warnings),
        flags=("suv_sanity_warning",) if factors.warnings else (),
    )


def run_tmtv(inputs: Reader, rules: RuleSet) -> Assessment:
    raw = inputs.required("lesions")
    if not isinstance(raw, list):
        raise CaseError(inputs.at("lesions"), "must be a list")
    lesions = []
    for i, item in enumerate(raw):
        r = Reader(item, f"{inputs.at('lesions')}[{i}]", inputs.warnings)
        c = r.raw("centroid_mm", [0, 0, 0])
        if not isinstance(c, list) or len(c) != 3:
            raise CaseError(r.at("centroid_mm"), "must be [x, y, z] in mm")
        centroid = tuple(_signed(v, f"{r.at('centroid_mm')}[{j}]") for j, v in enumerate(c))
        voxels = r.num("voxels")
        lesions.append(tmtv.MetabolicLesion(
            lesion_id=r.text("id") or str(i), voxels=None if voxels is None else int(voxels),
            volume_ml=r.num("volume_ml"), centroid_mm=(centroid[0], centroid[1], centroid[2]),
            suv_mean=r.num("suv_mean"),
        ))
        r.done()
    threshold = inputs.num("suv_threshold")
    params = rules.percist.tmtv
    if threshold is not None:
        params = params.model_copy(update={"suv_threshold": type(params.suv_threshold)(str(threshold))})
    return tmtv.assess(lesions, params, inputs.num("voxel_volume_ml"))


def _signed(value: Any, field: str) -> float:
    number = as_number(value, field)
    if number is None:
        raise CaseError(field, "must be a number")
    return number


# --- single-measurement criteria ----------------------------------------------------------------


def run_perfusion_one(inputs: Reader, rules: RuleSet) -> Assessment:
    inputs.raw("unit")
    return perfusion.classify(
        rules.perfusion, inputs.num("lesion"), inputs.num("healthy"), inputs.text("parameter", "BF") or "BF",
        inputs.text("map_method", "deconvolution") or "deconvolution", inputs.num("lesion_diameter_mm"),
    )


def run_perfusion_all(inputs: Reader, rules: RuleSet) -> Assessment:
    values: dict[str, tuple[float | None, float | None]] = {}
    method = inputs.text("map_method", "deconvolution") or "deconvolution"
    diameter = inputs.num("lesion_diameter_mm")
    inputs.raw("unit")
    for key in list(inputs.data):
        if key in inputs.seen:
            continue
        r = inputs.sub(str(key))
        values[str(key)] = (r.num("lesion"), r.num("healthy"))
        r.raw("unit")
        r.done()
    return perfusion.all_ratios(rules.perfusion, values, method, diameter)


def run_max_slope(inputs: Reader, rules: RuleSet) -> Assessment:
    frames = inputs.num("portal_frames")
    return perfusion.max_slope(
        rules.perfusion, inputs.need("arterial_phase_max_slope_hu_per_s"), inputs.need("aortic_peak_enhancement_hu"),
        inputs.need("portal_phase_max_slope_hu_per_s"), inputs.need("portal_peak_enhancement_hu"),
        None if frames is None else int(frames),
    )


def _tracer(r: Reader) -> tuple[str, str]:
    return (r.text("tracer") or "").upper(), (r.text("setting") or "").upper()


def run_cicone(r: Reader, rules: RuleSet) -> Assessment:
    return amino_pet.cicone(rules.amino_pet, *_tracer(r), r.need("lesion_suvmax"), r.need("background_suvmax"))


def run_galldiks(r: Reader, rules: RuleSet) -> Assessment:
    return amino_pet.galldiks(rules.amino_pet, *_tracer(r), r.num("tbr_mean"), r.num("ttp_min"))


def run_puranik(r: Reader, rules: RuleSet) -> Assessment:
    return amino_pet.puranik(rules.amino_pet, *_tracer(r), r.need("tumour_suv"), r.need("white_matter_suv"))


def run_horky(r: Reader, rules: RuleSet) -> Assessment:
    reference = r.text("reference", "grey_matter") or "grey_matter"
    return amino_pet.horky(rules.amino_pet, *_tracer(r), r.need("l1"), r.need("gm1"), r.need("l2"), r.need("gm2"),
                           reference)


def run_lizarraga(r: Reader, rules: RuleSet) -> Assessment:
    return amino_pet.lizarraga(rules.amino_pet, *_tracer(r), r.need("lesion_suv"), r.need("normal_brain_suv"),
                               r.need("striatum_suv"), r.text("statistic", "max") or "max")


def run_visual(r: Reader, rules: RuleSet) -> Assessment:
    return amino_pet.visual_score(rules.amino_pet, r.text("lesion_vs_striatum") or "")


def _group(r: Reader, key: str) -> int | None:
    value = r.raw(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise CaseError(r.at(key), f"must be an integer group, got {value!r}")
    return int(value)


def run_chun(r: Reader, rules: RuleSet) -> Assessment:
    bev = r.flag("bevacizumab", None)
    source = r.text("group_source", "radiologist") or "radiologist"
    if r.has("lesions"):
        raw = r.raw("lesions")
        if not isinstance(raw, list):
            raise CaseError(r.at("lesions"), "must be a list")
        items = [Reader(x, f"{r.at('lesions')}[{i}]", r.warnings) for i, x in enumerate(raw)]
    else:
        items = [r]
    lesions = []
    for i, item in enumerate(items):
        base = _group(item, "baseline_group")
        if base is None:
            raise CaseError(item.at("baseline_group"), "missing")
        lesions.append(chun.ChunLesion(item.text("id") or f"lesion{i + 1}", base, _group(item, "followup_group"),
                                       item.text("group_source", source) or source))
        if item is not r:
            item.done()
    try:
        return chun.assess(lesions, rules.chun, bev)
    except ValueError as exc:
        raise CaseError(r.at("group_source"), str(exc)) from None


def run_rpa(r: Reader, rules: RuleSet) -> Assessment:
    return prognostic.rpa(rules.prognostic, r.required("kps"), r.required("age"),
                          bool(r.flag("primary_controlled")), bool(r.flag("extracranial_mets")))


Handler = Callable[[Reader, RuleSet], Assessment]

HANDLERS: dict[str, Handler] = {
    "recist": lambda r, rules: recist.assess(lesion_timepoints(r), rules.recist),
    "recist11": lambda r, rules: recist.assess(lesion_timepoints(r), rules.recist),
    "ranobm": lambda r, rules: rano_bm.assess(lesion_timepoints(r), rules.rano_bm),
    "ranobmvolumetric": lambda r, rules: rano_bm.assess(lesion_timepoints(r), rules.rano_bm),
    "percist": run_percist,
    "percist10": run_percist,
    "suv": run_suv,
    "tmtv": run_tmtv,
    "ctperfusionbfratio": run_perfusion_one,
    "ctperfusionratio": run_perfusion_one,
    "ctperfusionratiosall": run_perfusion_all,
    "ctperfusionmaxslope": run_max_slope,
    "fdopaciconersuv": run_cicone,
    "fetgalldiks": run_galldiks,
    "fetpuraniktwm": run_puranik,
    "fdgdualphasehorky": run_horky,
    "fdopalizarragaratios": run_lizarraga,
    "fdopavisualscale": run_visual,
    "chunmorphologic": run_chun,
    "chun": run_chun,
    "rpartog": run_rpa,
    "rpa": run_rpa,
}


def _handler(criterion: str, rules: RuleSet) -> Handler | None:
    key = key_of(criterion)
    if key in HANDLERS:
        return HANDLERS[key]
    for name in rules.prognostic.scores:
        if key_of(name) == key:
            return lambda r, rules_: _score(name, r, rules_)
    return None


def _score(name: str, r: Reader, rules: RuleSet) -> Assessment:
    values = {str(k): r.raw(str(k)) for k in r.data}
    try:
        return prognostic.points_score(rules.prognostic, name, values)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise CaseError(r.at(field), message) from None


def run_case(case: Any, rules: RuleSet) -> CaseResult:
    """One case of the worked-case format -> its Assessment, or an error naming the field."""
    warnings: list[str] = []
    case_id = str(case.get("id")) if isinstance(case, Mapping) and case.get("id") is not None else None
    criterion: str | None = None
    try:
        top = Reader(case, "", warnings)
        top.raw("id")
        top.raw("expected")
        criterion = top.text("criterion")
        if not criterion:
            raise CaseError("criterion", "missing")
        handler = _handler(criterion, rules)
        if handler is None:
            raise CaseError("criterion", f"unknown criterion {criterion!r}")
        inputs = top.sub("inputs")
        top.done()
        try:
            assessment = handler(inputs, rules)
        except CaseError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise CaseError("inputs", str(exc)) from None
        inputs.done()
    except CaseError as exc:
        return CaseResult(case_id, criterion, None, error=str(exc), warnings=tuple(warnings))
    return CaseResult(case_id, criterion, assessment, warnings=tuple(warnings))


def cases_of(document: Any) -> list[Any]:
    """One case, a list of cases, or a {cases: [...]} document -> the list of cases."""
    if isinstance(document, Mapping) and "cases" in document:
        cases = document["cases"]
        if not isinstance(cases, list):
            raise CaseError("cases", "must be a list")
        return cases
    if isinstance(document, list):
        return document
    if isinstance(document, Mapping):
        return [document]
    raise CaseError("(document)", "must be a case, a list of cases or a mapping with 'cases'")
