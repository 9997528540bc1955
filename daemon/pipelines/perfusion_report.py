"""What the perfusion route's report says: per lesion a group of its maps' values in the lesion
and the healthy liver and every ratio, under the CT perfusion assessment (category and flags),
with UCUM units; a study-level summary; the key images of the flow map with the regions and of
the input regions on the arterial frame. Pure: results in, report inputs out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from daemon.criteria.assessment import Assessment, Citation
from daemon.criteria.perfusion import CRITERION
from daemon.measure.perfusion_analysis import LesionPerfusion
from daemon.report.inputs import ExtraKeyImage, StudyMeasurement, StudyMeasurementGroup
from daemon.report.perfusion_images import Region, best_slice, inputs_key_image, map_key_image
from daemon.report.sc import orientation_letters

BoolArray = NDArray[np.bool_]
# max slope: per 100 ml of tissue, no density division (daemon.measure.perfusion)
MAX_SLOPE_UNITS = {"HAP": "ml/[100]ml/min", "HPP": "ml/[100]ml/min", "TLP": "ml/[100]ml/min", "HPI": "%", "TTP": "s"}
MEANINGS = {"HAP": "hepatic arterial perfusion", "HPP": "hepatic portal perfusion", "TLP": "total liver perfusion",
            "HPI": "hepatic perfusion index", "TTP": "time to peak", "BF": "blood flow", "BV": "blood volume",
            "HABF": "hepatic arterial blood flow", "HPBF": "hepatic portal blood flow",
            "HAF": "hepatic arterial fraction", "MTT": "total mean transit time", "PS": "permeability-surface product"}


@dataclass(frozen=True)
class Method:
    name: str  # max_slope | deconvolution | unknown
    units: Mapping[str, str]  # map -> UCUM
    classified_on: str  # TLP (max slope) | BF (vendor maps)
    basis: str  # how the values were made, with the citation and the software


def _round(v: float) -> float:
    return float(round(v, 4))


def lesion_group(r: LesionPerfusion, uid: str, method: Method) -> StudyMeasurementGroup:
    items: list[StudyMeasurement] = []
    for name, unit in method.units.items():
        meaning = MEANINGS.get(name, name)
        for suffix, where, value, u in (("lesion", "lesion", r.values.get(name), unit),
                                        ("liver", "healthy liver", r.healthy_values.get(name), unit),
                                        ("ratio", "lesion/liver ratio", r.ratios.get(name), "1")):
            if value is not None and np.isfinite(value):
                items.append(StudyMeasurement(f"{name}_{suffix}", f"{name} {where} ({meaning})"[:64], _round(value), u))
    basis = f"{method.basis} Classified on the {method.classified_on} ratio."
    if r.warnings:
        basis += " " + " ".join(r.warnings)
    # the lesion's own tracking identifier and UID: one lesion for every TID 1500 reader
    return StudyMeasurementGroup(r.lesion.name, tuple(items), basis, r.assessment, uid)


def summary(results: Sequence[LesionPerfusion], citation: Citation, notes: Sequence[str]) -> Assessment:
    """The study-level CT perfusion assessment: per lesion its category (the groups hold the numbers)."""
    lines = []
    for r in results:
        ratio = next((v for k, v in r.ratios.items() if k in ("BF", "TLP") and v is not None), None)
        flags = f" ({', '.join(r.assessment.flags)})" if r.assessment.flags else ""
        said = f"ratio {ratio:.2f}: " if ratio is not None and r.assessment.category != "not_evaluable" else ""
        lines.append(f"{r.lesion.name}: {said}{r.assessment.category}{flags}; {' '.join(r.assessment.reasons)}")
    return Assessment(CRITERION, citation, "per_lesion", evaluable=True, classified=False,
                      reasons=(*lines, *notes))


def not_computable(citation: Citation, reason: str) -> Assessment:
    return Assessment(CRITERION, citation, "not_computable", evaluable=False, reasons=(reason,),
                      details={"reason": reason})


def _slice_of(mask: BoolArray) -> int:
    return int(np.argmax(mask.sum(axis=(1, 2))))


def map_images(results: Sequence[LesionPerfusion], values: NDArray[np.floating], name: str, unit: str,
               references: Sequence[Dataset | None], footer: str,
               inputs: Mapping[str, BoolArray] | None = None) -> list[ExtraKeyImage]:
    """Per lesion, the slice of the map through its largest cross-section with its region (red),
    its healthy-liver region (green) and, where they cross the slice, the input regions."""
    out = []
    for r in results:
        k = _slice_of(r.lesion.mask)
        regions = [Region(r.lesion.name, r.roi[k], "#ff4040")]
        if r.healthy is not None:
            regions.append(Region("healthy liver", r.healthy[k], "#40ff40"))
        for label, m in (inputs or {}).items():
            regions.append(Region(label, m[k], "#ffffff"))
        ref = references[k] if k < len(references) else None
        sides = _sides(ref)
        title = f"{r.lesion.name} - {name} map - {r.assessment.category}"
        out.append(ExtraKeyImage(map_key_image(values[k], regions, title, unit, footer, sides),
                                 f"{r.lesion.name} {name} map", ref))
    return out


def inputs_image(frame: NDArray[np.floating], masks: Mapping[str, BoolArray], references: Sequence[Dataset | None],
                 footer: str, time_s: float) -> ExtraKeyImage:
    k = best_slice(list(masks.values()))
    ref = references[k] if k < len(references) else None
    title = f"Input regions on the arterial frame ({time_s:.0f} s)"
    return ExtraKeyImage(inputs_key_image(frame[k], {n: m[k] for n, m in masks.items()}, title, footer, _sides(ref)),
                         "perfusion input regions", ref)


def _sides(ref: Dataset | None) -> tuple[str, str, str, str]:
    if ref is None:
        return ("", "", "", "")
    row, col = orientation_letters(ref)
    opposite = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}
    return (opposite.get(row, ""), row, opposite.get(col, ""), col)
