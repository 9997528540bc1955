"""Brain PET after radiotherapy (FDOPA, FET, FDG): recurrence or treatment-related change.

The lesion-follow-up pipeline (daemon.pipelines.lesion_followup) configured for brain PET:

- input (daemon.pipelines.brain_pet_input): the PET in SUVbw, its tracer (code or name, aliases
  in rules/amino_pet_route.yaml) and setting, the MNI152 template fitted to it; SUV not
  computable, an unknown tracer or a non-brain PET gets an SR saying why;
- regions (daemon.measure.brain_regions): striatum, contralateral normal brain, white matter and
  grey matter at the thalamus level, each with its volume and how it was drawn;
- lesion: the brain MR route's lesions of the same patient processed within the rules' window
  (their tracking identifiers carried over), else the hottest focus by the rules' threshold
  (relative to the reference region), else no lesion;
- per lesion the ratios each published criterion uses, and each criterion applied only to its
  tracer and setting (daemon.criteria.amino_pet), with its Se/Sp and citation: no single verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
from pydicom.dataset import Dataset

from daemon.criteria import amino_pet
from daemon.criteria.assessment import Assessment
from daemon.criteria.params import AminoPetParams
from daemon.criteria.rules import RulesSource
from daemon.findings import LesionKind, Timepoint
from daemon.imaging.selection import SeriesSpec
from daemon.measure import brain_regions, pet_tac
from daemon.measure.brain_pet_rules import RULES_NAME, BrainPetRules
from daemon.measure.lesions import MeasuredLesion, MeasureOptions
from daemon.pipelines import brain_pet_images, lesion_followup
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.brain_pet_input import brain_pet
from daemon.pipelines.brain_pet_lesions import find_hottest, find_lesion
from daemon.pipelines.followup_input import StudyImage
from daemon.pipelines.lesion_followup import Anatomy, FollowUpRoute, Organs, StudyFacts
from daemon.report.inputs import (
    ExtraKeyImage,
    ReferenceRegion,
    StudyMeasurement,
    StudyMeasurementGroup,
)
from daemon.volume import Code, Volume

BRAIN = Code("12738006", "SCT", "Brain")
# CID 100 has no brain PET code (SCT 764666002 "PET brain study" is refused there by PixelMed): the
# region is the SR's finding site (Brain); never CID 100's "PET/CT FDG imaging of whole body"
PET_BRAIN = Code("44136-0", "LN", "PET unspecified body region")
NEOPLASM = Code("108369006", "SCT", "Neoplasm")
DEFAULT_SERIES = SeriesSpec(modality=["PT"], image_type_absent=["LOCALIZER"], min_slices=20)
REGION_NAMES = {"normal_brain": "Normal brain (contralateral)", "striatum": "Striatum (contralateral)",
                "white_matter": "White matter (contralateral)",
                "grey_matter_thalamus": "Grey matter, thalamus level"}
SUV_UNIT = "g/ml{SUVbw}"
# each reference region's SEG segment type (SCT, PS3.16 CID 7151)
REGION_CODES = {"normal_brain": Code("12738006", "SCT", "Brain"),
                "striatum": Code("31428008", "SCT", "Corpus striatum"),
                "white_matter": Code("68523003", "SCT", "Cerebral White Matter"),
                "grey_matter_thalamus": Code("389081007", "SCT", "Gray Matter")}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def features(rules: RulesSource) -> lesion_followup.LesionFeatures:
    """Per lesion: SUVbw statistics are measured by the pipeline; here the reference ratios."""

    def compute(volume: Volume, organs: Organs, lesion: MeasuredLesion) -> tuple[dict[str, float], dict[str, str]]:
        suv = np.asarray(volume.array, dtype=np.float64)
        i = lesion.measurements.intensity
        lmax, lmean = i.get("suv_max"), i.get("suv_mean")
        out: dict[str, float] = {}
        for key, region in (("n", "normal_brain"), ("s", "striatum"), ("wm", "white_matter"),
                            ("gm", "grey_matter_thalamus")):
            m = organs.get(region)
            if m is None or not m.any():
                continue
            rmax, rmean = float(suv[m].max()), float(suv[m].mean())
            for stat, num, den in (("max", lmax, rmax), ("mean", lmean, rmean)):
                r = _ratio(num, den)
                if r is not None:
                    out[f"l_{key}_{stat}"] = r
            tbr = _ratio(lmax, rmean)
            if key == "n" and tbr is not None:
                out["tbr_max"] = tbr
        # when the series was acquired: an FDG lesion is paired with the same lesion of an earlier study
        # (dual-phase FDG, Horky) by it
        acquired = volume.metadata.get("acquired", "")
        return out, ({"acquired": acquired} if acquired else {})

    return compute


class BrainPetRule:
    """No response category across time: each published criterion is listed on its own."""

    criterion = "amino-acid PET"

    def baseline_kinds(self, lesions: Sequence[MeasuredLesion], volume: Volume, sites: Sequence[str],
                       nodes: Sequence[bool]) -> list[LesionKind]:
        return [LesionKind.TARGET] * len(lesions)

    def assess(self, history: Sequence[Timepoint], current: Timepoint, volume: Volume) -> tuple[Assessment | None, str]:
        return None, ("Each published criterion is listed on its own, for its tracer and setting, with its "
                      "sensitivity, specificity and source; where they disagree no single verdict is given.")

    def thresholds(self) -> dict[str, float]:
        return {}


def _lesion_masks(facts: StudyFacts, current: Timepoint) -> dict[str, np.ndarray]:
    """Each tracked lesion's voxels, by tracking id."""
    if facts.mask is None:
        return {}
    return {les.tracking_id: np.asarray(facts.mask.labels == les.segment_number)
            for les in current.lesions if les.segment_number is not None}


