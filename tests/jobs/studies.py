"""Synthetic studies for the routing and job tests (small images, known geometry)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid


def make_series(
    study_uid: str,
    *,
    modality: str = "CT",
    positions: Sequence[float] = tuple(float(z) for z in range(10)),
    description: str = "AXIAL",
    series_number: int = 1,
    size: int = 8,
    extra: dict[str, object] | None = None,
) -> list[Dataset]:
    series_uid = generate_uid()
    frame_of_reference = generate_uid(entropy_srcs=[study_uid, "for"])
    out = []
    for i, z in enumerate(positions):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        sop_class = CTImageStorage if modality == "CT" else MRImageStorage
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = sop_class
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.Modality = modality
        ds.PatientID = "SYNTH-1"
        ds.PatientName = "Synthetic^Phantom"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = "20260101"
        ds.StudyTime = "120000"
        ds.StudyID = "1"
        ds.AccessionNumber = "A1"
        ds.ReferringPhysicianName = ""
        ds.Manufacturer = "Synthetic"
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 1.0
        ds.Rows = size
        ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.PixelData = np.full((size, size), i, dtype=np.int16).tobytes()
        for k, v in (extra or {}).items():
            setattr(ds, k, v)
        out.append(ds)
    return out


def write_study(folder: Path, series: Sequence[Sequence[Dataset]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for group in series:
        for ds in group:
            p = folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(p, enforce_file_format=True)
            paths.append(p)
    return paths
