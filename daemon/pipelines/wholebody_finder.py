"""The whole-body FDG route's lesion finder without a model, and its liver reference.

Lesions (rules/wholebody_fdg.yaml `lesion_finder`, threshold from rules/percist.yaml
`tmtv`): 26-connected components at SUV >= 4 (or each redrawn at 41 % of its SUVmax),
with physiological uptake set aside: a component most of which an organ model's brain,
heart, kidney or bladder label holds, or else one that lies where the rules file says
those organs lie in the CT's body outline. The liver: the organ model's `liver` label, or
else the CT rule (`liver_reference`). The PERCIST liver reference: a 3 cm sphere
(rules/percist.yaml) at the deepest point of the liver's right half, away from lesions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from daemon import __version__
from daemon.criteria.params import PercistRules
from daemon.criteria.rules import RulesSource
from daemon.measure import body_composition as bc
from daemon.measure import body_sites
from daemon.measure.hot_lesions import (
    BodyFrame,
    OrganWhere,
    body_frame,
    hot_components,
    physiological,
)
from daemon.measure.lesions import MeasuredLesion
from daemon.measure.reference import reference_stats, sphere_in_organ
from daemon.pipelines.followup_input import BoolArray, Found, Organs, StudyImage
from daemon.pipelines.wholebody_rules import OrganRule, WholeBodyRules
from daemon.report.inputs import ModelInfo
from daemon.volume import Code, LesionMask, SegmentLabel, Volume

FloatArray = np.ndarray[Any, np.dtype[np.floating[Any]]]

LESION_LABEL = SegmentLabel(1, "FDG-avid lesion", Code("49755003", "SCT", "Morphologically Altered Structure"),
                            Code("14799000", "SCT", "Neoplasm, Metastatic"))


@dataclass(frozen=True, eq=False)
class Anatomy:
    """The CT's body on the PET grid: the CT (HU), outline, frame (neck, trunk), cavity and the
    CT-rule liver."""

    ct_hu: FloatArray
    body: BoolArray
    frame: BodyFrame
    cavity: BoolArray
    liver: BoolArray | None


def suv_volume(image: StudyImage) -> Volume:
    """The PET in SUVbw (the measured image is in SUL)."""
    factor = float(image.notes.get("suv_per_sul", "1"))
    return image.volume.with_array((np.asarray(image.volume.array) * factor).astype(np.float32))


def anatomy(image: StudyImage, wb: WholeBodyRules) -> Anatomy:
    pet = image.volume
    ct = bc.resample_to(image.companions["ct"], pet, fill=-1000.0)
    c = wb.body_composition
    comp = bc.compartments(ct, (float(c.fat_hu[0]), float(c.fat_hu[1])), (float(c.muscle_hu[0]), float(c.muscle_hu[1])),
                           float(c.body_hu_min), float(wb.physiological.neck_search_fraction))
    neck = bc.neck_slice(comp.body, pet, float(wb.physiological.neck_search_fraction))
    frame = body_frame(comp.body, pet, neck)
    return Anatomy(np.asarray(ct.array), comp.body, frame, comp.cavity, _ct_liver(ct, comp.cavity, frame, wb))


def _ct_liver(ct: Volume, cavity: BoolArray, frame: BodyFrame, wb: WholeBodyRules) -> BoolArray | None:
    """The largest component of the smoothed CT in the liver window, in the cavity, on the right."""
    rule = wb.liver_reference
    sigma = [float(rule.smoothing_mm) / s for s in ct.spacing]
    smooth = ndimage.gaussian_filter(np.asarray(ct.array, dtype=np.float32), sigma)
    window = cavity & (smooth >= float(rule.hu_window[0])) & (smooth <= float(rule.hu_window[1]))
    parts, n = ndimage.label(window)
    if n == 0:
        return None
    index = list(range(1, n + 1))
    sizes = np.bincount(parts.ravel(), minlength=n + 1)
    best, best_size = 0, 0
    for c, centre in zip(index, ndimage.center_of_mass(window, parts, index), strict=True):
        kji = np.asarray(centre, dtype=np.float64)
        x = float(ct.index_to_patient(kji)[0])
        k = int(np.clip(round(float(kji[0])), 0, ct.shape[0] - 1))
        if x < frame.centre_xy[k][0] and sizes[c] > best_size:  # LPS: the patient's right is -x
            best, best_size = c, int(sizes[c])
    if best == 0 or best_size * ct.voxel_volume_mm3 / 1000.0 < float(rule.min_ml):
        return None
    return np.asarray(ndimage.binary_fill_holes(parts == best))


def _where(rule: OrganRule) -> OrganWhere:
    lateral = (float(rule.lateral_mm[0]), float(rule.lateral_mm[1])) if rule.lateral_mm is not None else None
    return OrganWhere((float(rule.trunk_from_top[0]), float(rule.trunk_from_top[1])), lateral, rule.posterior,
                      float(rule.min_ml))


def _info(wb: WholeBodyRules, pc: PercistRules) -> ModelInfo:
    settings = {"finder": wb.lesion_finder.model_dump(mode="json", exclude={"citation"}),
                "suv_threshold": str(pc.tmtv.suv_threshold), "connectivity": pc.tmtv.connectivity,
                "physiological": wb.physiological.model_dump(mode="json", exclude={"citation"})}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    method = wb.lesion_finder.method
    rule = (f"SUV>={pc.tmtv.suv_threshold}" if method == "absolute"
            else f"SUV>={pc.tmtv.suv_threshold} then {wb.lesion_finder.percent_of_max}% SUVmax")
    return ModelInfo(f"Nadir FDG rule {rule}", __version__, digest)


def find_lesions(rules: RulesSource, image: StudyImage, organs: Organs) -> Found:
    """The route's rule finder (daemon.pipelines.followup_input.RuleFinder)."""
    wb = rules.load(WholeBodyRules, "wholebody_fdg")
    pc = rules.load(PercistRules, "percist")
    suv = suv_volume(image)
    f = wb.lesion_finder
    labels, n = hot_components(suv, float(pc.tmtv.suv_threshold),
                               percent_of_max=float(f.percent_of_max) if f.method == "percent_of_max" else None,
                               min_volume_ml=float(f.min_volume_ml), connectivity=pc.tmtv.connectivity)
    body = anatomy(image, wb)
    p = wb.physiological
    where = {"heart": _where(p.heart), "kidney": _where(p.kidney), "bladder": _where(p.bladder)}
    set_aside = physiological(labels, n, suv, body.frame, organs, where)
    lesions = np.isin(labels, [c for c in range(1, n + 1) if c not in set_aside]) & (labels > 0)
    mask = LesionMask(volume=image.volume, labels=lesions.astype(np.uint16), label_info=(LESION_LABEL,))
    found_organs = dict(organs)
    if "liver" not in found_organs and body.liver is not None:
        found_organs["liver"] = body.liver & ~lesions
    found_organs["body"] = body.body
    how = "organ masks of the organ model" if organs else "location rules of rules/wholebody_fdg.yaml (no organ model)"
    said = ", ".join(sorted(set_aside.values()))
    excluded = (f"Physiological uptake at SUV >= {pc.tmtv.suv_threshold} set aside by {how}: {said or 'none'}.",
                *cited(wb))
    return Found(mask, found_organs, frozenset(), _info(wb, pc), excluded, _site_of(image.volume, body, found_organs.get("liver"), wb))


