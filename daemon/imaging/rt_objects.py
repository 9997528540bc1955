"""Radiotherapy objects read from datasets: RT Structure Set, RT Plan, RT Dose (PS3.3 A.19, A.20, A.18).

What the irradiated-field step needs of them, as frozen dataclasses: a structure set's ROIs
(number, name, RT ROI Interpreted Type, frame of reference, closed planar contours in patient
LPS mm) and the series it was drawn on; a plan's date, the structure set it references and its
prescription (Target Prescription Dose of the Dose Reference Sequence, fractions planned of
the Fraction Group Sequence); a dose's referenced plan.

Nothing here guesses: what cannot be read (a contour of fewer than 3 points, an ROI without a
frame of reference, an RT Dose that names no plan) is left out and said in `warnings`, in
words fit for the report. Reading never raises on a malformed object: the whole object is then
left out with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RTDOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RTIONPLAN = "1.2.840.10008.5.1.4.1.1.481.8"
RT_CLASSES = (RTSTRUCT, RTPLAN, RTDOSE, RTIONPLAN)
RT_MODALITIES = ("RTSTRUCT", "RTPLAN", "RTDOSE")

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Contour:
    points: FloatArray  # (n, 3) patient LPS mm, n >= 3, a closed planar polygon


@dataclass(frozen=True)
class Roi:
    number: int
    name: str
    interpreted_type: str  # RT ROI Interpreted Type (PTV, GTV, CTV, ORGAN...), "" when not given
    frame_of_reference_uid: str
    contours: tuple[Contour, ...]


@dataclass(frozen=True)
class StructureSet:
    sop_instance_uid: str
    label: str
    study_instance_uid: str
    referenced_series_uid: str  # the images the contours were drawn on ("" when not said)
    rois: tuple[Roi, ...]


@dataclass(frozen=True)
class Prescription:
    dose_gy: float | None  # the highest Target Prescription Dose (whole course)
    fractions: int | None
    roi_doses: tuple[tuple[int, float], ...] = ()  # (ROI number, Gy) where a dose reference names its ROI


@dataclass(frozen=True)
class Plan:
    sop_instance_uid: str
    label: str
    when: date | None  # RT Plan Date, else the review (approval) date
    when_from: str  # which attribute gave `when` ("RTPlanDate", "ReviewDate", "")
    structure_set_uid: str  # Referenced Structure Set ("" when none)
    prescription: Prescription


@dataclass(frozen=True)
class Dose:
    sop_instance_uid: str
    plan_uid: str  # Referenced RT Plan ("" when none)


@dataclass(frozen=True)
class RtObjects:
    structure_sets: tuple[StructureSet, ...] = ()
    plans: tuple[Plan, ...] = ()
    doses: tuple[Dose, ...] = ()
    warnings: tuple[str, ...] = ()

    def plan_for(self, structure_set_uid: str) -> Plan | None:
        """The latest plan that references the structure set."""
        found = [p for p in self.plans if p.structure_set_uid == structure_set_uid]
        return max(found, key=lambda p: p.when or date.min) if found else None


def _date(text: Any) -> date | None:
    t = str(text or "").strip()
    if len(t) != 8 or not t.isdigit():
        return None
    try:
        return date(int(t[:4]), int(t[4:6]), int(t[6:]))
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None or str(value).strip() == "" else float(value)
    except (TypeError, ValueError):
        return None


def _uid_of(items: Iterable[Dataset], keyword: str) -> str:
    for item in items:
        return str(item.get(keyword, "") or "")
    return ""


def _contours(roi_contour: Dataset, name: str, warnings: list[str]) -> tuple[Contour, ...]:
    out = []
    skipped = 0
    for c in roi_contour.get("ContourSequence", []):
        kind = str(c.get("ContourGeometricType", "") or "")
        data = c.get("ContourData")
        values = [float(v) for v in data] if data is not None else []
        if kind not in ("CLOSED_PLANAR", "") or len(values) < 9 or len(values) % 3:
            skipped += 1
            continue
        out.append(Contour(np.asarray(values, dtype=np.float64).reshape(-1, 3)))
    if skipped:
        warnings.append(f"ROI '{name}': {skipped} contour(s) with fewer than 3 points or not closed planar "
                        "left out")
    return tuple(out)


def read_structure_set(ds: Dataset) -> tuple[StructureSet, list[str]]:
    """An RT Structure Set's ROIs with their contours; the warnings say what was left out."""
    warnings: list[str] = []
    uid = str(ds.get("SOPInstanceUID", ""))
    frames = ds.get("ReferencedFrameOfReferenceSequence", [])
    series = ""
    for fr in frames:
        for st in fr.get("RTReferencedStudySequence", []):
            series = series or _uid_of(st.get("RTReferencedSeriesSequence", []), "SeriesInstanceUID")
    default_for = _uid_of(frames, "FrameOfReferenceUID")
    contours = {int(rc.ReferencedROINumber): rc for rc in ds.get("ROIContourSequence", [])
                if "ReferencedROINumber" in rc}
    types = {int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "") or "")
             for o in ds.get("RTROIObservationsSequence", []) if "ReferencedROINumber" in o}
    rois = []
    for item in ds.get("StructureSetROISequence", []):
        number = int(item.ROINumber)
        name = str(item.get("ROIName", "") or f"ROI {number}")
        frame = str(item.get("ReferencedFrameOfReferenceUID", "") or default_for)
        if not frame:
            warnings.append(f"ROI '{name}' of structure set {uid} names no frame of reference: not used")
            continue
        found = _contours(contours[number], name, warnings) if number in contours else ()
        if not found:
            warnings.append(f"ROI '{name}' of structure set {uid} has no closed contour of 3 points or more: "
                            "not used")
            continue
        rois.append(Roi(number, name, types.get(number, ""), frame, found))
    label = str(ds.get("StructureSetLabel", "") or "")
    return StructureSet(uid, label, str(ds.get("StudyInstanceUID", "")), series, tuple(rois)), warnings