def _dynamic(facts: StudyFacts, masks: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per lesion, on a dynamic PET: time to peak and slope of its time-activity curve; the normal
    brain's curve beside it (daemon.measure.pet_tac)."""
    image, organs = facts.image, facts.organs or {}
    if image is None or image.notes.get("acquisition") != "dynamic":
        return {}
    br = facts.rules.load(BrainPetRules, RULES_NAME)
    spans = pet_tac.parse_spans(image.notes["frame_minutes"])
    frames = [np.asarray(image.companions[f"frame_{n}"].array) for n in range(len(spans))]
    window = (float(br.dynamic.slope_window_min[0]), float(br.dynamic.slope_window_min[1]))
    out: dict[str, dict[str, float]] = {}
    normal = organs.get("normal_brain")
    ref = pet_tac.curve(frames, spans, normal) if normal is not None and normal.any() else None
    for tid, m in masks.items():
        c = pet_tac.curve(frames, spans, m)
        got = {"ttp_min": c.time_to_peak_min, **{f"tac_{n}": v for n, v in enumerate(c.values)}}
        slope = c.slope_per_hour(window)
        if slope is not None:
            got["slope_suv_per_h"] = slope
        if ref is not None:
            got |= {f"tac_ref_{n}": v for n, v in enumerate(ref.values)}
        out[tid] = got
    return out


Pairing = dict[str, str]  # how Horky's early acquisition was found: early, early_study, early_minutes


def _horky_inputs(facts: StudyFacts, masks: dict[str, np.ndarray], history: Sequence[Timepoint],
                  current: Timepoint) -> dict[str, tuple[float, float, float, float, Pairing]]:
    """Per lesion (l1, gm1, l2, gm2, how paired): the early series of the same study, else the same lesion
    (tracking id) in an earlier FDG study of this route within the rules' interval."""
    image, organs = facts.image, facts.organs or {}
    gm = organs.get("grey_matter_thalamus")
    if image is None or gm is None or not gm.any():
        return {}
    suv = np.asarray(image.volume.array, dtype=np.float64)
    gm2 = float(suv[gm].max())  # L/GM as SUVmax / SUVmax, as `l_gm_max` of an earlier study [impl]
    out: dict[str, tuple[float, float, float, float, Pairing]] = {}
    early = image.companions.get("early")
    if early is not None:
        e = np.asarray(early.array, dtype=np.float64)
        for tid, m in masks.items():
            out[tid] = (float(e[m].max()), float(e[gm].max()), float(suv[m].max()), gm2, {"early": "paired"})
        return out
    br = facts.rules.load(BrainPetRules, RULES_NAME)
    now = image.notes.get("acquired", "")
    for les in current.lesions:
        lesion_mask = masks.get(les.tracking_id)
        for tp in reversed(history):
            prior = next((p for p in tp.lesions if p.tracking_id == les.tracking_id), None)
            if lesion_mask is None or prior is None or "l_gm_max" not in prior.measurements.intensity:
                continue
            then = prior.measurements.notes.get("acquired", "")
            if not now or not then:
                continue
            minutes = (datetime.fromisoformat(now) - datetime.fromisoformat(then)).total_seconds() / 60.0
            if float(br.dual_phase.min_interval_min) <= minutes <= float(br.dual_phase.max_interval_min):
                i = prior.measurements.intensity
                out[les.tracking_id] = (i["l_gm_max"], 1.0, float(suv[lesion_mask].max()), gm2,
                                        {"early": "paired", "early_study": tp.study_instance_uid,
                                         "early_minutes": f"{minutes:.0f}"})
                break
    return out


def _horky_not_evaluable(params: AminoPetParams, tracer: str, setting: str, why: str,
                         l_gm: float | None = None, pairing: Pairing | None = None) -> Assessment:
    """Horky's dual-phase index without an early acquisition: not evaluable, and why (never absent);
    `l_gm`: this acquisition's lesion / grey matter SUVmax ratio, reported beside it."""
    a = amino_pet.evaluate(params, "fdg_dual_phase_horky", tracer, setting, {"index": None},
                           {"l_gm_early": None, "l_gm_delayed": l_gm, "index": None})
    if a.category == "not_applicable":
        return a
    reason = f"Horky dual-phase index not evaluable: {why or 'no early acquisition of this lesion'}"
    return replace(a, category="not_evaluable", evaluable=False, reasons=(reason,),
                   details=a.details | {"reason": reason} | (pairing or {}))


def _criteria(params: AminoPetParams, tracer: str, setting: str, lesion_id: str,
              r: dict[str, float], missing: str = "", paired: Pairing | None = None) -> list[Assessment]:
    """The criteria of the tracer for one lesion (`missing`: why Horky's early acquisition is absent;
    `paired`: which early acquisition it was paired with)."""
    out = []
    lmax = r.get("suv_max")
    if tracer == "FDOPA":
        n, s = r.get("n_max"), r.get("s_max")
        out.append(amino_pet.cicone(params, tracer, setting, lmax or 0.0, n or 0.0))
        out.append(amino_pet.lizarraga(params, tracer, setting, lmax or 0.0, n or 0.0, s or 0.0))
    elif tracer == "FET":
        out.append(amino_pet.galldiks(params, tracer, setting, r.get("l_n_mean_tbr"), r.get("ttp_min")))
        out.append(amino_pet.puranik(params, tracer, setting, lmax or 0.0, r.get("wm_mean") or 0.0))
    elif tracer == "FDG" and "horky_l1" in r:
        a = amino_pet.horky(params, tracer, setting, r["horky_l1"], r["horky_gm1"], r["horky_l2"], r["horky_gm2"])
        p = paired or {}
        how = (f"study {p['early_study']}, {p['early_minutes']} min earlier" if p.get("early_study")
               else "early series of this study")
        out.append(replace(a, reasons=(*a.reasons, f"early acquisition: {how}"), details=a.details | p))
    elif tracer == "FDG":
        out.append(_horky_not_evaluable(params, tracer, setting, missing, r.get("l_gm_max"), paired))
    return [replace(a, details=a.details | {"lesion": lesion_id},
                    reasons=tuple(f"{lesion_id}: {x}" for x in a.reasons)) for a in out]


def extra(facts: StudyFacts, history: Sequence[Timepoint], current: Timepoint) -> tuple[Assessment, ...]:
    image = facts.image
    if image is None:
        return ()
    params = facts.rules.load(AminoPetParams, "amino_pet")
    tracer, setting = image.notes.get("tracer", ""), image.notes.get("setting", "")
    suv = np.asarray(image.volume.array, dtype=np.float64)
    organs = facts.organs or {}
    refs = {k: (float(suv[m].max()), float(suv[m].mean())) for k, m in organs.items() if m.any()}
    masks = _lesion_masks(facts, current)
    dynamic = _dynamic(facts, masks)
    horky = _horky_inputs(facts, masks, history, current) if tracer == "FDG" else {}
    out: list[Assessment] = []
    for les in current.lesions:
        i = les.measurements.intensity
        r = {"suv_max": i.get("suv_max", 0.0), "n_max": refs.get("normal_brain", (0.0, 0.0))[0],
             "s_max": refs.get("striatum", (0.0, 0.0))[0], "wm_mean": refs.get("white_matter", (0.0, 0.0))[1]}
        if "suv_mean" in i and "normal_brain" in refs and refs["normal_brain"][1] > 0:
            r["l_n_mean_tbr"] = i["suv_mean"] / refs["normal_brain"][1]
        if "ttp_min" in dynamic.get(les.tracking_id, {}):
            r["ttp_min"] = dynamic[les.tracking_id]["ttp_min"]
        if "l_gm_max" in i:
            r["l_gm_max"] = i["l_gm_max"]
        missing, paired = "", Pairing()
        if les.tracking_id in horky:
            h = horky[les.tracking_id]
            r |= {"horky_l1": h[0], "horky_gm1": h[1], "horky_l2": h[2], "horky_gm2": h[3]}
            paired = h[4]
        elif tracer == "FDG":
            br = facts.rules.load(BrainPetRules, RULES_NAME)
            early = image.notes.get("dual_phase", "")
            hours = float(br.dual_phase.max_interval_min) / 60.0
            paired = ({"early": "not_paired"} if early.startswith("not paired")
                      else {"early": "none_within", "early_within_h": f"{hours:g}"})
            why = (early if early.startswith("not paired") else
                   f"no early acquisition within {hours:g} h: no early series in this study, and no FDG study of "
                   f"this route with lesion {les.tracking_id} acquired {br.dual_phase.min_interval_min} to "
                   f"{br.dual_phase.max_interval_min} min earlier")
            missing = why
        out += _criteria(params, tracer, setting, les.tracking_id, r, missing, paired)
    return tuple(out)


def _dynamic_groups(facts: StudyFacts, current: Timepoint) -> list[StudyMeasurementGroup]:
    """Dynamic FET: per lesion its time to peak, slope and time-activity curve (lesion and normal brain)."""
    image = facts.image
    dynamic = _dynamic(facts, _lesion_masks(facts, current))
    if image is None or not dynamic:
        return []
    br = facts.rules.load(BrainPetRules, RULES_NAME)
    spans = pet_tac.parse_spans(image.notes["frame_minutes"])
    groups = []
    for tid, d in dynamic.items():
        items = [StudyMeasurement("ttp_min", f"{tid} time to peak", d["ttp_min"], "min")]
        if "slope_suv_per_h" in d:
            items.append(StudyMeasurement("tac_slope", f"{tid} TAC slope {br.dynamic.slope_window_min[0]}-"
                                          f"{br.dynamic.slope_window_min[1]} min", d["slope_suv_per_h"], "/h"))
        for n, (a, b) in enumerate(spans):
            items.append(StudyMeasurement(f"tac_{n}", f"{tid} SUVmean {a:g}-{b:g} min", d[f"tac_{n}"], SUV_UNIT))
            if f"tac_ref_{n}" in d:
                items.append(StudyMeasurement(f"tac_ref_{n}", f"Normal brain SUVmean {a:g}-{b:g} min",
                                              d[f"tac_ref_{n}"], SUV_UNIT))
        groups.append(StudyMeasurementGroup(f"{tid} time-activity curve", tuple(items),
                                            f"dynamic FET PET; TBR on {image.notes.get('summed_frames', '')}; "
                                            f"{br.dynamic.citation.text}"))
    return groups


def study_measurements(facts: StudyFacts, current: Timepoint) -> tuple[StudyMeasurementGroup, ...]:
    """Each reference region as a group: SUVmax, SUVmean, SUVpeak, volume, and how it was drawn."""
    image, organs = facts.image, facts.organs or {}
    if image is None:
        return ()
    br = facts.rules.load(BrainPetRules, RULES_NAME)
    suv = np.asarray(image.volume.array, dtype=np.float64)
    voxel_ml = image.volume.voxel_volume_mm3 / 1000.0
    from daemon.measure.intensity import peak

    groups = []
    for name, label in REGION_NAMES.items():
        m = organs.get(name)
        if m is None:
            continue
        st = brain_regions.region_stats(suv, m, voxel_ml)
        items = [StudyMeasurement(f"{name}_volume_ml", f"{label} volume", st["volume_ml"], "ml")]
        if "suv_max" in st:
            items += [StudyMeasurement(f"{name}_suv_max", f"{label} SUVmax", st["suv_max"], SUV_UNIT),
                      StudyMeasurement(f"{name}_suv_mean", f"{label} SUVmean", st["suv_mean"], SUV_UNIT)]
            pk = peak(suv, m, image.volume.spacing, 1.0)
            if pk is not None:
                items.append(StudyMeasurement(f"{name}_suv_peak", f"{label} SUVpeak (1 mL)", pk[0], SUV_UNIT))
        cite = getattr(br.regions, "grey_matter_thalamus_level" if name == "grey_matter_thalamus" else name).citation
        groups.append(StudyMeasurementGroup(label, tuple(items), f"{image.notes.get('tracer', '')} PET; {cite.text}"))
    return (*groups, *_dynamic_groups(facts, current))


def reference_regions(facts: StudyFacts) -> tuple[ReferenceRegion, ...]:
    """The reference regions as SEG segments (category Anatomical Structure, type per region)."""
    organs = facts.organs or {}
    return tuple(ReferenceRegion(label, REGION_CODES[name], organs[name])
                 for name, label in REGION_NAMES.items() if name in organs and organs[name].any())


def key_images(facts: StudyFacts, current: Timepoint, footer: str) -> tuple[ExtraKeyImage, ...]:
    """Each reference region on its centre slice, then (dynamic FET) each lesion's time-activity curves."""
    return (*brain_pet_images.region_images(facts, current, footer, REGION_NAMES),
            *brain_pet_images.tac_images(facts, current, footer))


def context(rules: RulesSource, image: StudyImage, organs: Organs, lesions: Sequence[MeasuredLesion]) -> dict[str, str]:
    return {k: image.notes[k] for k in ("tracer", "setting", "acquisition", "atlas_fit") if k in image.notes}


ROUTE = FollowUpRoute(
    criterion="amino-acid PET",
    anatomy=Anatomy(finding=NEOPLASM, finding_site=BRAIN, site="brain"),
    default_model="",
    default_series=DEFAULT_SERIES,
    no_series="No brain PET (FDOPA, FET or FDG) suitable for the amino-acid PET ratios.",
    measure=MeasureOptions(quantity="suv", peak_sphere_ml=1.0, split_components=False),
    rule=lambda rules: BrainPetRule(),
    features=features,
    image_input=brain_pet,
    rule_finder=find_hottest,
    prior_finder=find_lesion,
    default_segmenter="rule",
    context=context,
    extra=extra,
    study_measurements=study_measurements,
    procedure=PET_BRAIN,
    reference_regions=reference_regions,
    key_images=key_images,
)


def run(inp: PipelineInput) -> list[Dataset]:
    return lesion_followup.run(ROUTE, inp, "brain_pet")
