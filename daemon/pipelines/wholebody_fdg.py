"""Whole-body FDG PET/CT: PERCIST 1.0, TMTV, TLG, Dmax and body composition.

The lesion-follow-up pipeline (daemon.pipelines.lesion_followup, which lists the steps
and the route parameters) configured for whole-body FDG PET/CT:

- input (daemon.pipelines.wholebody_input): the attenuation-corrected PET in SUL with its
  CT (same Frame of Reference, acquired within minutes); a PET without its CT, a
  non-attenuation-corrected or a partial (e.g. half-body) PET gets an SR saying why;
- lesions (daemon.pipelines.wholebody_finder): by default the seed's rule (SUV >= 4
  connected components, or the 41 % SUVmax variant; rules/wholebody_fdg.yaml) with
  physiological uptake (brain, heart, kidneys, bladder) set aside by an organ model's masks
  or by location rules; or a site's lesion model through the manifest (`segmenter: model`);
- per lesion: SULpeak (1 cm3 sphere), SULmax, SULmean, volume, and the SUVbw values; its coarse
  site from the CT (liver, lung, bone, lymph node region, other soft tissue; daemon.measure.body_sites)
  for PERCIST's limit of 2 targets per organ;
- PERCIST 1.0 (daemon.pipelines.wholebody_response) against the baseline, with the liver
  reference (3 cm sphere, right lobe) of each timepoint;
- study measurements: TMTV, TLG, lesion count, Dmax and Dmax / body surface area
  (daemon.criteria.tmtv), and body composition of the CT (subcutaneous fat, visceral fat,
  skeletal muscle by HU windows; daemon.measure.body_composition) with their SULmean;
- report: the PERCIST wording (templates/report/*.j2 `percist`), the coronal MIP, and the trend of
  the hottest SULpeak and the TMTV over the visits (daemon.report.trend `sulpeak_tmtv`).
"""

from __future__ import annotations

import math

import numpy as np
from pydicom.dataset import Dataset
from scipy import ndimage

from daemon.criteria import tmtv
from daemon.criteria.params import PercistRules
from daemon.criteria.rules import RulesSource
from daemon.findings import Timepoint
from daemon.imaging.selection import SeriesSpec
from daemon.measure import body_composition as bc
from daemon.measure.lesions import MeasuredLesion, MeasureOptions
from daemon.pipelines import lesion_followup
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.lesion_followup import (
    Anatomy,
    FollowUpRoute,
    LesionFeatures,
    Organs,
    StudyFacts,
)
from daemon.pipelines.wholebody_finder import (
    find_lesions,
    liver_reference,
    liver_sphere,
    suv_volume,
)
from daemon.pipelines.wholebody_input import pet_ct
from daemon.pipelines.wholebody_response import PercistRule
from daemon.pipelines.wholebody_rules import WholeBodyRules
from daemon.report.inputs import StudyMeasurement, StudyMeasurementGroup
from daemon.volume import Code, Volume

WHOLE_BODY = Code("38266002", "SCT", "Entire body as a whole")
NEOPLASM = Code("108369006", "SCT", "Neoplasm")
DEFAULT_SERIES = SeriesSpec(modality=["PT"], image_type_absent=["LOCALIZER"], min_slices=20)


def measure_options(rules: RulesSource) -> MeasureOptions:
    pc = rules.load(PercistRules, "percist")
    return MeasureOptions(quantity="sul", peak_sphere_ml=float(pc.percist.sulpeak_sphere_cm3))


def suv_features(rules: RulesSource) -> LesionFeatures:
    """SUVbw max, mean and peak beside the SUL values (seed 002 reports SUVbw); and in each
    lesion's notes the liver reference it was measured against, which stays with the lesion in
    the node's database (PERCIST compares the baseline's liver with the follow-up's)."""
    diameter = float(rules.load(PercistRules, "percist").percist.liver_voi_diameter_cm) * 10.0
    liver: dict[int, dict[str, str]] = {}  # per image (one run measures one image)

    def features(image: Volume, organs: Organs, lesion: MeasuredLesion) -> tuple[dict[str, float], dict[str, str]]:
        factor = float(image.metadata.get("suv_per_sul", "1"))
        i = lesion.measurements.intensity
        numbers = {f"suv_{s}": i[f"sul_{s}"] * factor for s in ("max", "mean", "peak") if f"sul_{s}" in i}
        if id(image) not in liver:
            ref = liver_sphere(image, organs.get("liver"), diameter)
            liver[id(image)] = {k: v for k, v in ref.items() if k in ("liver_sul_mean", "liver_sul_sd")}
        return numbers, {"lbm_formula": image.metadata.get("lbm_formula", ""), **liver[id(image)]}

    return features


def _bsa_m2(wb: WholeBodyRules, notes: dict[str, str]) -> float | None:
    try:
        weight, height = float(notes.get("weight_kg", "")), float(notes.get("height_m", ""))
    except ValueError:
        return None
    if weight <= 0 or height <= 0:
        return None
    return math.sqrt(height * 100.0 * weight / float(wb.dmax.mosteller_divisor))


