"""Analytic phantoms with known ground truth, for tests and bench/measure.py.

Everything here is synthetic: ellipsoids on a grid of chosen spacing and
orientation, with their exact diameters and volumes. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from daemon.volume import SliceRef, Vec3, Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def rotation_z(deg: float) -> NDArray[np.float64]:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation(rx: float, ry: float, rz: float) -> NDArray[np.float64]:
    """Rotation matrix from angles in degrees about x, then y, then z."""
    a, b, c = (math.radians(v) for v in (rx, ry, rz))
    mx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    my = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    return np.asarray(rotation_z(rz) @ my @ mx, dtype=np.float64)


def make_volume(
    shape: tuple[int, int, int],
    spacing: Vec3,
    origin: Vec3 = (0.0, 0.0, 0.0),
    *,
    uid_prefix: str = "1.2.826.0.1.3680043.10.1341.9",
    frame_of_reference_uid: str = "1.2.826.0.1.3680043.10.1341.9.1",
    modality: str = "CT",
    fill: float = 0.0,
) -> Volume:
    """An axial volume: (k, j, i) -> (x = i*sx, y = j*sy, z = k*sz) + origin."""
    sz, sy, sx = spacing
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0.0, 0.0, sx], [0.0, sy, 0.0], [sz, 0.0, 0.0]])
    affine[:3, 3] = origin
    slices = tuple(
        SliceRef(sop_instance_uid=f"{uid_prefix}.2.{k + 1}", sop_class_uid=CT_IMAGE_STORAGE)
        for k in range(shape[0])
    )
    return Volume(
        array=np.full(shape, fill, dtype=np.float32),
        affine=affine,
        slices=slices,
        frame_of_reference_uid=frame_of_reference_uid,
        study_instance_uid=f"{uid_prefix}.3",
        series_instance_uid=f"{uid_prefix}.4",
        modality=modality,
    )


def voxel_centres(volume: Volume) -> NDArray[np.float64]:
    """Patient coordinates of every voxel centre, shape (z, y, x, 3)."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in volume.shape), indexing="ij")
    kji = np.stack([k, j, i], axis=-1)
    return np.asarray(kji @ volume.affine[:3, :3].T + volume.affine[:3, 3], dtype=np.float64)


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid in patient space: semi-axes (mm) along the columns of `axes`."""

    centre: Vec3
    semi_axes: Vec3
    axes: NDArray[np.float64]  # 3x3 rotation, columns = directions of the semi-axes

    def inside(self, points: NDArray[np.float64]) -> NDArray[np.bool_]:
        local = (points - np.asarray(self.centre)) @ self.axes
        q = sum((local[..., n] / self.semi_axes[n]) ** 2 for n in range(3))
        return np.asarray(q <= 1.0)

    @property
    def volume_ml(self) -> float:
        a, b, c = self.semi_axes
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0

    @property
    def max_3d_diameter_mm(self) -> float:
        return 2.0 * max(self.semi_axes)


def in_plane_ellipsoid(centre: Vec3, a: float, b: float, c: float, angle_deg: float) -> Ellipsoid:
    """Semi-axes a, b in the axial plane (rotated by angle), c along z."""
    return Ellipsoid(centre=centre, semi_axes=(a, b, c), axes=rotation_z(angle_deg))


def axial_truth(ell: Ellipsoid, slice_z: NDArray[np.float64]) -> tuple[float, float]:
    """True long and short axial diameters of an in-plane ellipsoid over the given slice planes.

    Valid for ellipsoids whose third axis is along z (see in_plane_ellipsoid).
    """
    a, b, c = ell.semi_axes
    dz = np.abs(slice_z - ell.centre[2])
    scale = np.sqrt(np.clip(1.0 - (dz / c) ** 2, 0.0, None))
    s = float(scale.max())
    return 2.0 * max(a, b) * s, 2.0 * min(a, b) * s


# --- a phantom patient of several timepoints, repositioned between scans ---------------

@dataclass(frozen=True)
class PhantomLesion:
    name: str  # ground-truth identity ("A", "B", ...)
    centre: Vec3  # body coordinates, mm
    radius: float  # mm


@dataclass(frozen=True)
class PhantomTimepoint:
    lesions: tuple[PhantomLesion, ...]
    rotation_deg: Vec3  # about x, y, z
    translation_mm: Vec3
    merged: tuple[tuple[str, ...], ...] = ()  # groups of names that touch at this timepoint


# Body-frame structures (centre, semi-axes, value): a trunk with a spine, a liver and
# two lungs, asymmetric enough that a rigid registration is well posed.
_ANATOMY: tuple[tuple[Vec3, Vec3, float], ...] = (
    ((0.0, 0.0, 0.0), (125.0, 95.0, 85.0), 40.0),
    ((-55.0, 5.0, -10.0), (50.0, 42.0, 40.0), 70.0),
    ((50.0, -15.0, 45.0), (38.0, 45.0, 35.0), -700.0),
    ((-45.0, -15.0, 50.0), (32.0, 40.0, 30.0), -700.0),
    ((0.0, 62.0, 0.0), (14.0, 14.0, 85.0), 500.0),
    ((35.0, 30.0, -40.0), (20.0, 15.0, 18.0), 150.0),
)
LESION_VALUE = 120.0


def patient_timepoints() -> tuple[PhantomTimepoint, ...]:
    """Three timepoints: growth and shrinkage, a vanished lesion (C), a new one (F at
    T1, G at T2), and two lesions (D, E) that grow into one."""
    t0 = PhantomTimepoint(
        lesions=(
            PhantomLesion("A", (30.0, -25.0, 0.0), 12.0),
            PhantomLesion("B", (-60.0, 10.0, -20.0), 9.0),
            PhantomLesion("C", (60.0, 25.0, 20.0), 7.0),
            PhantomLesion("D", (-25.0, 30.0, 25.0), 8.0),
            PhantomLesion("E", (-3.0, 30.0, 25.0), 8.0),
        ),
        rotation_deg=(0.0, 0.0, 0.0),
        translation_mm=(0.0, 0.0, 0.0),
    )
    t1 = PhantomTimepoint(
        lesions=(
            PhantomLesion("A", (30.0, -25.0, 0.0), 14.0),
            PhantomLesion("B", (-60.0, 10.0, -20.0), 7.0),
            PhantomLesion("D", (-25.0, 30.0, 25.0), 12.0),
            PhantomLesion("E", (-3.0, 30.0, 25.0), 12.0),
            PhantomLesion("F", (40.0, 45.0, -10.0), 8.0),
        ),
        rotation_deg=(3.0, -5.0, 8.0),
        translation_mm=(15.0, -10.0, 8.0),
        merged=(("D", "E"),),
    )
    t2 = PhantomTimepoint(
        lesions=(
            PhantomLesion("A", (30.0, -25.0, 0.0), 15.0),
            PhantomLesion("B", (-60.0, 10.0, -20.0), 6.0),
            PhantomLesion("D", (-25.0, 30.0, 25.0), 13.0),
            PhantomLesion("E", (-3.0, 30.0, 25.0), 13.0),
            PhantomLesion("F", (40.0, 45.0, -10.0), 10.0),
            PhantomLesion("G", (-40.0, -45.0, -30.0), 7.0),
        ),
        rotation_deg=(-4.0, 3.0, -8.5),
        translation_mm=(-12.0, 14.0, -6.0),
        merged=(("D", "E"),),
    )
    return t0, t1, t2


def render_timepoint(
    tp: PhantomTimepoint,
    index: int,
    *,
    shape: tuple[int, int, int] = (56, 80, 96),
    spacing: Vec3 = (4.0, 3.5, 3.0),
    noise_sd: float = 10.0,
    seed: int = 0,
) -> tuple[Volume, NDArray[np.int16], dict[str, NDArray[np.bool_]]]:
    """The image, a lesion label map (all lesions label 1) and each lesion's own mask."""
    half = np.array([(n - 1) * s / 2.0 for n, s in zip(shape, spacing, strict=True)])
    origin = (-half[2], -half[1], -half[0])
    vol = make_volume(
        shape, spacing, origin,
        uid_prefix=f"1.2.826.0.1.3680043.10.1341.9.{index + 10}",
        frame_of_reference_uid=f"1.2.826.0.1.3680043.10.1341.9.{index + 10}.1",
    )
    world = voxel_centres(vol)
    rot = rotation(*tp.rotation_deg)
    body = (world - np.asarray(tp.translation_mm)) @ rot  # = R^T (x - t)
    img = np.full(shape, -1000.0)
    for centre, semi, value in _ANATOMY:
        ell = Ellipsoid(centre=centre, semi_axes=semi, axes=np.eye(3))
        img[ell.inside(body)] = value
    masks: dict[str, NDArray[np.bool_]] = {}
    labels = np.zeros(shape, dtype=np.int16)
    for les in tp.lesions:
        ell = Ellipsoid(centre=les.centre, semi_axes=(les.radius,) * 3, axes=np.eye(3))
        m = ell.inside(body)
        masks[les.name] = m
        img[m] = LESION_VALUE
        labels[m] = 1
    rng = np.random.default_rng(seed + index)
    img += rng.normal(0.0, noise_sd, size=shape)
    return vol.with_array(img.astype(np.float32)), labels, masks


def world_position(tp: PhantomTimepoint, body_point: Vec3) -> NDArray[np.float64]:
    """Where a body-frame point lies in the scanner (patient) frame at this timepoint."""
    return np.asarray(rotation(*tp.rotation_deg) @ np.asarray(body_point) + np.asarray(tp.translation_mm))
