"""SYNTHETIC radiotherapy objects for the irradiated-field tests, written by hand with pydicom:
an RT Structure Set of spheres (one circle contour per plane), an RT Plan with a prescription,
an RT Dose (with or without its plan). Not Nadir's RTSTRUCT writer (daemon/report/rtstruct.py):
a planning system's objects, as the PACS would hold them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from daemon.imaging.rt_objects import RTDOSE, RTPLAN, RTSTRUCT


@dataclass(frozen=True)
class Sphere:
    name: str
    centre: tuple[float, float, float]  # patient LPS mm
    radius_mm: float
    interpreted_type: str = "PTV"


@dataclass(frozen=True)
class Patient:
    patient_id: str
    study_uid: str  # the planning study
    series_for: str  # Frame of Reference UID of the images the structures were drawn on
    series_uid: str  # those images' series


def _base(cls: str, modality: str, p: Patient, when: date) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = cls
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = cls
    ds.Modality = modality
    ds.PatientID = p.patient_id
    ds.PatientName = "SYNTHETIC^RT"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = p.study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = when.strftime("%Y%m%d")
    ds.StudyTime = "080000"
    ds.StudyID = "RT"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "SYNTHETIC TPS"
    ds.FrameOfReferenceUID = p.series_for
    return ds


def _circle(centre: tuple[float, float, float], r: float, z: float, n: int = 32) -> list[float]:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    pts = np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t), np.full(n, z)], axis=1)
    return [round(float(v), 3) for v in pts.ravel()]


def structure_set(p: Patient, spheres: Sequence[Sphere], when: date, plane_mm: float = 2.0,
                  extra_contours: Sequence[tuple[str, list[float]]] = ()) -> Dataset:
    """Spheres as closed planar axial contours every `plane_mm`; `extra_contours` (ROI name, data)
    add ROIs of one contour each (e.g. a single point)."""
    ds = _base(RTSTRUCT, "RTSTRUCT", p, when)
    ds.StructureSetLabel = "SRS"
    ds.StructureSetDate = ds.StudyDate
    ds.StructureSetTime = "080000"
    series = Dataset()
    series.SeriesInstanceUID = p.series_uid
    series.ContourImageSequence = []
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = p.study_uid
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = p.series_for
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    rois, contours, observations = [], [], []
    shapes: list[tuple[str, str, list[list[float]]]] = []
    for s in spheres:
        zs = np.arange(-s.radius_mm, s.radius_mm + 1e-6, plane_mm)
        planes = [_circle(s.centre, float(np.sqrt(max(s.radius_mm**2 - dz**2, 0.0))), s.centre[2] + float(dz))
                  for dz in zs if s.radius_mm**2 - dz**2 > 1.0]
        shapes.append((s.name, s.interpreted_type, planes))
    shapes.extend((name, "PTV", [data]) for name, data in extra_contours)
    for n, (name, kind, planes) in enumerate(shapes, start=1):
        roi = Dataset()
        roi.ROINumber = n
        roi.ReferencedFrameOfReferenceUID = p.series_for
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = n
        rc.ROIDisplayColor = [255, 0, 0]
        items = []
        for data in planes:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR" if len(data) >= 9 else "POINT"
            c.NumberOfContourPoints = len(data) // 3
            c.ContourData = data
            items.append(c)
        rc.ContourSequence = items
        contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber = n
        obs.ReferencedROINumber = n
        obs.RTROIInterpretedType = kind
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = contours
    ds.RTROIObservationsSequence = observations
    return ds


def plan(p: Patient, structures: Dataset, when: date, dose_gy: float, fractions: int,
         roi_number: int | None = None) -> Dataset:
    ds = _base(RTPLAN, "RTPLAN", p, when)
    ds.RTPlanLabel = "SRS 1"
    ds.RTPlanDate = when.strftime("%Y%m%d")
    ds.RTPlanTime = "090000"
    ds.RTPlanGeometry = "PATIENT"
    ds.ApprovalStatus = "APPROVED"
    ref = Dataset()
    ref.ReferencedSOPClassUID = RTSTRUCT
    ref.ReferencedSOPInstanceUID = structures.SOPInstanceUID
    ds.ReferencedStructureSetSequence = [ref]
    dose = Dataset()
    dose.DoseReferenceNumber = 1
    dose.DoseReferenceStructureType = "VOLUME" if roi_number is not None else "SITE"
    dose.DoseReferenceType = "TARGET"
    dose.TargetPrescriptionDose = dose_gy
    if roi_number is not None:
        dose.ReferencedROINumber = roi_number
    ds.DoseReferenceSequence = [dose]
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = fractions
    group.NumberOfBeams = 0
    group.NumberOfBrachyApplicationSetups = 0
    ds.FractionGroupSequence = [group]
    return ds


def dose(p: Patient, when: date, plan_uid: str = "") -> Dataset:
    ds = _base(RTDOSE, "RTDOSE", p, when)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    if plan_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RTPLAN
        ref.ReferencedSOPInstanceUID = plan_uid
        ds.ReferencedRTPlanSequence = [ref]
    return ds