def _metabolic(facts: StudyFacts, wb: WholeBodyRules, pc: PercistRules) -> StudyMeasurementGroup | None:
    image, mask = facts.image, facts.mask
    if image is None or mask is None:
        return None
    suv = suv_volume(image)
    labels = np.asarray(mask.labels)
    index = [int(v) for v in np.unique(labels) if v]
    voxel_ml = suv.voxel_volume_mm3 / 1000.0
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=max(index, default=0) + 1)
    centres = ndimage.center_of_mass(labels > 0, labels, index) if index else []
    means: list[float] = [float(v) for v in np.atleast_1d(ndimage.mean(np.asarray(suv.array), labels, index))] \
        if index else []
    lesions = []
    for n, c, centre, mean in zip(range(len(index)), index, centres, means, strict=True):
        p = suv.index_to_patient(np.asarray(centre, dtype=np.float64))
        lesions.append(tmtv.MetabolicLesion(str(n), volume_ml=float(counts[c]) * voxel_ml,
                                            centroid_mm=(float(p[0]), float(p[1]), float(p[2])),
                                            suv_mean=float(mean)))
    a = tmtv.assess(lesions, pc.tmtv)
    items = [StudyMeasurement("tmtv_ml", "Total metabolic tumour volume", float(a.numbers["tmtv_ml"] or 0.0), "ml"),
             StudyMeasurement("lesion_count", "Number of FDG-avid lesions", float(len(lesions)), "1"),
             StudyMeasurement("dmax_mm", "Dmax (largest distance between lesion centroids)",
                              float(a.numbers["dmax_mm"] or 0.0), "mm")]
    if a.numbers.get("tlg") is not None:
        items.insert(1, StudyMeasurement("tlg", "Total Lesion Glycolysis", float(a.numbers["tlg"] or 0.0), "g"))
    bsa = _bsa_m2(wb, dict(image.notes))
    if bsa is not None:
        items.append(StudyMeasurement("dmax_bsa", "Dmax / body surface area", float(a.numbers["dmax_mm"] or 0.0) / bsa,
                                      "mm/m2"))
    basis = (f"{a.reasons[0]}; TLG in SUVbw x mL; Dmax/BSA: {wb.dmax.citation.text} "
             f"{pc.tmtv.citation.text}")
    return StudyMeasurementGroup("Whole-body PET features", tuple(items), basis)


def _composition(facts: StudyFacts, wb: WholeBodyRules) -> StudyMeasurementGroup | None:
    image = facts.image
    if image is None or "ct" not in image.companions:
        return None
    ct = image.companions["ct"]
    c = wb.body_composition
    comp = bc.compartments(ct, (float(c.fat_hu[0]), float(c.fat_hu[1])), (float(c.muscle_hu[0]), float(c.muscle_hu[1])),
                           float(c.body_hu_min), float(wb.physiological.neck_search_fraction))
    volumes = comp.volumes_ml()
    meanings = {"subcutaneous_fat": "Subcutaneous adipose tissue", "visceral_fat": "Visceral adipose tissue",
                "skeletal_muscle": "Skeletal muscle"}
    items = []
    for name, meaning in meanings.items():
        items.append(StudyMeasurement(f"{name}_ml", f"{meaning} volume", volumes[name], "ml"))
        sul = bc.mean_on(image.volume, getattr(comp, name), ct)
        if sul is not None:
            items.append(StudyMeasurement(f"{name}_sul_mean", f"{meaning} SULmean", sul, "g/ml{SUVlbm(Janma)}"))
    return StudyMeasurementGroup("Body composition (CT)", tuple(items), c.citation.text)


def study_measurements(facts: StudyFacts, current: Timepoint) -> tuple[StudyMeasurementGroup, ...]:
    wb = facts.rules.load(WholeBodyRules, "wholebody_fdg")
    pc = facts.rules.load(PercistRules, "percist")
    groups = (_metabolic(facts, wb, pc), _composition(facts, wb))
    return tuple(g for g in groups if g is not None)


ROUTE = FollowUpRoute(
    criterion="PERCIST 1.0",
    anatomy=Anatomy(finding=NEOPLASM, finding_site=WHOLE_BODY, site="whole body", organ_sites=("liver",)),
    default_model="",
    default_series=DEFAULT_SERIES,
    no_series="No attenuation-corrected whole-body FDG PET with its CT suitable for PERCIST 1.0.",
    measure=MeasureOptions(quantity="sul", peak_sphere_ml=1.0),
    rule=PercistRule,
    features=suv_features,
    image_input=pet_ct,
    rule_finder=find_lesions,
    default_segmenter="rule",
    measure_from=measure_options,
    context=liver_reference,
    study_measurements=study_measurements,
    trend="sulpeak_tmtv",
    mip=True,
)


def run(inp: PipelineInput) -> list[Dataset]:
    return lesion_followup.run(ROUTE, inp, "wholebody_fdg")
