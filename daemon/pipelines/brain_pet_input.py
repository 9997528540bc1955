"""The brain PET route's input: the PET series, its tracer and setting, SUVbw, and the MNI152
template fitted to it (a PET that the template does not fit is not a brain PET).

Returns the `StudyImage` the lesion-follow-up pipeline measures (SUVbw) with the MNI RAS
coordinates of each voxel as companions (`mni_x`, `mni_y`, `mni_z`), or why the study cannot
be read, coded (a `Reason`, which the report words in its language by the code): no PET
series, an unknown radiopharmaceutical, SUV not computable (units, dose, weight, decay
correction), a series that is not a brain PET.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from pydicom.dataset import Dataset

from daemon.criteria.params import PercistRules
from daemon.criteria.rules import RulesSource
from daemon.criteria.suv import SuvError, SuvInputs, suv_factors
from daemon.imaging import mni_templates
from daemon.imaging.dynamic import DynamicRefused, is_dynamic, load_dynamic
from daemon.imaging.loader import SeriesFiles
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.pet import pet_header
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.imaging.series import load_volume
from daemon.measure import brain_atlas, brain_regions
from daemon.measure.body_composition import resample_to
from daemon.measure.brain_pet_rules import RULES_NAME, BrainPetRules, Tracer
from daemon.pipelines.followup_input import StudyImage
from daemon.report.inputs import Reason
from daemon.volume import Volume


def tracer_of(ds: Dataset, rules: BrainPetRules) -> Tracer | None:
    """The tracer by the Radiopharmaceutical Code Sequence code, else by the name (aliases in the rules)."""
    seq = ds.get("RadiopharmaceuticalInformationSequence") or []
    item = seq[0] if seq else Dataset()
    codes = {str(c.get("CodeValue", "")) for c in item.get("RadiopharmaceuticalCodeSequence", []) or []}
    for tracer, rule in rules.tracers.items():
        if codes & set(rule.codes):
            return tracer
    name = " ".join(str(v) for v in (item.get("Radiopharmaceutical", ""), ds.get("SeriesDescription", "")) if v)
    for tracer, rule in rules.tracers.items():
        if re.search(rule.names, name):
            return tracer
    return None


def setting_of(ds: Dataset, tracer: Tracer, rules: BrainPetRules) -> str:
    text = f"{ds.get('StudyDescription', '')} {ds.get('SeriesDescription', '')}"
    for setting, pattern in rules.setting.by_description.items():
        if re.search(pattern, text):
            return setting
    return rules.setting.default_by_tracer.get(tracer, "")


def suv_per_bqml(ds: Dataset, rules: PercistRules) -> float | Reason:
    """SUVbw per stored unit, or why SUV is not computable."""
    h = pet_header(ds)
    if h is None:
        return Reason("suv_no_dose", "SUV not computable: the PET header lacks the injected dose, the half-life or "
                      "the injection time (Radiopharmaceutical Information Sequence).")
    try:
        got = suv_factors(SuvInputs(h.units, h.decay_correction, h.injected_dose_bq, h.half_life_s,
                                    h.injection_time, h.reference_time, h.weight_kg, h.height_m, h.sex), rules.suv)
    except SuvError as exc:
        return Reason("suv_weight" if exc.code == "weight" else "suv_header", f"SUV not computable from the PET header: {exc}.")
    return got.suv_per_bqml


def _not_brain(volume: Volume, fit: brain_atlas.AtlasFit, rules: BrainPetRules) -> Reason | None:
    a = rules.atlas
    if abs(fit.scale - 1.0) > float(a.max_scale_change) or fit.correlation < float(a.min_brain_correlation):
        return Reason("not_brain", f"The series is not a brain PET: the MNI152 brain template does not fit it "
                      f"(scale {fit.scale:.2f}, correlation {fit.correlation:.2f}; at least "
                      f"{a.min_brain_correlation} needed).")
    return None


def _headers(series: SeriesFiles, volume: Volume) -> tuple[Dataset, ...]:
    """The instances of `series` that `volume`'s slices come from."""
    uids = {s.sop_instance_uid for s in volume.slices}
    return tuple(i.header for i in series.instances if i.sop_instance_uid in uids)


def _frame_minutes(series: SeriesFiles, frame: Volume, head: Dataset) -> tuple[float, float] | None:
    """(start, end) of one time frame in minutes after injection, from FrameReferenceTime (the frame's
    time from the series reference time) and ActualFrameDuration; None when the header does not say."""
    h = pet_header(head)
    found = _headers(series, frame)
    ref = [ds.get("FrameReferenceTime") for ds in found]
    dur = [ds.get("ActualFrameDuration") for ds in found]
    if h is None or not found or any(v in (None, "") for v in (*ref, *dur)):
        return None
    offset = (h.reference_time - h.injection_time).total_seconds() / 60.0
    mid = offset + float(np.median([float(v) for v in ref])) / 60000.0
    half = float(np.median([float(v) for v in dur])) / 120000.0
    return mid - half, mid + half


