"""Shared by the perfusion route's tests: a small SYNTHETIC dynamic study written as DICOM, SR readers."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from daemon.demo.perfusion_phantom import (
    DENSE_TIMES_S,
    PerfusionPhantom,
    Protocol,
    perfusion_phantom,
)
from daemon.demo.phantom import Grid

# small enough for a test (about 15 s through the pipeline), the lesions still >= 15 mm
SMALL = Grid((24, 80, 80), (2.5, 5.0, 5.0), centre=(-20.0, 0.0, 62.0))
TINY = Grid((12, 48, 48), (2.5, 8.0, 8.0), centre=(-20.0, 0.0, 62.0))


def small_phantom(**kw: object) -> PerfusionPhantom:
    return perfusion_phantom(Protocol(grid=SMALL, times_s=DENSE_TIMES_S, **kw))  # type: ignore[arg-type]


def groups(sr: Dataset) -> list[Dataset]:
    """The TID 1500 measurement groups of an SR."""
    measurements = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010")
    return list(measurements.ContentSequence)


def tracking_id(group: Dataset) -> str:
    return next(str(i.TextValue) for i in group.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "112039")


def codes_of(group: Dataset) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in group.ContentSequence:
        if i.ValueType == "CODE":
            out.setdefault(str(i.ConceptNameCodeSequence[0].CodeMeaning), []).append(str(i.ConceptCodeSequence[0].CodeValue))
    return out


def nums(group: Dataset) -> dict[str, tuple[float, str]]:
    return {str(i.ConceptNameCodeSequence[0].CodeMeaning): (float(i.MeasuredValueSequence[0].NumericValue),
                                                            str(i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue))
            for i in group.ContentSequence if i.ValueType == "NUM"}


def texts(sr: Dataset) -> str:
    out: list[str] = []

    def walk(items: object) -> None:
        for i in items:  # type: ignore[attr-defined]
            if i.ValueType == "TEXT":
                out.append(str(i.TextValue))
            if "ContentSequence" in i:
                walk(i.ContentSequence)

    walk(sr.ContentSequence)
    return "\n".join(out)


def write_seg(ph: PerfusionPhantom, series_dir: Path, out: Path, with_liver: bool = True) -> Path:
    """A highdicom SEG over frame 1 of the written series: P1, P2, and the liver (organ) segment."""
    files = sorted(series_dir.glob("f00_*"))
    sources = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]))
    z = [float(d.ImagePositionPatient[2]) for d in sources]
    order = np.argsort(z)
    ref_z = ph.affine[2, 3] + ph.affine[2, 0] * np.arange(ph.frames.shape[1])
    index = [int(np.argmin(np.abs(ref_z - z[i]))) for i in order]
    lesion = hd.sr.CodedConcept("49755003", "SCT", "Morphologically Altered Structure")
    descs = [hd.seg.SegmentDescription(n, name, lesion, codes.SCT.Neoplasm, hd.seg.SegmentAlgorithmTypeValues.MANUAL)
             for n, name in ((1, "P1"), (2, "P2"))]
    masks = [ph.truth.regions["P1"], ph.truth.regions["P2"]]
    if with_liver:
        descs.append(hd.seg.SegmentDescription(3, "Liver", codes.SCT.AnatomicalStructure, codes.SCT.Liver,
                                               hd.seg.SegmentAlgorithmTypeValues.MANUAL))
        masks.append(ph.truth.regions["liver"])
    pixels = np.stack([np.stack([m[k] for k in index]) for m in masks], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=[sources[i] for i in order], pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descs,
        series_instance_uid=hd.UID(), series_number=90, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="test", manufacturer_model_name="test", software_versions="1", device_serial_number="1")
    seg.save_as(out)
    return out
