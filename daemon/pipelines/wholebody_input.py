"""The whole-body FDG route's input: the attenuation-corrected PET in SUL with its CT.

The PET series is chosen among the study's attenuation-corrected PET series
(CorrectedImage holds the corrections rules/percist.yaml requires) by the route's series
spec; its CT is the CT series of the same Frame of Reference acquired within the minutes
rules/wholebody_fdg.yaml allows (the most slices when several). The PET must cover the
body from the skull base to mid-thigh at least (a minimum axial extent). SUVbw and SUL
come from the header (daemon.criteria.suv: decay correction checked, Janmahasatian lean
body mass by default). Each refusal is one sentence for the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from pydicom.dataset import Dataset

from daemon.criteria.params import PercistRules
from daemon.criteria.rules import RulesSource
from daemon.criteria.suv import SuvError, SuvFactors, SuvInputs, suv_factors
from daemon.imaging.loader import SeriesFiles
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.pet import pet_header
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.imaging.series import load_volume
from daemon.pipelines.followup_input import StudyImage
from daemon.pipelines.wholebody_rules import WholeBodyRules
from daemon.volume import Volume


def _corrections(ds: Dataset) -> tuple[str, ...]:
    value = ds.get("CorrectedImage")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(v).upper() for v in items)


def _when(ds: Dataset) -> datetime | None:
    d, t = str(ds.get("SeriesDate", "") or ""), str(ds.get("SeriesTime", "") or "")
    try:
        return datetime.strptime(d + t.split(".")[0].ljust(6, "0")[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None


def _pet_series(series: Mapping[str, SeriesFiles], spec: SeriesSpec,
                required: Sequence[str]) -> SeriesFiles | str:
    pets = {uid: s for uid, s in series.items() if s.modality == "PT"}
    if not pets:
        return "The study holds no PET series."
    corrected = {uid: s for uid, s in pets.items() if all(c in _corrections(s.first) for c in required)}
    if not corrected:
        said = "; ".join(f"series {s.first.get('SeriesNumber', '?')} '{s.description}': CorrectedImage "
                         f"{'/'.join(_corrections(s.first)) or 'absent'}" for s in pets.values())
        return (f"The PET is not attenuation-corrected (CorrectedImage must hold {', '.join(required)}): "
                f"{said}. Non-attenuation-corrected PET gives no quantitative SUV.")
    selection = select_series(spec, corrected)
    if selection.chosen is None:
        return selection.explain()
    return corrected[str(selection.series_instance_uid)]


def _ct_series(series: Mapping[str, SeriesFiles], pet: SeriesFiles, max_minutes: float) -> SeriesFiles | str:
    frame = str(pet.first.get("FrameOfReferenceUID", ""))
    when = _when(pet.first)
    fits = []
    for s in series.values():
        if s.modality != "CT" or str(s.first.get("FrameOfReferenceUID", "")) != frame:
            continue
        ct_when = _when(s.first)
        if when is not None and ct_when is not None and abs((ct_when - when).total_seconds()) > max_minutes * 60:
            continue
        fits.append(s)
    if not fits:
        return (f"The PET has no CT: no CT series of the study shares its Frame of Reference ({frame}) within "
                f"{max_minutes:g} min; the CT is needed for the body outline, the liver and body composition.")
    return max(fits, key=lambda s: len(s.instances))


def factors(rules: PercistRules, head: Dataset, corrections: tuple[str, ...]) -> SuvFactors | str:
    """SUVbw and SUL per Bq/mL from a PET header, or why not."""
    h = pet_header(head)
    if h is None:
        return ("SUV cannot be computed: the PET header lacks the injected dose, the half-life or the "
                "injection time (Radiopharmaceutical Information Sequence).")
    try:
        got = suv_factors(SuvInputs(h.units, h.decay_correction, h.injected_dose_bq, h.half_life_s,
                                    h.injection_time, h.reference_time, h.weight_kg, h.height_m, h.sex,
                                    corrections), rules.suv)
    except SuvError as exc:
        return f"SUV cannot be computed from the PET header: {exc}."
    if got.sul_per_bqml is None:
        return "SUL (lean body mass) cannot be computed: the header lacks the patient's height or sex (M/F)."
    return got


def extent_mm(volume: Volume) -> float:
    return float(volume.shape[0] * volume.spacing[0])


def pet_ct(series: Mapping[str, SeriesFiles], spec: SeriesSpec, rules: RulesSource) -> StudyImage | str:
    """The study's attenuation-corrected PET in SUL, with its CT; or why not."""
    wb = rules.load(WholeBodyRules, "wholebody_fdg")
    percist = rules.load(PercistRules, "percist")
    pet = _pet_series(series, spec, percist.suv.required_corrections)
    if isinstance(pet, str):
        return pet
    ct = _ct_series(series, pet, float(wb.pairing.max_minutes_apart))
    if isinstance(ct, str):
        return ct
    got = factors(percist, pet.first, _corrections(pet.first))
    if isinstance(got, str):
        return got
    try:
        volume, ct_volume = load_volume(pet).volume, load_volume(ct).volume
    except SeriesRefused as exc:
        return f"the PET or its CT cannot be used: {exc}"
    need = float(wb.coverage.min_axial_extent_mm)
    if extent_mm(volume) < need:
        return (f"The PET covers {extent_mm(volume):.0f} mm along the body, less than the {need:g} mm of a "
                "whole-body PET (skull base to mid-thigh): a partial (e.g. half-body) PET is not assessed for "
                "PERCIST and TMTV.")
    sul_per_bqml = float(got.sul_per_bqml or 0.0)
    notes = {
        "quantity": "sul", "suv_per_sul": f"{got.suv_per_bqml / sul_per_bqml:.9g}",
        "lbm_formula": got.lbm_formula, "lbm_kg": f"{got.lbm_kg or 0.0:.2f}",
        "uptake_time_min": f"{got.delta_t_s / 60.0:.1f}", "warnings": "; ".join(got.warnings),
        "ct_series": ct.series_instance_uid, "weight_kg": str(pet.first.get("PatientWeight", "") or ""),
        "height_m": str(pet.first.get("PatientSize", "") or ""),
    }
    sul = replace(volume, array=(volume.array * sul_per_bqml).astype("float32"),
                  metadata={**volume.metadata, "units": "SUL", **notes})
    return StudyImage(sul, tuple(i.header for i in pet.instances), pet.series_instance_uid, {"ct": ct_volume},
                      tuple(i.header for i in ct.instances), notes)
