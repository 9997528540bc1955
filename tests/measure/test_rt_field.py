"""The irradiated field rasterised onto a grid and laid over lesion labels (pure; SYNTHETIC shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.measure.rt_field import inside_polygon, is_treated_volume, overlaps, rasterise

SHAPE = (40, 64, 64)


def _affine(spacing: tuple[float, float, float] = (2.0, 1.0, 1.0),
            origin: tuple[float, float, float] = (-32.0, -32.0, -40.0)) -> np.ndarray:
    """(k, j, i, 1) -> LPS: i along x, j along y, k along z."""
    sz, sy, sx = spacing
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2] = (0, 0, sz), (0, sy, 0), (sx, 0, 0)
    a[:3, 3] = origin
    return a


def _sphere(centre: tuple[float, float, float], r: float, step: float = 2.0) -> list[np.ndarray]:
    out = []
    for dz in np.arange(-r, r + 1e-6, step):
        rr = np.sqrt(max(r * r - dz * dz, 0.0))
        if rr < 1.0:
            continue
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        out.append(np.stack([centre[0] + rr * np.cos(t), centre[1] + rr * np.sin(t),
                             np.full(64, centre[2] + dz)], axis=1))
    return out


def _truth(affine: np.ndarray, centre: tuple[float, float, float], r: float) -> np.ndarray:
    k, j, i = np.indices(SHAPE)
    pts = np.stack([k, j, i, np.ones_like(k)], axis=-1) @ affine.T
    return np.asarray(np.linalg.norm(pts[..., :3] - np.array(centre), axis=-1) <= r)


def test_a_sphere_is_rasterised_within_a_voxel_of_its_volume() -> None:
    affine = _affine()
    mask = rasterise(_sphere((0.0, 0.0, 0.0), 10.0), np.eye(4), affine, SHAPE)
    truth = _truth(affine, (0.0, 0.0, 0.0), 10.0)
    ml = 4 / 3 * np.pi * 1000 / 1000
    assert abs(mask.sum() * 2.0 / 1000 - ml) / ml < 0.12  # planes every 2 mm: staircase at the poles
    assert (mask & truth).sum() / truth.sum() > 0.9


def test_a_registered_structure_lands_where_the_transform_puts_it() -> None:
    """Drawn on a prior in which the patient lay 12 mm further right: the transform carries it over."""
    affine = _affine()
    shift = np.eye(4)
    shift[:3, 3] = (-12.0, 0.0, 0.0)  # structure frame -> this grid
    mask = rasterise(_sphere((12.0, 0.0, 0.0), 8.0), shift, affine, SHAPE)
    truth = _truth(affine, (0.0, 0.0, 0.0), 8.0)
    assert (mask & truth).sum() / mask.sum() > 0.85
    rot = np.eye(4)  # 90 degrees about z: a sphere at the centre stays put
    rot[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]
    assert (rasterise(_sphere((0.0, 0.0, 0.0), 8.0), rot, affine, SHAPE) ^ rasterise(
        _sphere((0.0, 0.0, 0.0), 8.0), np.eye(4), affine, SHAPE)).sum() < 0.05 * truth.sum()


def test_a_hole_stays_out_and_outside_the_grid_is_empty() -> None:
    affine = _affine()
    outer = _sphere((0.0, 0.0, 0.0), 12.0)
    inner = [c for c in _sphere((0.0, 0.0, 0.0), 12.0) if abs(c[0, 2]) < 1e-6]
    inner = [np.column_stack([c[:, 0] * 0.3, c[:, 1] * 0.3, c[:, 2]]) for c in inner]
    mask = rasterise([*outer, *inner], np.eye(4), affine, SHAPE)
    k0, j0, i0 = 20, 32, 32  # the centre voxel: in the hole
    assert not mask[k0, j0, i0] and mask[k0, j0, i0 + 8]
    far = rasterise(_sphere((500.0, 0.0, 0.0), 5.0), np.eye(4), affine, SHAPE)
    assert not far.any()


def test_degenerate_contours_raise() -> None:
    with pytest.raises(ValueError):
        rasterise([np.zeros((2, 3))], np.eye(4), _affine(), SHAPE)
    with pytest.raises(ValueError):
        rasterise([np.array([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]])], np.eye(4), _affine(), SHAPE)


def test_one_plane_gets_half_a_voxel_of_thickness() -> None:
    affine = _affine()
    plane = [c for c in _sphere((0.0, 0.0, 0.0), 10.0) if abs(c[0, 2]) < 1e-6]
    mask = rasterise(plane, np.eye(4), affine, SHAPE)
    assert set(np.flatnonzero(mask.any(axis=(1, 2)))) == {20}


def test_overlap_fractions_per_label() -> None:
    labels = np.zeros((4, 4, 4), dtype=np.uint16)
    labels[0, :2, :2] = 1  # 4 voxels, 2 inside
    labels[3, 3, 3] = 2  # outside
    treated = np.zeros((4, 4, 4), dtype=bool)
    treated[0, 0, :] = True
    assert [(o.label, o.fraction) for o in overlaps(labels, treated)] == [(1, 0.5)]


def test_treated_volume_by_type_or_name() -> None:
    assert is_treated_volume("Lesion 1", "PTV", ["PTV", "GTV"], [])
    assert is_treated_volume("ptv_met_L1", "", ["PTV"], [r"(^|[^a-z])(ptv|gtv)([^a-z]|$)"])
    assert not is_treated_volume("Brainstem", "ORGAN", ["PTV"], [r"(^|[^a-z])(ptv|gtv)([^a-z]|$)"])
    assert not is_treated_volume("eptvx", "", ["PTV"], [r"(^|[^a-z])(ptv|gtv)([^a-z]|$)"])


def test_inside_polygon_even_odd() -> None:
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    got = inside_polygon(np.array([1.0, 5.0, 3.9]), np.array([1.0, 1.0, 3.9]), square)
    assert got.tolist() == [True, False, True]
