"""Write SYNTHETIC case folders for `nadir evaluate-model`: a DICOM series (daemon.demo.dicom),
the reader's reference as a SEG (highdicom) or an RTSTRUCT (a minimal one, built with pydicom
for the test: one ROI per lesion, a square contour per slice around the lesion's pixels)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from daemon.demo.dicom import SeriesInfo, StudyInfo, demo_uid, series_datasets, write_datasets

RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


def write_series(folder: Path, image: np.ndarray, affine: np.ndarray, name: str,  # type: ignore[type-arg]
                 when: datetime = datetime(2025, 1, 10, 9, 0), frame: str = "") -> list[Dataset]:
    study = StudyInfo(demo_uid("eval", name, "study"), when, patient_id=f"EVAL-{name}")
    series = SeriesInfo(demo_uid("eval", name, "series"), "MR", 3, "T1 post-Gd 3D", frame or demo_uid("eval", name, "for"),
                        when, contrast_agent="gadolinium", extra={"MRAcquisitionType": "3D"})
    paths = write_datasets(series_datasets(image.astype(np.float32), affine, study, series, seed=name), folder / "image")
    return [pydicom.dcmread(p) for p in paths]


def write_seg(path: Path, sources: list[Dataset], labels: np.ndarray) -> None:  # type: ignore[type-arg]
    """One segment per label value present (a reader's lesions), on `sources`."""
    category = hd.sr.CodedConcept("49755003", "SCT", "Morphologically Altered Structure")
    prop = hd.sr.CodedConcept("14799000", "SCT", "Neoplasm, Metastatic")
    values = [int(v) for v in np.unique(labels) if v]
    descriptions = [hd.seg.SegmentDescription(n, f"lesion {v}", category, prop, hd.seg.SegmentAlgorithmTypeValues.MANUAL)
                    for n, v in enumerate(values, start=1)]
    stacked = np.zeros(labels.shape, dtype=np.uint8)
    for n, v in enumerate(values, start=1):
        stacked[labels == v] = n
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=stacked, segmentation_type="BINARY", segment_descriptions=descriptions,
        series_instance_uid=str(generate_uid()), series_number=300, sop_instance_uid=str(generate_uid()),
        instance_number=1, manufacturer="reader", manufacturer_model_name="manual", software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(path)


def write_rtstruct(path: Path, sources: list[Dataset], labels: np.ndarray, affine: np.ndarray) -> None:  # type: ignore[type-arg]
    """One ROI per label value; per slice, a contour along the outer pixel edges of each
    connected piece's bounding square (the test's lesions are boxes, so this is exact)."""
    first = sources[0]
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT, meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    for key in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        setattr(ds, key, getattr(first, key))
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "reader"
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    study = Dataset()
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    rois, contours = [], []
    for v in [int(x) for x in np.unique(labels) if x]:
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = v, f"lesion {v}", first.FrameOfReferenceUID
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber = v
        item.ContourSequence = []
        for k in range(labels.shape[0]):
            pieces, _ = ndimage.label(labels[k] == v)
            for box in ndimage.find_objects(pieces):
                j0, j1, i0, i1 = box[0].start, box[0].stop - 1, box[1].start, box[1].stop - 1
                kji = np.asarray([(k, j0 - 0.5, i0 - 0.5), (k, j0 - 0.5, i1 + 0.5), (k, j1 + 0.5, i1 + 0.5),
                                  (k, j1 + 0.5, i0 - 0.5)])
                pts = kji @ affine[:3, :3].T + affine[:3, 3]
                c = Dataset()
                c.ContourGeometricType = "CLOSED_PLANAR"
                c.NumberOfContourPoints = 4
                c.ContourData = [f"{p:.4f}" for p in pts.ravel()]
                item.ContourSequence.append(c)
        contours.append(item)
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = contours
    ds.save_as(path, enforce_file_format=True)
