"""`nadir radiomics SERIES_DIR --seg SEG_FILE [--csv OUT] [--profile NAME] [--json]` on a SYNTHETIC
MR series (a noisy sphere) written with the demo's DICOM writer and a SEG written over it with
highdicom: features against the known sphere, the CSV, and the errors (a SEG of another series,
an unknown profile, PyRadiomics missing)."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from datetime import datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from daemon.cli import main
from daemon.demo.dicom import SeriesInfo, StudyInfo, series_datasets, write_datasets
from daemon.measure import radiomics

ROOT = "1.2.826.0.1.3680043.10.1442.78"
SHAPE = (24, 40, 40)
RADIUS = 6.0
AXIAL = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _series(folder: Path, n: int) -> list[pydicom.Dataset]:
    rng = np.random.default_rng(n)
    k, j, i = np.indices(SHAPE)
    sphere = (k - 12) ** 2 + (j - 20) ** 2 + (i - 20) ** 2 <= RADIUS**2
    image = (200.0 + 100.0 * sphere + rng.normal(0.0, 10.0, SHAPE)).astype(np.float32)
    when = datetime(2025, 4, 2, 9)
    study = StudyInfo(f"{ROOT}.{n}.1", when)
    series = SeriesInfo(f"{ROOT}.{n}.2", "MR", 5, "T1 post-Gd", f"{ROOT}.{n}.3", when)
    paths = write_datasets(series_datasets(image, AXIAL, study, series, seed=n), folder, "MR-")
    return [pydicom.dcmread(p) for p in paths]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("radiomics_cmd")
    slices = _series(root / "series", 1)
    _series(root / "other", 2)
    k, j, i = np.indices(SHAPE)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[(k - 12) ** 2 + (j - 20) ** 2 + (i - 20) ** 2 <= RADIUS**2] = 1
    labels[3, 5, 5] = 2  # one voxel: too small for PyRadiomics
    category = hd.sr.CodedConcept("49755003", "SCT", "Morphologically Altered Structure")
    prop = hd.sr.CodedConcept("14799000", "SCT", "Neoplasm, Metastatic")
    descriptions = [hd.seg.SegmentDescription(n, name, category, prop, hd.seg.SegmentAlgorithmTypeValues.MANUAL)
                    for n, name in ((1, "L1"), (2, "speck"))]
    seg = hd.seg.Segmentation(
        source_images=slices, pixel_array=labels, segmentation_type="BINARY", segment_descriptions=descriptions,
        series_instance_uid=f"{ROOT}.1.5", series_number=300, sop_instance_uid=f"{ROOT}.1.6", instance_number=1,
        manufacturer="radiologist", manufacturer_model_name="manual", software_versions="1", device_serial_number="1",
    )
    seg_file = root / "series" / "seg.dcm"  # beside the images: skipped as a source
    seg.save_as(seg_file)
    return root / "series", seg_file, root / "other"


def test_features_of_each_segment_as_json_and_csv(study: tuple[Path, Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    series, seg_file, _ = study
    out = tmp_path / "features.csv"
    assert main(["radiomics", str(series), "--seg", str(seg_file), "--json", "--csv", str(out),
                 "--profile", "seed_like"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["segment_number"], r["label"]) for r in rows] == [(1, "L1"), (2, "speck")]
    sphere, speck = rows
    assert sphere["status"] == "computed" and sphere["profile"] == "seed_like"
    assert sphere["pyradiomics_version"] == radiomics.pyradiomics_version()
    f = sphere["features"]
    n = int(f["original_shape_VoxelVolume"])  # 1 mm voxels, resampled to 1 mm: the voxel count
    assert abs(n - 4 / 3 * math.pi * RADIUS**3) / n < 0.1
    assert 290.0 < f["original_firstorder_Mean"] < 310.0  # 300 inside, noise SD 10
    assert 0.8 < f["original_shape_Sphericity"] <= 1.0
    assert speck["status"].startswith("not computable") and speck["features"] == {}
    with out.open(encoding="utf-8") as fh:
        read = list(csv.DictReader(fh))
    assert [r["TrackingID"] for r in read] == ["L1", "speck"]
    assert read[0]["MaskReference"] == f"{ROOT}.1.6" and read[0]["StudyDate"] == "20250402"
    assert read[0]["Profile"] == "seed_like" and read[0]["DeltaStatus"].startswith("not computable")
    assert float(read[0]["original_firstorder_Mean"]) == f["original_firstorder_Mean"]


def test_table_and_errors(study: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    series, seg_file, other = study
    assert main(["radiomics", str(series), "--seg", str(seg_file)]) == 0
    table = capsys.readouterr().out
    assert "shape_Sphericity" in table and "speck" in table and "research use only" in table
    assert main(["radiomics", str(other), "--seg", str(seg_file)]) == 2
    assert "the SEG is not on a series of" in capsys.readouterr().err
    assert main(["radiomics", str(series), "--seg", str(seg_file), "--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown radiomics profile 'nope'" in err and "ibsi_mri_default" in err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "radiomics" else real(name, *a))
    assert main(["radiomics", str(series), "--seg", str(seg_file)]) == 2
    assert "PyRadiomics is not installed" in capsys.readouterr().err
