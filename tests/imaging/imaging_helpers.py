"""Helpers for the imaging tests: small SYNTHETIC series (daemon.demo's writers) and geometry checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from daemon.demo.dicom import (
    SeriesInfo,
    StudyInfo,
    demo_uid,
    series_datasets,
)
from daemon.demo.phantom import Grid
from daemon.volume import ImagePoint, Volume

WHEN = datetime(2024, 1, 15, 10, 0)


@dataclass
class Written:
    folder: Path
    grid_affine: NDArray[np.float64]
    values: NDArray[np.float32]  # what a reader gets back, on the grid (k, j, i)
    datasets: list[Dataset]


def ramp(shape: tuple[int, int, int]) -> NDArray[np.float32]:
    """A volume whose every voxel value is distinct (so misplaced voxels show)."""
    k, j, i = np.indices(shape)
    return (k * 1000 + j * 30 + i).astype(np.float32)


def make_datasets(grid: Grid, modality: str = "MR", image: NDArray[np.float32] | None = None,
                  series_uid: str | None = None, description: str = "T1 3D post-Gd", **kw: object) -> list[Dataset]:
    img = ramp(grid.shape) if image is None else image
    study = StudyInfo(study_instance_uid=demo_uid("test-study"), study_datetime=WHEN)
    series = SeriesInfo(
        series_instance_uid=series_uid or demo_uid("test-series", grid, modality, description),
        modality=modality, series_number=int(kw.pop("number", 3)),  # type: ignore[call-overload]
        description=description, frame_of_reference_uid=demo_uid("test-for"), series_datetime=WHEN,
        **kw,  # type: ignore[arg-type]
    )
    return series_datasets(img, grid.affine(), study, series, seed="test")


def pixel_centre(ds: Dataset, row: float, column: float) -> np.ndarray:
    """Patient position of an SCOORD (column, row) point on a dataset, from its header alone."""
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    ps = [float(v) for v in ds.PixelSpacing]
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    return ipp + (column - 0.5) * ps[1] * iop[:3] + (row - 0.5) * ps[0] * iop[3:]


def check_round_trip(volume: Volume, grid_affine: np.ndarray, values: np.ndarray, by_uid: dict[str, Dataset],
                     atol_value: float = 1e-3) -> None:
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, n, 40) for n in volume.shape], axis=1).astype(float)
    patient = volume.index_to_patient(idx)
    # every voxel sits where the generating grid put it, with its value
    src = np.round((patient - grid_affine[:3, 3]) @ np.linalg.inv(grid_affine[:3, :3]).T).astype(int)
    np.testing.assert_allclose(src @ grid_affine[:3, :3].T + grid_affine[:3, 3], patient, atol=1e-4)
    np.testing.assert_allclose(volume.array[tuple(idx.astype(int).T)], values[tuple(src.T)], atol=atol_value)
    np.testing.assert_allclose(volume.patient_to_index(patient), idx, atol=1e-6)
    for kji, p in zip(idx, patient, strict=True):
        point = volume.index_to_image((kji[0], kji[1], kji[2]))
        ds = by_uid[point.slice.sop_instance_uid]
        frame = point.slice.frame_number
        np.testing.assert_allclose(_position(ds, frame, point), p, atol=1e-4)
        np.testing.assert_allclose(volume.image_to_index(point), kji, atol=1e-9)


def _position(ds: Dataset, frame: int | None, point: ImagePoint) -> np.ndarray:
    if frame is None:
        return pixel_centre(ds, point.row, point.column)
    pf = ds.PerFrameFunctionalGroupsSequence[frame - 1]
    sh = ds.SharedFunctionalGroupsSequence[0]
    view = Dataset()
    view.ImagePositionPatient = pf.PlanePositionSequence[0].ImagePositionPatient
    orient = pf.get("PlaneOrientationSequence") or sh.PlaneOrientationSequence
    view.ImageOrientationPatient = orient[0].ImageOrientationPatient
    measures = pf.get("PixelMeasuresSequence") or sh.PixelMeasuresSequence
    view.PixelSpacing = measures[0].PixelSpacing
    return pixel_centre(view, point.row, point.column)
