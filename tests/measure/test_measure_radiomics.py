"""PyRadiomics per lesion: features of a synthetic sphere against values computed
independently (analytic volume, voxel count, ITK's own shape statistics), the rules
file, and the CSV writer."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from daemon.config import ConfigError
from daemon.measure.phantoms import make_volume, voxel_centres
from daemon.measure.radiomics import (
    ExtractionSetting,
    RadiomicsProfile,
    extract_features,
    profile_hash,
    pyradiomics_version,
)
from daemon.measure.radiomics_io import RadiomicsRow, load_radiomics_rules, write_radiomics_csv

RADIUS = 12.0


@pytest.fixture(scope="module")
def sphere() -> tuple[object, np.ndarray, np.ndarray]:
    vol = make_volume((36, 36, 36), (1.0, 1.0, 1.0), modality="MR")
    pts = voxel_centres(vol)
    mask = np.sum((pts - pts[18, 18, 18]) ** 2, axis=-1) <= RADIUS**2
    image = np.where(mask, 5.0, 1.0)
    return vol.with_array(image), mask, image


def _profile() -> RadiomicsProfile:
    return RadiomicsProfile(
        source="test", setting=ExtractionSetting(binWidth=1.0),
        feature_classes={"shape": [], "firstorder": []},
    )


def test_sphere_shape_and_first_order_match_independent_values(sphere) -> None:  # type: ignore[no-untyped-def]
    vol, mask, _image = sphere
    f = extract_features(vol, mask, _profile())
    n = int(mask.sum())
    assert f["original_shape_VoxelVolume"] == n  # 1 mm^3 voxels
    analytic = 4.0 / 3.0 * math.pi * RADIUS**3
    assert abs(f["original_shape_MeshVolume"] - analytic) / analytic < 0.02
    # sphericity: analytic 1 for a sphere; ITK's independent estimate (Crofton perimeter)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.SetComputePerimeter(True)
    stats.Execute(sitk.GetImageFromArray(mask.astype(np.uint8)))
    itk_sphericity = math.pi ** (1 / 3) * (6 * stats.GetPhysicalSize(1)) ** (2 / 3) / stats.GetPerimeter(1)
    assert abs(itk_sphericity - 1.0) < 0.02
    # the marching-cubes mesh of a voxelised sphere has a larger area (staircase): lower, within 10 %
    assert 0.9 < f["original_shape_Sphericity"] <= 1.0
    area = 4.0 * math.pi * RADIUS**2
    assert abs(f["original_shape_SurfaceArea"] - area) / area < 0.1
    assert abs(f["original_shape_Maximum3DDiameter"] - 2 * RADIUS) < 1.5
    assert f["original_firstorder_Mean"] == 5.0
    assert f["original_firstorder_Energy"] == n * 25.0
    assert f["original_firstorder_Variance"] == 0.0


def test_rules_file_profiles_run(sphere, repo_root: Path) -> None:  # type: ignore[no-untyped-def]
    vol, mask, image = sphere
    rules = load_radiomics_rules(repo_root / "rules" / "radiomics.yaml")
    assert set(rules.profiles) == {"seed_like", "ibsi_mri_default"}
    noisy = vol.with_array(image + np.random.default_rng(1).normal(0.0, 0.3, image.shape))
    f = extract_features(noisy, mask, rules.profile())
    for name in ("original_shape_Sphericity", "original_firstorder_Energy",
                 "original_ngtdm_Complexity", "original_glcm_DifferenceEntropy"):
        assert name in f and math.isfinite(f[name])
    assert len(profile_hash(rules.profile())) == 16
    assert profile_hash(rules.profile("seed_like")) != profile_hash(rules.profile())


def test_rules_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "radiomics.yaml"
    bad.write_text(
        "citation: x\ndefault_profile: a\nprofiles:\n  a:\n    source: s\n"
        "    setting:\n      binCount: 32\n      binWith: 2\n    feature_classes: {shape: []}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_radiomics_rules(bad)
    assert f"{bad}:8:" in str(err.value) and "binWith" in str(err.value)


def test_csv_has_one_row_per_lesion(tmp_path: Path) -> None:
    rows = [
        RadiomicsRow("1.2.3", "1.2.3.4", "L1", "2.25.1", 1, "seg-uid", "p", "h", pyradiomics_version(),
                     {"original_shape_VoxelVolume": 10.0, "b": 0.5}),
        RadiomicsRow("1.2.3", "1.2.3.4", "L2", "2.25.2", 2, "seg-uid", "p", "h", pyradiomics_version(),
                     {"original_shape_VoxelVolume": 3.0}),
    ]
    out = write_radiomics_csv(tmp_path / "radiomics.csv", rows)
    with out.open(encoding="utf-8") as fh:
        read = list(csv.DictReader(fh))
    assert [r["TrackingID"] for r in read] == ["L1", "L2"]
    assert float(read[0]["original_shape_VoxelVolume"]) == 10.0 and read[1]["b"] == ""
    assert read[0]["PyRadiomicsVersion"].startswith("v3")