def cited(wb: WholeBodyRules) -> tuple[str, ...]:
    """The sections of rules/wholebody_fdg.yaml the lesions rest on, with their citations (and the
    site's overrides, which the citations name), for the report."""
    sections = {"lesion_finder": wb.lesion_finder.citation, "physiological": wb.physiological.citation,
                "liver_reference": wb.liver_reference.citation, "lesion_sites": wb.lesion_sites.citation}
    return tuple(f"Rules wholebody_fdg.yaml {name}: {c.text}" for name, c in sections.items())


def _site_of(grid: Volume, body: Anatomy, liver: BoolArray | None, wb: WholeBodyRules) -> Callable[[MeasuredLesion], str]:
    """Each lesion's coarse site from the CT (daemon.measure.body_sites), for PERCIST's per-organ limit."""
    s = wb.lesion_sites
    rules = body_sites.SiteRules(float(s.lung_hu_max), float(s.bone_hu_min), s.ring_voxels,
                                 float(s.min_ring_fraction), float(s.nodal_band_mm))
    found = body_sites.tissues(body.ct_hu, body.body, liver, rules)

    def site(lesion: MeasuredLesion) -> str:
        return body_sites.lesion_site(lesion.local_mask, lesion.box, grid, found, body.frame, rules)

    return site


def liver_sphere(volume: Volume, liver: BoolArray | None, diameter_mm: float) -> dict[str, str]:
    """PERCIST's liver reference on the SUL image: SULmean and SD in a sphere of `diameter_mm` at
    the deepest point of the liver's right half (the right lobe by rule); the liver mask leaves
    the lesions out, so the sphere keeps away from them."""
    if liver is None or not liver.any():
        return {"liver_reference": "no liver found: PERCIST measurability cannot be set"}
    where = np.argwhere(liver)
    xs = volume.index_to_patient(where.astype(np.float64))[:, 0]
    right = liver.copy()
    right[tuple(where[xs > float(np.median(xs))].T)] = False  # LPS: the patient's right is -x
    region = sphere_in_organ("liver", volume, right, diameter_mm, organ_name="liver (right half)")
    if region is None:
        return {"liver_reference": f"the liver holds no {diameter_mm:g} mm sphere away from lesions"}
    stats = reference_stats(volume, region, "sul").stats
    centre = region.centre or (0.0, 0.0, 0.0)
    return {"liver_sul_mean": f"{stats['sul_mean']:.6g}", "liver_sul_sd": f"{stats['sul_sd']:.6g}",
            "liver_centre": ",".join(f"{v:.1f}" for v in centre), "liver_diameter_mm": f"{diameter_mm:g}",
            "liver_reference": region.source}


def liver_reference(rules: RulesSource, image: StudyImage, organs: Organs,
                    lesions: Sequence[MeasuredLesion]) -> dict[str, str]:
    """The timepoint's PERCIST context (lesion_followup.TimepointContext): the liver reference
    and the uptake time."""
    pc = rules.load(PercistRules, "percist")
    diameter = float(pc.percist.liver_voi_diameter_cm) * 10.0
    return {"uptake_time_min": image.notes.get("uptake_time_min", ""),
            "lbm_formula": image.notes.get("lbm_formula", ""),
            **liver_sphere(image.volume, organs.get("liver"), diameter)}


def with_suv(lesion: MeasuredLesion, suv_per_sul: float) -> dict[str, float]:
    """SUVbw statistics beside the SUL ones (seed 002 reports SUVbw)."""
    i = lesion.measurements.intensity
    return {f"suv_{k[4:]}": v * suv_per_sul for k, v in i.items() if k.startswith("sul_") and k[4:] in
            ("max", "mean", "peak")}

