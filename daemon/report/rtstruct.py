"""The RT Structure Set (PS3.3 A.19): the tracked lesions' contours for a treatment-planning system.

One ROI per tracked lesion, named by its tracking identifier (L1, L2...), numbered and
coloured as its segment in the SEG; on every slice where the lesion has voxels, one
CLOSED_PLANAR contour per boundary of the mask (marching squares at 0.5 between voxel
centres, daemon.measure.geometry.slice_contours) in patient coordinates (LPS, mm), each
naming its source image; the source series referenced through the Referenced Frame of
Reference, RT Referenced Study and Series and Contour Image sequences. A hole in a
lesion's slice is one more contour inside the outer one: TPSs and readers (dicompyler,
rt-utils) take nested contours on a plane as holes (even-odd).

How it is written. highdicom (0.28, the version pinned) has no RT Structure Set class
(its object families are SR, SEG, SC, KO, PM, PR, ANN: checked in its package); rt-utils
writes one but from a folder of files it reads itself, with random UIDs, its own
contour tracing (OpenCV) and no algorithm identification or interpreted type, and it
pulls OpenCV into the node. So the general modules (patient, study, series, equipment,
SOP common) come from highdicom's `SOPClass` base as for our other objects, and the
three RT modules (Structure Set, ROI Contour, RT ROI Observations) are written here with
pydicom, attribute by attribute as PS3.3 C.8.8.5, C.8.8.6 and C.8.8.8 list them;
dciodvfy checks them in the tests, and rt-utils and dicompyler-core read them back
there (as a TPS would), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import highdicom as hd
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage

from daemon.findings import Lesion
from daemon.measure.geometry import slice_contours
from daemon.report.identity import ObjectIdentity
from daemon.report.inputs import ModelInfo
from daemon.report.seg import PALETTE_RGB, ordered_sources
from daemon.volume import LesionMask

log = logging.getLogger(__name__)

# RT Referenced Study Sequence: the Referenced SOP Class UID of a study reference, as
# PS3.3 C.8.8.5 and every TPS use it (Detached Study Management, retired)
STUDY_REFERENCE_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
# RT ROI Interpreted Type (PS3.3 C.8.8.8.1): "GTV", Gross Tumor Volume, the gross extent
# of the tumour as imaging shows it, which is what the segmentation of an enhancing
# lesion is; not "CTV"/"PTV" (margins a planner adds), "AVOIDANCE" or "ORGAN" (not
# tumour), "CONTROL" (an ROI for dose optimisation). That a program drew it is said by
# ROI Generation Algorithm AUTOMATIC, an empty ROI Interpreter and Approval UNAPPROVED.
INTERPRETED_TYPE = "GTV"
GEOMETRY = "CLOSED_PLANAR"


@dataclass(frozen=True)
class Roi:
    number: int  # as the lesion's segment number in the SEG (the same colour)
    lesion: Lesion
    contours: tuple[tuple[int, NDArray[np.float64]], ...]  # (slice k, (N, 3) patient mm)
    volume_cm3: float


def _ds(value: float) -> str:
    return f"{value:.3f}"


def lesion_rois(mask: LesionMask, lesions: Sequence[Lesion]) -> list[Roi]:
    """The ROIs of the lesions whose label has voxels, numbered in order from 1 (as the SEG's segments)."""
    rois: list[Roi] = []
    vol = mask.volume
    for lesion in lesions:
        if lesion.segment_number is None:
            continue
        binary = np.asarray(mask.labels == lesion.segment_number)
        if not binary.any():
            log.warning("lesion %s has an empty mask; left out of the RTSTRUCT", lesion.tracking_id)
            continue
        contours: list[tuple[int, NDArray[np.float64]]] = []
        for k in np.flatnonzero(binary.any(axis=(1, 2))):
            for ji in slice_contours(binary[k]):
                if len(ji) > 1 and np.allclose(ji[0], ji[-1]):
                    ji = ji[:-1]  # CLOSED_PLANAR: the last point joins the first implicitly
                if len(ji) < 3:
                    continue
                kji = np.column_stack([np.full(len(ji), float(k)), ji])
                contours.append((int(k), vol.index_to_patient(kji)))
        volume_cm3 = float(binary.sum()) * vol.voxel_volume_mm3 / 1000.0
        rois.append(Roi(len(rois) + 1, lesion, tuple(contours), volume_cm3))
    return rois


def _image_ref(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def _referenced_frame(images: Sequence[Dataset]) -> Dataset:
    """Frame of Reference -> RT Referenced Study -> RT Referenced Series -> every image of the series."""
    first = images[0]
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = DicomSequence([_image_ref(ds) for ds in images])
    study = Dataset()
    study.ReferencedSOPClassUID = STUDY_REFERENCE_SOP_CLASS
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = DicomSequence([study])
    return frame


def _algorithm(model: ModelInfo | None, software_version: str) -> tuple[hd.AlgorithmIdentificationSequence, str]:
    """The Algorithm Identification of the ROIs and their ROI Generation Description."""
    if model is None:
        return (hd.AlgorithmIdentificationSequence(
            name="Nadir", family=codes.DCM.ArtificialIntelligence, version=software_version),
            f"Nadir {software_version}"[:64])
    return (hd.AlgorithmIdentificationSequence(
        name=model.name[:64], family=codes.DCM.ArtificialIntelligence, version=model.version[:64],
        parameters={"sha256": model.sha256}),
        f"{model.name} {model.version} (Nadir {software_version})"[:64])


def _structure_set_roi(roi: Roi, frame_uid: str, algorithm: hd.AlgorithmIdentificationSequence,
                       description: str) -> Dataset:
    item = Dataset()
    item.ROINumber = roi.number
    item.ReferencedFrameOfReferenceUID = frame_uid
    item.ROIName = roi.lesion.tracking_id[:64]
    item.ROIDescription = f"Lesion {roi.lesion.tracking_id} ({roi.lesion.kind.value}), tracking UID {roi.lesion.tracking_uid}"
    item.ROIVolume = _ds(roi.volume_cm3)
    item.ROIGenerationAlgorithm = "AUTOMATIC"
    item.ROIGenerationDescription = description
    item.ROIDerivationAlgorithmIdentificationSequence = algorithm
    return item


def _roi_contour(roi: Roi, images: Sequence[Dataset]) -> Dataset:
    contours = []
    for n, (k, xyz) in enumerate(roi.contours, start=1):
        c = Dataset()
        c.ContourNumber = n
        c.ContourImageSequence = DicomSequence([_image_ref(images[k])])
        c.ContourGeometricType = GEOMETRY
        c.NumberOfContourPoints = len(xyz)
        c.ContourData = [_ds(v) for v in xyz.reshape(-1)]
        contours.append(c)
    item = Dataset()
    item.ROIDisplayColor = list(PALETTE_RGB[(roi.number - 1) % len(PALETTE_RGB)])
    item.ContourSequence = DicomSequence(contours)
    item.ReferencedROINumber = roi.number
    return item


def _observation(roi: Roi) -> Dataset:
    item = Dataset()
    item.ObservationNumber = roi.number
    item.ReferencedROINumber = roi.number
    item.ROIObservationLabel = roi.lesion.tracking_id[:16]
    item.RTROIInterpretedType = INTERPRETED_TYPE
    item.ROIInterpreter = ""  # no person: drawn by the algorithm, for a person to review
    return item


class RtStructureSet(hd.base.SOPClass):
    """An RT Structure Set of tracked lesions on one source series."""

    def __init__(self, rois: Sequence[Roi], images: Sequence[Dataset], ident: ObjectIdentity,
                 model: ModelInfo | None, label: str = "NADIR") -> None:
        first = images[0]
        super().__init__(
            study_instance_uid=str(first.StudyInstanceUID),
            series_instance_uid=ident.series_instance_uid,
            series_number=ident.series_number,
            sop_instance_uid=ident.sop_instance_uid,
            sop_class_uid=RTStructureSetStorage,
            instance_number=ident.instance_number,
            modality="RTSTRUCT",
            manufacturer=ident.manufacturer,
            transfer_syntax_uid=ExplicitVRLittleEndian,
            series_description=ident.series_description,
            manufacturer_model_name="Nadir",
            software_versions=ident.software_version,
            device_serial_number=ident.device_serial_number,
            institution_name=ident.institution_name,
        )
        self.copy_patient_and_study_information(first)
        self.OperatorsName = ""  # RT Series: type 2
        # Frame of Reference module: the source series' frame (the contours are in it)
        self.FrameOfReferenceUID = first.FrameOfReferenceUID
        self.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
        self.StructureSetLabel = label[:16]
        self.StructureSetName = "Nadir lesions"
        self.StructureSetDescription = "Automatic lesion contours: review before planning"
        now = datetime.now()  # like the other objects' Content Date (volatile: daemon.report.reissue)
        self.StructureSetDate = now.strftime("%Y%m%d")
        self.StructureSetTime = now.strftime("%H%M%S")
        self.ReferencedFrameOfReferenceSequence = DicomSequence([_referenced_frame(images)])
        frame_uid = str(first.FrameOfReferenceUID)
        algorithm, description = _algorithm(model, ident.software_version)
        self.StructureSetROISequence = DicomSequence(
            [_structure_set_roi(r, frame_uid, algorithm, description) for r in rois])
        self.ROIContourSequence = DicomSequence([_roi_contour(r, images) for r in rois])
        self.RTROIObservationsSequence = DicomSequence([_observation(r) for r in rois])
        self.ApprovalStatus = "UNAPPROVED"


def build_rtstruct(mask: LesionMask, lesions: Sequence[Lesion], sources: Sequence[Dataset],
                   ident: ObjectIdentity, model: ModelInfo | None) -> RtStructureSet | None:
    """The RT Structure Set of the lesions that have voxels; None if none has."""
    images = ordered_sources(mask, sources)
    rois = lesion_rois(mask, lesions)
    if not rois:
        return None
    return RtStructureSet(rois, images, ident, model)
