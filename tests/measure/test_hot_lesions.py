"""The model-free FDG lesion finder (daemon.measure.hot_lesions) and body composition
(daemon.measure.body_composition) on small SYNTHETIC volumes with known answers."""

from __future__ import annotations

import numpy as np

from daemon.demo import wholebody as wb
from daemon.demo.phantom import phantom_volume
from daemon.measure import body_composition as bc
from daemon.measure.hot_lesions import OrganWhere, body_frame, hot_components, physiological
from daemon.volume import SliceRef, Volume


def _volume(array: np.ndarray, spacing: float = 2.0) -> Volume:
    affine = np.diag([spacing, spacing, spacing, 1.0])
    refs = tuple(SliceRef(f"1.2.3.{k}", "1.2.840.10008.5.1.4.1.1.128") for k in range(array.shape[0]))
    return Volume(array=array.astype(np.float32), affine=affine, slices=refs, frame_of_reference_uid="1.2.3")


def _ball(shape: tuple[int, int, int], centre: tuple[int, int, int], radius: float) -> np.ndarray:
    k, j, i = np.indices(shape)
    return np.asarray((k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2)


def test_components_at_the_threshold_and_the_41_percent_variant() -> None:
    shape = (40, 40, 40)
    image = np.full(shape, 1.0)
    image[_ball(shape, (10, 10, 10), 5)] = 10.0  # SUVmax 10: 41 % = 4.1
    image[_ball(shape, (10, 10, 10), 3)] = 20.0  # a hot core: 41 % of 20 = 8.2 keeps the core and the rim
    image[_ball(shape, (30, 30, 30), 4)] = 5.0
    image[2, 2, 2] = 9.0  # one voxel: under the minimum volume
    suv = _volume(image)
    labels, n = hot_components(suv, 4.0, min_volume_ml=0.1)
    assert n == 2
    assert np.count_nonzero(labels == 1) == np.count_nonzero(_ball(shape, (10, 10, 10), 5))
    labels41, n41 = hot_components(suv, 4.0, percent_of_max=41, min_volume_ml=0.1)
    assert n41 == 2
    assert np.count_nonzero(labels41 == 1) == np.count_nonzero(_ball(shape, (10, 10, 10), 5))  # rim 10 >= 8.2
    image[_ball(shape, (10, 10, 10), 5) & ~_ball(shape, (10, 10, 10), 3)] = 6.0  # rim now under 41 % of 20
    labels41, _ = hot_components(_volume(image), 4.0, percent_of_max=41, min_volume_ml=0.1)
    assert np.count_nonzero(labels41 == 1) == np.count_nonzero(_ball(shape, (10, 10, 10), 3))


def test_physiological_uptake_by_organ_mask_first_then_by_rule() -> None:
    shape = (40, 40, 40)
    image = np.full(shape, 1.0)
    image[_ball(shape, (10, 10, 10), 5)] = 8.0
    image[_ball(shape, (30, 30, 30), 5)] = 8.0
    suv = _volume(image)
    labels, n = hot_components(suv, 4.0)
    kidney = _ball(shape, (10, 10, 10), 6)
    got = physiological(labels, n, suv, None, {"kidney_left": kidney}, {})
    assert got == {1: "kidney_left (organ mask)"}


def test_the_phantom_body_neck_trunk_and_physiological_rules() -> None:
    """On the whole-body phantom: the neck, the trunk, and each hot organ told by its rule."""
    pet, _ = wb.wholebody_pet(wb.GRIDS[("PT", "small")], wb.lesions_at(2), wb.POSES[2], seed=3)
    ct = wb.wholebody_ct(wb.GRIDS[("CT", "small")], wb.lesions_at(2), wb.POSES[2], seed=4)
    pv, cv = phantom_volume(pet, "pet"), phantom_volume(ct, "ct")
    on_pet = bc.resample_to(cv, pv, fill=-1000.0)
    body = bc.body_outline(on_pet, -500)
    frame = body_frame(body, pv, bc.neck_slice(body, pv, 0.35))
    z = wb.POSES[2].translation_mm[2]
    assert frame.neck_z is not None and wb.NECK[1] + z - 8 <= frame.neck_z <= wb.NECK[2] + z
    assert abs(frame.trunk_z[1] - (wb.TRUNK[2] + z)) <= 8  # the legs split at the trunk's bottom
    labels, n = hot_components(pv, 4.0, min_volume_ml=0.5)
    rules = {"heart": OrganWhere((0.0, 0.45), None, False, 100), "kidney": OrganWhere((0.3, 0.8), (35, 120), True, 40),
             "bladder": OrganWhere((0.7, 1.0), (0, 40), False, 30)}
    told = sorted(physiological(labels, n, pv, frame, {}, rules).values())
    assert told == ["bladder (rule)", "brain (above the neck)", "heart (rule)", "kidney (rule)", "kidney (rule)"]
    assert n - len(told) == len(wb.lesions_at(2))


def test_body_composition_compartments_within_5_percent() -> None:
    grid = wb.GRIDS[("CT", "small")]
    ct = wb.wholebody_ct(grid, (), wb.POSES[1], seed=5)
    comp = bc.compartments(phantom_volume(ct, "ct"), (-190, -30), (-29, 150), -500, 0.35)
    truth = wb.composition_truth(wb.region_ids(grid, wb.POSES[1]), float(np.prod(grid.spacing)) / 1000.0)
    got = comp.volumes_ml()
    for name in ("subcutaneous_fat", "visceral_fat", "skeletal_muscle"):
        assert abs(got[name] - truth[f"{name}_ml"]) <= 0.05 * truth[f"{name}_ml"], name