def _dynamic(series: SeriesFiles, head: Dataset, factor: float,
             br: BrainPetRules) -> tuple[Volume, tuple[Dataset, ...], dict[str, Volume], dict[str, str]] | Reason:
    """A dynamic PET: the frames summed over the rules' window (SUVbw, duration-weighted) as the measured
    image, every frame as a companion `frame_<n>` and the frames' times in the notes; or why not."""
    untimed = [i for i in series.instances
               if any(i.header.get(k) in (None, "") for k in ("FrameReferenceTime", "ActualFrameDuration"))]
    if untimed:
        return Reason("frame_times", f"The PET series is dynamic (4D: every slice position acquired more than once) "
                      f"but {len(untimed)} of its {len(series.instances)} images lack their frame time "
                      "(FrameReferenceTime / ActualFrameDuration): no time-activity curve, time to peak or summed "
                      "20-40 min image can be made.")
    try:
        dyn = load_dynamic(series)
    except DynamicRefused as exc:
        return Reason("", f"The dynamic (4D) PET series cannot be read as time frames: {exc}.")
    times = [_frame_minutes(series, v, head) for v in dyn.frames]
    if any(t is None for t in times):
        missing = sum(t is None for t in times)
        return Reason("", f"The dynamic (4D) PET series has {len(times)} time frames but the times of {missing} are "
                      "missing (FrameReferenceTime / ActualFrameDuration, or the injection time): no time-activity "
                      "curve, time to peak or summed 20-40 min image can be made.")
    spans = [t for t in times if t is not None]
    lo, hi = (float(v) for v in br.dynamic.sum_window_min)
    chosen = [n for n, (a, b) in enumerate(spans) if a >= lo - 0.5 and b <= hi + 0.5]
    if not chosen:
        return Reason("", f"The dynamic PET's frames ({spans[0][0]:.0f} to {spans[-1][1]:.0f} min p.i.) do not cover "
                      f"the {lo:g}-{hi:g} min window on which the tumour-to-background ratio is defined.")
    weights = np.asarray([spans[n][1] - spans[n][0] for n in chosen], dtype=np.float64)
    summed = sum(np.asarray(dyn.frames[n].array, dtype=np.float64) * w for n, w in zip(chosen, weights, strict=True))
    reference = dyn.frames[chosen[0]]
    volume = reference.with_array(np.asarray(summed / weights.sum() * factor, dtype=np.float32))
    companions = {f"frame_{n}": v.with_array(np.asarray(v.array, dtype=np.float32) * np.float32(factor))
                  for n, v in enumerate(dyn.frames)}
    notes = {"acquisition": "dynamic", "frame_minutes": " ".join(f"{a:.4g},{b:.4g}" for a, b in spans),
             "summed_frames": f"{len(chosen)} frames, {spans[chosen[0]][0]:g}-{spans[chosen[-1]][1]:g} min p.i."}
    return volume, _headers(series, reference), companions, notes


def _acquired(files: SeriesFiles) -> float:
    h = pet_header(files.first)
    return 0.0 if h is None else (h.reference_time - h.injection_time).total_seconds() / 60.0


def _dual_phase(series: Mapping[str, SeriesFiles], chosen: SeriesFiles, tracer: Tracer,
                br: BrainPetRules) -> tuple[SeriesFiles, SeriesFiles] | None:
    """FDG: the study's early and delayed series of the same tracer, at least the rules' interval apart."""
    if tracer != "FDG":
        return None
    pets = [s for s in series.values() if s.modality == "PT" and tracer_of(s.first, br) == tracer
            and len(s.instances) >= 20 and pet_header(s.first) is not None]
    if len(pets) < 2:
        return None
    pets.sort(key=_acquired)
    early, late = pets[0], pets[-1]
    return (early, late) if _acquired(late) - _acquired(early) >= float(br.dual_phase.min_interval_min) else None


def _load(chosen: SeriesFiles, head: Dataset, factor: float,
          br: BrainPetRules) -> tuple[Volume, tuple[Dataset, ...], dict[str, Volume], dict[str, str]] | Reason:
    if is_dynamic(chosen):
        return _dynamic(chosen, head, factor, br)
    try:
        volume = load_volume(chosen).volume
    except SeriesRefused as exc:
        return Reason("", f"The PET series cannot be used: {exc}")
    suv = volume.with_array(np.asarray(volume.array, dtype=np.float32) * np.float32(factor))
    return suv, tuple(i.header for i in chosen.instances), {}, {"acquisition": "static",
                                                                 "minutes_pi": f"{_acquired(chosen):.4g}"}


