"""`nadir measure SERIES_DIR --seg SEG_FILE --json` on a synthetic CT series written with
pydicom and a SEG written with highdicom over it (two segments with known truth)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from daemon.cli import main
from daemon.measure.phantoms import axial_truth, in_plane_ellipsoid, make_volume, voxel_centres

ROOT = "1.2.826.0.1.3680043.10.1341.77"
SPACING = (2.5, 0.8, 0.8)
SHAPE = (16, 56, 56)
ELLIPSE = in_plane_ellipsoid((20.3, 21.1, 20.0), 9.0, 6.0, 7.0, 30.0)
SPHERE = in_plane_ellipsoid((33.0, 35.0, 20.0), 6.0, 6.0, 6.0, 0.0)


def _ct_slice(k: int, pixels: np.ndarray) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
    meta.MediaStorageSOPInstanceUID = f"{ROOT}.2.{k + 1}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = pydicom.uid.CTImageStorage
    ds.SOPInstanceUID = f"{ROOT}.2.{k + 1}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{ROOT}.3", f"{ROOT}.4"
    ds.FrameOfReferenceUID = f"{ROOT}.1"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Measure", "PH-M", "", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, k + 1
    ds.Manufacturer = "synthetic"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [0.0, 0.0, k * SPACING[0]]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [SPACING[1], SPACING[2]]
    ds.SliceThickness = SPACING[0]
    ds.Rows, ds.Columns = SHAPE[1], SHAPE[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
    ds.PixelData = (pixels + 1024).astype(np.int16).tobytes()
    return ds


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("measure_cmd")
    grid = make_volume(SHAPE, SPACING)
    pts = voxel_centres(grid)
    ellipse, sphere = ELLIPSE.inside(pts), SPHERE.inside(pts)
    hu = np.zeros(SHAPE, dtype=np.int16)
    hu[ellipse], hu[sphere] = 60, 100
    series = folder / "series"
    series.mkdir()
    slices = []
    for k in range(SHAPE[0]):
        ds = _ct_slice(k, hu[k])
        ds.save_as(series / f"ct{k:03d}.dcm", enforce_file_format=True)
        slices.append(pydicom.dcmread(series / f"ct{k:03d}.dcm"))
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[ellipse], labels[sphere] = 1, 2
    category = hd.sr.CodedConcept("49755003", "SCT", "Morphologically Altered Structure")
    prop = hd.sr.CodedConcept("108369006", "SCT", "Neoplasm")
    descriptions = [
        hd.seg.SegmentDescription(n, name, category, prop, hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name in ((1, "liver lesion"), (2, "node"))
    ]
    seg = hd.seg.Segmentation(
        source_images=slices, pixel_array=labels, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=f"{ROOT}.5", series_number=300,
        sop_instance_uid=f"{ROOT}.6", instance_number=1, manufacturer="radiologist",
        manufacturer_model_name="manual", software_versions="1", device_serial_number="1",
    )
    seg_file = series / "seg.dcm"  # in the same folder: the command must skip it as a source
    seg.save_as(seg_file)
    return series, seg_file


def test_measure_json_matches_truth(study: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    series, seg_file = study
    assert main(["measure", str(series), "--seg", str(seg_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["segment_number"] for r in rows] == [1, 2]
    assert [r["label"] for r in rows] == ["liver lesion", "node"]
    slice_z = np.arange(SHAPE[0]) * SPACING[0]
    for row, shape, hu in ((rows[0], ELLIPSE, 60.0), (rows[1], SPHERE, 100.0)):
        true_long, true_short = axial_truth(shape, slice_z)
        assert abs(row["long_axis_mm"] - true_long) <= 1.0
        assert abs(row["short_axis_mm"] - true_short) <= 1.0
        assert abs(row["volume_ml"] - shape.volume_ml) <= 0.05 * shape.volume_ml
        assert abs(row["max_3d_diameter_mm"] - shape.max_3d_diameter_mm) <= SPACING[0] / 2 + 1.0
        assert row["intensity"]["hu_mean"] == hu and row["intensity"]["hu_sd"] == 0.0
        assert math.dist(row["long_axis"]["start"], row["long_axis"]["end"]) == pytest.approx(row["long_axis_mm"])
        start = row["long_axis"]["start_image"]
        assert start["sop_instance_uid"].startswith(f"{ROOT}.2.")
        k = int(start["sop_instance_uid"].rsplit(".", 1)[1]) - 1
        assert row["long_axis"]["start"][2] == pytest.approx(k * SPACING[0])
        assert row["long_axis"]["start"][0] == pytest.approx((start["column"] - 0.5) * SPACING[2])
        assert row["long_axis"]["start"][1] == pytest.approx((start["row"] - 0.5) * SPACING[1])


def test_measure_table_and_errors(study: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    series, seg_file = study
    assert main(["measure", str(series), "--seg", str(seg_file)]) == 0
    out = capsys.readouterr().out
    assert "liver lesion" in out and "long axis" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["measure", str(empty), "--seg", str(seg_file)]) == 1
    assert "not there" in capsys.readouterr().err


def test_seg_frames_are_placed_by_position_without_source_references(study: tuple[Path, Path]) -> None:
    from daemon.imaging.series import load_folder
    from daemon.measure.seg_mapping import seg_to_masks

    series, seg_file = study
    volume = load_folder(series, f"{ROOT}.4").volume
    seg = hd.seg.segread(seg_file)
    by_reference = seg_to_masks(seg, volume)
    for group in seg.PerFrameFunctionalGroupsSequence:
        del group.DerivationImageSequence
    by_position = seg_to_masks(seg, volume)
    assert by_reference.keys() == by_position.keys() == {1, 2}
    for n in (1, 2):
        assert np.array_equal(by_reference[n], by_position[n]) and by_reference[n].any()
