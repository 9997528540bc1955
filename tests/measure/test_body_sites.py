"""Coarse lesion sites from the CT (daemon.measure.body_sites) and PERCIST's per-organ limit
(at most 2 targets per organ, 5 in all) that they feed, on small SYNTHETIC volumes."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.criteria.rules import RulesSource
from daemon.findings import LesionKind, Measurements
from daemon.measure.body_sites import NODAL, OTHER, SiteRules, lesion_site, tissues
from daemon.measure.hot_lesions import BodyFrame
from daemon.measure.lesions import MeasuredLesion
from daemon.pipelines.wholebody_response import PercistRule
from daemon.volume import SliceRef, Volume

RULES = SiteRules(lung_hu_max=-400.0, bone_hu_min=200.0, ring_voxels=2, min_ring_fraction=0.5, nodal_band_mm=60.0)
N, MM = 40, 4.0


def _grid() -> Volume:
    """(k, j, i) -> patient (x = i, y = j, z = k) mm, LPS, 4 mm voxels, centred on 0."""
    affine = np.array([[0, 0, MM, -N * MM / 2], [0, MM, 0, -N * MM / 2], [MM, 0, 0, -N * MM / 2], [0, 0, 0, 1]],
                      dtype=np.float64)
    refs = tuple(SliceRef(f"1.2.3.{k}", "1.2.840.10008.5.1.4.1.1.128") for k in range(N))
    return Volume(array=np.zeros((N, N, N), dtype=np.float32), affine=affine, slices=refs, frame_of_reference_uid="1.2")


def _frame() -> BodyFrame:
    return BodyFrame(np.ones(N, dtype=np.int64), np.zeros((N, 2)), None, (60.0, -70.0))  # midline x = 0, trunk z -70..60 mm


def _lesion(centre: tuple[int, int, int], r: int = 2) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    box = (slice(centre[0] - r, centre[0] + r + 1), slice(centre[1] - r, centre[1] + r + 1),
           slice(centre[2] - r, centre[2] + r + 1))
    k, j, i = np.indices((2 * r + 1,) * 3)
    return np.asarray((k - r) ** 2 + (j - r) ** 2 + (i - r) ** 2 <= r * r), box


def test_tissues_come_from_hu_inside_the_body_outline() -> None:
    hu = np.full((N, N, N), 40.0)
    hu[:, :, :10] = -800.0  # air-density: lung inside the body, outside air elsewhere
    hu[:, :, 30:] = 700.0  # bone
    body = np.zeros((N, N, N), dtype=bool)
    body[:, 5:35, 5:35] = True
    found = tissues(hu, body, None, RULES)
    assert set(found) == {"lung", "bone"}
    assert found["lung"].sum() == N * 30 * 5 and not found["lung"][:, :5].any()
    assert found["bone"].sum() == N * 30 * 5


@pytest.mark.parametrize(("centre", "site"), [
    ((20, 20, 6), "lung"), ((20, 20, 33), "bone"), ((20, 20, 20), "liver"),
    ((20, 10, 22), NODAL),  # soft tissue 8 mm beside the midline, in the trunk
    ((20, 10, 3), OTHER),  # soft tissue 68 mm from the midline (beyond the 60 mm band)
    ((37, 10, 22), OTHER),  # soft tissue by the midline, above the trunk (z 68 mm)
])
def test_the_tissue_around_a_lesion_names_its_site(centre: tuple[int, int, int], site: str) -> None:
    grid = _grid()
    lung = np.zeros((N, N, N), dtype=bool)
    lung[:, 15:25, 2:10] = True
    bone = np.zeros_like(lung)
    bone[:, 15:25, 29:38] = True
    liver = np.zeros_like(lung)
    liver[14:26, 15:25, 15:26] = True
    local, box = _lesion(centre)
    liver[box] &= ~local  # organ masks leave the lesion out: its ring counts
    assert lesion_site(local, box, grid, {"liver": liver, "lung": lung, "bone": bone}, _frame(), RULES) == site


def _measured(peak: float) -> MeasuredLesion:
    box = (slice(0, 1), slice(0, 1), slice(0, 1))
    return MeasuredLesion(1, "lesion", 1, box, np.ones((1, 1, 1), dtype=bool), Measurements(intensity={"sul_peak": peak}))


def test_percist_targets_at_most_two_per_organ_and_five_in_all() -> None:
    rule = PercistRule(RulesSource())
    peaks = [9.0, 8.0, 7.0, 6.0, 5.5, 5.0, 4.8, 4.5]
    sites = ["liver", "liver", "liver", "lung", "lung", "lung", "bone", "lymph node region"]
    kinds = rule.baseline_kinds([_measured(p) for p in peaks], _grid(), sites, [False] * len(peaks))
    targets = [(p, s) for p, s, k in zip(peaks, sites, kinds, strict=True) if k is LesionKind.TARGET]
    # the third liver and the third lung lesion are passed over for cooler lesions of other organs
    assert targets == [(9.0, "liver"), (8.0, "liver"), (6.0, "lung"), (5.5, "lung"), (4.8, "bone")]
