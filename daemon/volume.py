"""Core imaging types shared by imaging/, segment/, measure/ and report/.

A `Volume` is a 3D array in (z, y, x) order (slice k, row j, column i) with one
4x4 affine mapping the array index (k, j, i) to the patient coordinate (x, y, z)
in the DICOM patient frame (LPS, millimetres), and for every slice k the source
instance (and frame) it came from. Index <-> patient <-> (instance, row, column)
conversions are exact and live here, so every part converts the same way.

Image coordinates follow DICOM SCOORD conventions where noted: the top-left
corner of the top-left pixel is (column 0.0, row 0.0), so the centre of pixel
(row j, column i) is (i + 0.5, j + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class SliceRef:
    """The source of one slice of a volume: an instance and, for multi-frame, a frame."""

    sop_instance_uid: str
    sop_class_uid: str
    frame_number: int | None = None  # 1-based, None for single-frame instances


@dataclass(frozen=True)
class ImagePoint:
    """A point on a source image, in DICOM SCOORD pixel coordinates (column, row)."""

    slice: SliceRef
    column: float
    row: float


@dataclass(frozen=True)
class PetHeader:
    """The header values the SUV functions need, kept alongside a PET volume in Bq/ml."""

    units: str  # (0054,1001) Units, e.g. BQML
    decay_correction: str  # (0054,1102) START | ADMIN | NONE
    injected_dose_bq: float  # RadionuclideTotalDose
    half_life_s: float  # RadionuclideHalfLife
    injection_time: datetime  # RadiopharmaceuticalStartDateTime (or date + time)
    reference_time: datetime  # SeriesDate/SeriesTime (or AcquisitionDateTime when decay START is absent)
    weight_kg: float | None
    height_m: float | None
    sex: str | None  # "M" | "F" | None


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image on a grid with exact geometry and per-slice provenance."""

    array: NDArray[np.floating] | NDArray[np.integer]  # (z, y, x)
    affine: NDArray[np.float64]  # 4x4: (k, j, i, 1) -> (x, y, z, 1) in LPS mm
    slices: tuple[SliceRef, ...]  # one per k
    frame_of_reference_uid: str
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    modality: str = ""
    pet: PetHeader | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"a Volume is 3D (z, y, x); got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError("a Volume's affine is 4x4")
        if len(self.slices) != self.array.shape[0]:
            raise ValueError(
                f"{len(self.slices)} slice references for {self.array.shape[0]} slices"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.array.shape
        return int(z), int(y), int(x)

    @property
    def spacing(self) -> Vec3:
        """Voxel size in mm along (k, j, i) = (slice, row, column)."""
        n = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(n[0]), float(n[1]), float(n[2])

    @property
    def origin(self) -> Vec3:
        """Patient coordinate of the centre of voxel (0, 0, 0)."""
        o = self.affine[:3, 3]
        return float(o[0]), float(o[1]), float(o[2])

    @property
    def direction(self) -> NDArray[np.float64]:
        """3x3 unit vectors: column c is the patient direction of array axis c (k, j, i)."""
        m = self.affine[:3, :3]
        return np.asarray(m / np.linalg.norm(m, axis=0), dtype=np.float64)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def index_to_patient(self, kji: NDArray[np.floating] | tuple[float, float, float]) -> NDArray[np.float64]:
        """(k, j, i) index (or an (N, 3) array of them) -> patient (x, y, z) mm."""
        p = np.asarray(kji, dtype=np.float64)
        return np.asarray(p @ self.affine[:3, :3].T + self.affine[:3, 3], dtype=np.float64)

    def patient_to_index(self, xyz: NDArray[np.floating] | tuple[float, float, float]) -> NDArray[np.float64]:
        """Patient (x, y, z) mm (or (N, 3)) -> continuous (k, j, i) index."""
        p = np.asarray(xyz, dtype=np.float64) - self.affine[:3, 3]
        return np.asarray(p @ np.linalg.inv(self.affine[:3, :3]).T, dtype=np.float64)

    def index_to_image(self, kji: tuple[float, float, float]) -> ImagePoint:
        """A (k, j, i) index on slice k -> the source image point (SCOORD convention)."""
        k, j, i = kji
        kr = int(round(k))
        if abs(k - kr) > 1e-6 or not 0 <= kr < self.shape[0]:
            raise ValueError(f"index k={k} is not on a slice of this volume")
        return ImagePoint(slice=self.slices[kr], column=float(i) + 0.5, row=float(j) + 0.5)

    def image_to_index(self, point: ImagePoint) -> NDArray[np.float64]:
        """A source image point (SCOORD convention) -> its (k, j, i) index."""
        for k, ref in enumerate(self.slices):
            if ref == point.slice:
                return np.array([k, point.row - 0.5, point.column - 0.5], dtype=np.float64)
        raise KeyError(f"instance {point.slice.sop_instance_uid} is not a slice of this volume")

    def with_array(self, array: NDArray[np.floating] | NDArray[np.integer]) -> Volume:
        """The same grid and provenance with another array (e.g. a mask)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the volume's {self.array.shape}")
        return Volume(
            array=array,
            affine=self.affine,
            slices=self.slices,
            frame_of_reference_uid=self.frame_of_reference_uid,
            study_instance_uid=self.study_instance_uid,
            series_instance_uid=self.series_instance_uid,
            modality=self.modality,
            pet=self.pet,
            metadata=dict(self.metadata),
        )


@dataclass(frozen=True)
class Code:
    """A coded concept (value, scheme designator, meaning), as DICOM writes it."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class SegmentLabel:
    """What a label value in a mask means."""

    value: int
    name: str
    category: Code
    type: Code


@dataclass(frozen=True, eq=False)
class LesionMask:
    """A label volume on a Volume's grid: 0 is background, each other value a label."""

    volume: Volume  # the source grid; labels.shape == volume.shape
    labels: NDArray[np.integer]
    label_info: tuple[SegmentLabel, ...]

    def __post_init__(self) -> None:
        if self.labels.shape != self.volume.shape:
            raise ValueError(
                f"mask shape {self.labels.shape} differs from the volume's {self.volume.shape}"
            )
