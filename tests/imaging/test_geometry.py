"""Geometry round trip: index <-> patient <-> (instance, row, column), on SYNTHETIC series."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from imaging_helpers import Written, check_round_trip

from daemon.demo.phantom import Grid
from daemon.imaging.loader import scan
from daemon.imaging.series import load_folder, load_volume

SHAPE = (6, 10, 12)

GRIDS = {
    "axial": Grid(SHAPE, (2.5, 0.8, 0.9)),
    "sagittal": Grid(SHAPE, (1.2, 1.0, 0.7), row_direction=(0, 1, 0), column_direction=(0, 0, -1)),
    "coronal": Grid(SHAPE, (1.5, 1.0, 1.0), row_direction=(1, 0, 0), column_direction=(0, 0, -1)),
    "oblique": Grid.oblique(SHAPE, (2.0, 0.9, 1.1), (17.0, -11.0, 23.0), centre=(10.0, -20.0, 35.0)),
    # flipped: columns run right-to-left, rows feet-to-head... and slices written against the normal
    "flipped": Grid(SHAPE, (3.0, 1.1, 0.6), row_direction=(-1, 0, 0), column_direction=(0, -1, 0),
                    slice_direction=(0, 0, -1), centre=(5.0, 5.0, -40.0)),
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_round_trip(name: str, write_series: Callable[..., Written]) -> None:
    grid = GRIDS[name]
    w = write_series(grid)
    loaded = load_folder(w.folder)
    assert loaded.problems == () and not loaded.resampled
    vol = loaded.volume
    assert vol.shape == grid.shape
    np.testing.assert_allclose(sorted(vol.spacing), sorted(grid.spacing), atol=1e-5)
    # slices ascend along the normal (row x column direction)
    normal = np.cross(vol.direction[:, 2], vol.direction[:, 1])
    assert vol.affine[:3, 0] @ normal > 0
    by_uid = {str(ds.SOPInstanceUID): ds for ds in w.datasets}
    check_round_trip(vol, w.grid_affine, w.values, by_uid)
    assert vol.frame_of_reference_uid and vol.modality == "MR"


def test_ct_and_pet_rescale(write_series: Callable[..., Written]) -> None:
    grid = GRIDS["axial"]
    hu = (np.random.default_rng(1).normal(40, 300, grid.shape)).astype(np.float32)
    w = write_series(grid, "CT", hu)
    vol = load_folder(w.folder).volume
    assert vol.metadata["units"] == "HU"
    np.testing.assert_allclose(vol.array, np.clip(np.rint(hu), -1024, 3071), atol=1e-3)
    bq = (np.random.default_rng(2).random(grid.shape) * 5e4).astype(np.float32)
    w = write_series(grid, "PT", bq)
    vol = load_folder(w.folder).volume
    # per-slice RescaleSlope: relative error below 1 / 32767 of each slice's maximum
    assert np.abs(vol.array - bq).max() <= bq.max() / 32767 + 1e-3
    assert vol.pet is not None and vol.pet.units == "BQML" and vol.pet.decay_correction == "START"
    assert vol.pet.injected_dose_bq == pytest.approx(350e6) and vol.pet.weight_kg == pytest.approx(72.0)


@pytest.mark.parametrize("modality", ["MR", "CT", "PT"])
def test_enhanced_multiframe(modality: str, write_series: Callable[..., Written]) -> None:
    from highdicom.legacy import (
        LegacyConvertedEnhancedCTImage,
        LegacyConvertedEnhancedMRImage,
        LegacyConvertedEnhancedPETImage,
    )

    convert = {"MR": LegacyConvertedEnhancedMRImage, "CT": LegacyConvertedEnhancedCTImage,
               "PT": LegacyConvertedEnhancedPETImage}[modality]
    grid = GRIDS["oblique"]
    image = np.random.default_rng(3).uniform(0, 3000, grid.shape).astype(np.float32)
    w = write_series(grid, modality, image)
    legacy = [pydicom.dcmread(p) for p in sorted(w.folder.iterdir())]
    enhanced = convert(
        legacy, series_instance_uid=pydicom.uid.generate_uid(), series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1,
    )
    path = w.folder.parent / f"enhanced-{modality}.dcm"
    enhanced.save_as(path)
    series = next(iter(scan([path]).series.values()))
    assert series.number_of_frames == grid.shape[0]
    vol = load_volume(series).volume
    assert vol.shape == grid.shape
    assert {s.frame_number for s in vol.slices} == set(range(1, grid.shape[0] + 1))
    assert {s.sop_instance_uid for s in vol.slices} == {str(enhanced.SOPInstanceUID)}
    check_round_trip(vol, w.grid_affine, w.values, {str(enhanced.SOPInstanceUID): pydicom.dcmread(path)})


def test_pet_header_variants() -> None:
    from datetime import datetime

    from imaging_helpers import make_datasets

    from daemon.imaging.pet import pet_header

    ds = make_datasets(Grid((1, 4, 4), (2.0, 2.0, 2.0)), "PT")[0]
    head = pet_header(ds)
    assert head is not None and head.injection_time == datetime(2024, 1, 1, 9, 0)
    assert head.reference_time == datetime(2024, 1, 15, 10, 0) and head.sex == "F"
    ds.DecayCorrection = "ADMIN"
    assert pet_header(ds).reference_time == head.injection_time  # type: ignore[union-attr]
    rp = ds.RadiopharmaceuticalInformationSequence[0]
    del rp.RadiopharmaceuticalStartDateTime
    rp.RadiopharmaceuticalStartTime = "093015.5"
    assert pet_header(ds).injection_time == datetime(2024, 1, 15, 9, 30, 15, 500000)  # type: ignore[union-attr]
    del rp.RadionuclideTotalDose
    assert pet_header(ds) is None


def test_no_geometry_is_refused(write_series: Callable[..., Written]) -> None:
    from daemon.imaging.messy import SeriesRefused

    w = write_series(Grid((2, 4, 4), (1.0, 1.0, 1.0)))
    for p in w.folder.iterdir():
        ds = pydicom.dcmread(p)
        del ds.ImagePositionPatient
        ds.save_as(p)
    with pytest.raises(SeriesRefused, match="no-geometry"):
        load_folder(w.folder)
