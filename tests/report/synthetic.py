"""A synthetic MR phantom patient (not patient data): a T1-like head with spherical lesions.

Two or more timepoints of the same patient: same Frame of Reference style geometry,
new study/series/instance UIDs per timepoint, lesion radii chosen by the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from daemon.findings import Calliper, Lesion, LesionKind, Measurements, Timepoint
from daemon.report.uids import lesion_uid
from daemon.volume import Code, LesionMask, SegmentLabel, SliceRef, Volume

ROWS = COLS = 96
SLICES = 12
SPACING = (2.0, 1.0, 1.0)  # k, j, i in mm
PATIENT_ID = "NADIR-PHANTOM-001"
ROUTE = "brain-mets-mri"


@dataclass(frozen=True)
class LesionSpec:
    centre: tuple[int, int, int]  # k, j, i
    radius_mm: float
    site: str = "left frontal"
    kind: LesionKind = LesionKind.TARGET


@dataclass(frozen=True, eq=False)
class Study:
    datasets: tuple[Dataset, ...]
    volume: Volume
    mask: LesionMask
    timepoint: Timepoint


def _affine(origin: tuple[float, float, float]) -> np.ndarray:
    a = np.eye(4)
    a[:3, 0] = (0.0, 0.0, SPACING[0])  # k -> z (feet to head)
    a[:3, 1] = (0.0, SPACING[1], 0.0)  # j -> y (anterior to posterior)
    a[:3, 2] = (SPACING[2], 0.0, 0.0)  # i -> x (right to left)
    a[:3, 3] = origin
    return a


def _pixels(specs: tuple[LesionSpec, ...]) -> tuple[np.ndarray, np.ndarray]:
    k, j, i = np.meshgrid(*(np.arange(n) for n in (SLICES, ROWS, COLS)), indexing="ij")
    zz, yy, xx = k * SPACING[0], j * SPACING[1], i * SPACING[2]
    cz, cy, cx = SLICES * SPACING[0] / 2, ROWS / 2, COLS / 2
    head = ((xx - cx) / 40) ** 2 + ((yy - cy) / 45) ** 2 + ((zz - cz) / 30) ** 2 <= 1.0
    img = np.where(head, 400, 20).astype(np.float64)
    img += np.where(((xx - cx) / 30) ** 2 + ((yy - cy) / 35) ** 2 <= 1.0, 200, 0) * head
    labels = np.zeros((SLICES, ROWS, COLS), dtype=np.uint8)
    for n, s in enumerate(specs, start=1):
        lz, ly, lx = (c * sp for c, sp in zip(s.centre, SPACING, strict=True))
        ball = (zz - lz) ** 2 + (yy - ly) ** 2 + (xx - lx) ** 2 <= s.radius_mm**2
        labels[ball] = n
        img[ball] = 1100
    rng = np.random.default_rng(7)
    img += rng.normal(0, 15, img.shape)
    return np.clip(img, 0, 4000).astype(np.uint16), labels


def _ct(ds: Dataset) -> None:
    """Turn the MR header into a portal-venous CT's (pixel value - 1024 = HU)."""
    for keyword in ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTime",
                    "RepetitionTime", "EchoTrainLength"):
        delattr(ds, keyword)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDescription = "CT abdomen portal venous follow-up (synthetic phantom)"
    ds.SeriesDescription = "Abdomen portal venous 2.0 mm (synthetic)"
    ds.BodyPartExamined = "ABDOMEN"
    ds.ContrastBolusAgent = "Iodinated contrast"
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"


def _dataset(study_uid: str, series_uid: str, for_uid: str, k: int, when: date, affine: np.ndarray, px: np.ndarray,
             modality: str = "MR") -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Phantom^Nadir"
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.AccessionNumber = "ACC" + when.strftime("%Y%m%d")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.StudyDescription = "MRI brain follow-up (synthetic phantom)"
    ds.Modality = "MR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 5
    ds.SeriesDescription = "T1 3D post-Gd (synthetic)"
    ds.Manufacturer = "Nadir phantom"
    ds.InstanceNumber = k + 1
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "3D"
    ds.EchoTime = 3.0
    ds.RepetitionTime = 8.0
    ds.EchoTrainLength = 1
    ds.ImagePositionPatient = [float(v) for v in affine[:3, :3] @ np.array([k, 0, 0]) + affine[:3, 3]]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [SPACING[1], SPACING[2]]
    ds.SliceThickness = SPACING[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = px.tobytes()
    if modality == "CT":
        _ct(ds)
    return ds


def _calliper(vol: Volume, k: int, a: tuple[float, float], b: tuple[float, float]) -> Calliper:
    pa = vol.index_to_patient((k, a[0], a[1]))
    pb = vol.index_to_patient((k, b[0], b[1]))
    return Calliper(
        length_mm=float(np.linalg.norm(pb - pa)),
        start=(float(pa[0]), float(pa[1]), float(pa[2])),
        end=(float(pb[0]), float(pb[1]), float(pb[2])),
        start_image=vol.index_to_image((k, a[0], a[1])),
        end_image=vol.index_to_image((k, b[0], b[1])),
    )


def make_study(
    specs: tuple[LesionSpec, ...], when: date, first_study_uid: str | None = None, modality: str = "MR"
) -> Study:
    """A study of the phantom patient; lesion n gets the tracking UID of its first study.
    modality "CT": the same phantom as a contrast-enhanced abdominal CT's headers."""
    study_uid, series_uid, for_uid = generate_uid(), generate_uid(), generate_uid()
    affine = _affine((-48.0, -48.0, -12.0))
    px, labels = _pixels(specs)
    datasets = tuple(_dataset(study_uid, series_uid, for_uid, k, when, affine, px[k], modality) for k in range(SLICES))
    vol = Volume(
        array=px, affine=affine,
        slices=tuple(SliceRef(str(d.SOPInstanceUID), str(d.SOPClassUID)) for d in datasets),
        frame_of_reference_uid=for_uid, study_instance_uid=study_uid, series_instance_uid=series_uid, modality=modality,
    )
    info = tuple(
        SegmentLabel(n, f"lesion {n}", Code("49755003", "SCT", "Morphologically Abnormal Structure"), Code("108369006", "SCT", "Neoplasm"))
        for n in range(1, len(specs) + 1)
    )
    mask = LesionMask(volume=vol, labels=labels, label_info=info)
    lesions = []
    for n, s in enumerate(specs, start=1):
        k, j, i = s.centre
        r = s.radius_mm / SPACING[2]
        la = _calliper(vol, k, (j, i - r), (j, i + r))
        sa = _calliper(vol, k, (j - r * 0.8, i), (j + r * 0.8, i))
        volume_ml = float((labels == n).sum()) * vol.voxel_volume_mm3 / 1000.0
        lesions.append(Lesion(
            tracking_id=f"T{n}",
            tracking_uid=lesion_uid(PATIENT_ID, first_study_uid or study_uid, ROUTE, n),
            kind=s.kind,
            measurements=Measurements(long_axis=la, short_axis=sa, volume_ml=volume_ml,
                                      intensity={"mean_t1": 1100.0}, ratios={"lesion_to_wm": 2.75}),
            segment_number=n,
            site=s.site,
        ))
    tp = Timepoint(study_instance_uid=study_uid, study_date=when, lesions=tuple(lesions))
    return Study(datasets, vol, mask, tp)