def _early(early: SeriesFiles, late: Volume, rules: RulesSource) -> tuple[Volume, float] | str:
    """The early series in SUVbw on the delayed series' grid (same frame of reference)."""
    factor = suv_per_bqml(early.first, rules.load(PercistRules, "percist"))
    if isinstance(factor, Reason):
        return f"early series: {factor.text}"
    try:
        vol = load_volume(early).volume
    except SeriesRefused as exc:
        return f"the early series cannot be used: {exc}"
    if vol.frame_of_reference_uid != late.frame_of_reference_uid:
        return "the early and delayed series are not in one frame of reference"
    suv = vol.with_array(np.asarray(vol.array, dtype=np.float32) * np.float32(factor))
    return resample_to(suv, late, 0.0), _acquired(early)


def brain_pet(series: Mapping[str, SeriesFiles], spec: SeriesSpec, rules: RulesSource) -> StudyImage | Reason:
    """The brain PET in SUVbw with its MNI coordinates; or why not."""
    br = rules.load(BrainPetRules, RULES_NAME)
    selection = select_series(spec, series)
    if selection.chosen is None:  # the route's own no-series sentence says it; the candidates listed in English
        return Reason("no_series", selection.explain())
    chosen = series[str(selection.series_instance_uid)]
    head = chosen.first
    tracer = tracer_of(head, br)
    if tracer is None:
        seq = head.get("RadiopharmaceuticalInformationSequence") or [Dataset()]
        name = str(seq[0].get("Radiopharmaceutical", "not given"))
        return Reason("tracer", f"The radiopharmaceutical ({name}) is none of {', '.join(br.tracers)}.", {"name": name})
    pair = _dual_phase(series, chosen, tracer, br)
    if pair is not None:
        chosen, head = pair[1], pair[1].first
    factor = suv_per_bqml(head, rules.load(PercistRules, "percist"))
    if isinstance(factor, Reason):
        return factor
    loaded = _load(chosen, head, factor, br)
    if isinstance(loaded, Reason):
        return loaded
    suv, sources, companions, notes = loaded
    extent = suv.shape[0] * suv.spacing[0]
    if not float(br.atlas.min_axial_extent_mm) <= extent <= float(br.atlas.max_axial_extent_mm):
        return Reason("extent", f"The series is not a brain PET: it covers {extent:.0f} mm along the body (a brain "
                      f"PET covers {br.atlas.min_axial_extent_mm} to {br.atlas.max_axial_extent_mm} mm).",
                      {"mm": f"{extent:.0f}"})
    suv = replace(suv, metadata={**suv.metadata, "units": "SUVbw", "acquired": _acquired_at(head)})
    if pair is not None:
        early = _early(pair[0], suv, rules)
        if isinstance(early, str):
            notes["dual_phase"] = f"not paired: {early}"
        else:
            companions["early"] = early[0]
            notes |= {"dual_phase": "same study", "early_minutes_pi": f"{early[1]:.4g}"}
    maps = mni_templates.tissue_maps(float(br.atlas.grid_mm))
    pseudo = brain_regions.pseudo_pet(maps, br.atlas.uptake[tracer], br.regions.striatum)
    fit = brain_atlas.fit_template(suv, pseudo, maps, iterations=br.atlas.iterations, sampling=float(br.atlas.sampling))
    if (why := _not_brain(suv, fit, br)) is not None:
        return why
    ras = brain_atlas.mni_of_grid(suv, fit).astype(np.float32)
    companions |= {f"mni_{a}": suv.with_array(ras[..., n]) for n, a in enumerate("xyz")}
    notes |= {"tracer": tracer, "setting": setting_of(head, tracer, br),
              "atlas_fit": f"scale {fit.scale:.3f}, correlation {fit.correlation:.3f}",
              "suv_per_bqml": f"{factor:.9g}", "atlas_matrix": " ".join(f"{v:.9g}" for v in fit.matrix.ravel()),
              "acquired": _acquired_at(head)}
    return StudyImage(suv, sources, chosen.series_instance_uid, companions, (), notes)


def _acquired_at(head: Dataset) -> str:
    """When the series was acquired (its reference time), ISO; "" when the header does not say."""
    h = pet_header(head)
    return "" if h is None else h.reference_time.isoformat()


def atlas_fit(image: StudyImage) -> brain_atlas.AtlasFit:
    """The template fit `brain_pet` recorded in the image's notes."""
    m = np.array([float(v) for v in image.notes["atlas_matrix"].split()], dtype=np.float64).reshape(4, 4)
    return brain_atlas.AtlasFit(m, 1.0, 0.0, image.notes.get("atlas_fit", ""))


def mni_coordinates(image: StudyImage) -> np.ndarray:
    return np.stack([np.asarray(image.companions[f"mni_{a}"].array, dtype=np.float64) for a in "xyz"], axis=-1)