def _prescription(ds: Dataset) -> Prescription:
    doses = []
    roi_doses = []
    for ref in ds.get("DoseReferenceSequence", []):
        gy = _float(ref.get("TargetPrescriptionDose"))
        if gy is None:
            continue
        doses.append(gy)
        if "ReferencedROINumber" in ref:
            roi_doses.append((int(ref.ReferencedROINumber), gy))
    fractions = None
    for group in ds.get("FractionGroupSequence", []):
        n = group.get("NumberOfFractionsPlanned")
        if n is not None and str(n).strip():
            fractions = int(n)
            break
    return Prescription(max(doses) if doses else None, fractions, tuple(roi_doses))


def read_plan(ds: Dataset) -> Plan:
    when, source = _date(ds.get("RTPlanDate")), "RTPlanDate"
    if when is None and str(ds.get("ApprovalStatus", "")) == "APPROVED":
        when, source = _date(ds.get("ReviewDate")), "ReviewDate"
    if when is None:
        source = ""
    return Plan(str(ds.get("SOPInstanceUID", "")), str(ds.get("RTPlanLabel", "") or ""), when, source,
                _uid_of(ds.get("ReferencedStructureSetSequence", []), "ReferencedSOPInstanceUID"),
                _prescription(ds))


def read_dose(ds: Dataset) -> Dose:
    return Dose(str(ds.get("SOPInstanceUID", "")),
                _uid_of(ds.get("ReferencedRTPlanSequence", []), "ReferencedSOPInstanceUID"))


def read_rt_objects(datasets: Sequence[Dataset]) -> RtObjects:
    """The RT objects among `datasets` (others ignored); never raises on a malformed one."""
    sets: list[StructureSet] = []
    plans: list[Plan] = []
    doses: list[Dose] = []
    warnings: list[str] = []
    for ds in datasets:
        cls = str(ds.get("SOPClassUID", ""))
        uid = str(ds.get("SOPInstanceUID", "?"))
        try:
            if cls == RTSTRUCT:
                found, said = read_structure_set(ds)
                sets.append(found)
                warnings.extend(said)
            elif cls in (RTPLAN, RTIONPLAN):
                plans.append(read_plan(ds))
            elif cls == RTDOSE:
                doses.append(read_dose(ds))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            warnings.append(f"RT object {uid} not readable ({type(exc).__name__}: {exc}): not used")
    known = {p.sop_instance_uid for p in plans}
    for d in doses:
        if not d.plan_uid:
            warnings.append(f"RT Dose {d.sop_instance_uid} references no RT Plan: its dose is not used")
        elif d.plan_uid not in known:
            warnings.append(f"RT Dose {d.sop_instance_uid} references RT Plan {d.plan_uid}, which the PACS did "
                            "not return: its dose is not used")
    return RtObjects(tuple(sets), tuple(plans), tuple(doses), tuple(warnings))
