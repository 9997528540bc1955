"""The brain PET route's own key images (ReportRequest.extra_images), after the lesions':

- per reference region (striatum, normal brain, white matter, grey matter) the PET slice through the
  region's centre with its outline, its name and SUVmean, and the lesions crossing that slice;
- for a dynamic FET, per lesion the time-activity curves of the lesion and the normal brain with the
  time to peak and the summed window (daemon.report.tac_plot).
Pure: the study's facts in, RGB images out.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from daemon.findings import Timepoint
from daemon.measure import pet_tac
from daemon.measure.brain_pet_rules import RULES_NAME, BrainPetRules
from daemon.pipelines.lesion_followup import StudyFacts
from daemon.report.inputs import ExtraKeyImage
from daemon.report.perfusion_images import Region, regions_key_image
from daemon.report.sc import orientation_letters
from daemon.report.tac_plot import TacCurve, tac_plot

REGION_COLOUR = "#40ff80"
LESION_COLOUR = "#ff4040"
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def _sides(ref: Dataset | None) -> tuple[str, str, str, str]:
    if ref is None or "ImageOrientationPatient" not in ref:
        return ("", "", "", "")
    row, col = orientation_letters(ref)
    return (_OPPOSITE.get(row, ""), row, _OPPOSITE.get(col, ""), col)


def region_images(facts: StudyFacts, current: Timepoint, footer: str, names: dict[str, str]) -> list[ExtraKeyImage]:
    """Per reference region (`names`: region -> label) its centre slice with outline, name and SUVmean."""
    image, organs = facts.image, facts.organs or {}
    if image is None:
        return []
    suv = np.asarray(image.volume.array, dtype=np.float64)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in facts.headers}
    labels = facts.mask.labels if facts.mask is not None else None
    out = []
    for name, label in names.items():
        m = organs.get(name)
        if m is None or not m.any():
            continue
        k = int(round(float(np.nonzero(m)[0].mean())))
        if not m[k].any():  # a centre outside the region (a crescent): its largest slice
            k = int(np.argmax(m.sum(axis=(1, 2))))
        mean = float(suv[m].mean())
        regions = [Region(f"{label}: SUVmean {mean:.2f}", m[k], REGION_COLOUR)]
        if labels is not None:
            regions += [Region(les.tracking_id, labels[k] == les.segment_number, LESION_COLOUR)
                        for les in current.lesions if les.segment_number is not None]
        ref = by_uid.get(image.volume.slices[k].sop_instance_uid)
        title = f"{label} - SUVmean {mean:.2f} g/ml - slice {k + 1}/{suv.shape[0]}"
        out.append(ExtraKeyImage(regions_key_image(suv[k], regions, title, footer, _sides(ref)),
                                 f"reference region {label}", ref))
    return out


def tac_images(facts: StudyFacts, current: Timepoint, footer: str) -> list[ExtraKeyImage]:
    """Dynamic PET: per lesion its curve and the normal brain's, time to peak, the summed window."""
    image, organs = facts.image, facts.organs or {}
    if image is None or image.notes.get("acquisition") != "dynamic" or facts.mask is None:
        return []
    br = facts.rules.load(BrainPetRules, RULES_NAME)
    spans = pet_tac.parse_spans(image.notes["frame_minutes"])
    frames = [np.asarray(image.companions[f"frame_{n}"].array) for n in range(len(spans))]
    normal = organs.get("normal_brain")
    ref = pet_tac.curve(frames, spans, normal) if normal is not None and normal.any() else None
    window = (float(br.dynamic.sum_window_min[0]), float(br.dynamic.sum_window_min[1]))
    out = []
    for les in current.lesions:
        m = np.asarray(facts.mask.labels == les.segment_number)
        if les.segment_number is None or not m.any():
            continue
        c = pet_tac.curve(frames, spans, m)
        curves = [TacCurve(les.tracking_id, c.mid_min, c.values)]
        if ref is not None:
            curves.append(TacCurve("Normal brain", ref.mid_min, ref.values))
        title = f"{les.tracking_id} - {image.notes.get('tracer', '')} time-activity curves"
        out.append(ExtraKeyImage(tac_plot(curves, c.time_to_peak_min, window, title, footer),
                                 f"{les.tracking_id} time-activity curve"))
    return out
