"""The phantom generator (pure numpy): masks, analytic truth and poses agree. SYNTHETIC data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from daemon.demo.phantom import (
    Ellipsoid,
    Grid,
    Pose,
    brain_mr_phantom,
    liver_ct_phantom,
    mni_template,
    random_brain_lesions,
    random_liver_lesions,
    torso_pet_phantom,
)

GRID = Grid((48, 64, 64), (3.0, 3.0, 3.0))


def _centroid(labels: np.ndarray, n: int, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(labels == n).astype(float)
    return np.asarray((idx @ affine[:3, :3].T + affine[:3, 3]).mean(axis=0))


def test_brain_phantom_truth_matches_mask() -> None:
    lesions = [Ellipsoid("A", (-30.0, 0.0, 15.0), (12.0, 9.0, 10.0), (10.0, 0.0, 20.0)),
               Ellipsoid("B", (35.0, -30.0, 5.0), (8.0, 8.0, 8.0), core_fraction=0.5)]
    pose = Pose((6.0, -4.0, 9.0), (12.0, -8.0, 15.0))
    image, labels, truth = brain_mr_phantom(GRID, lesions, pose, seed=3)
    assert image.shape == labels.shape == GRID.shape and image.dtype == np.float32
    assert truth.modality == "MR" and [t.lesion_id for t in truth.lesions] == ["A", "B"]
    for t in truth.lesions:
        assert t.voxel_count == int((labels == t.label).sum()) > 0
        assert t.mask_volume_mm3 == pytest.approx(t.volume_mm3, rel=0.2)
        np.testing.assert_allclose(_centroid(labels, t.label, truth.affine), t.centre, atol=1.5)
    a = np.asarray(lesions[0].centre)
    expected = pose.matrix()[:3, :3] @ a + pose.matrix()[:3, 3]
    np.testing.assert_allclose(truth.lesions[0].centre, expected, atol=1e-9)
    b = truth.lesions[1]
    assert b.longest_axial_diameter_mm == pytest.approx(16.0) and b.perpendicular_diameter_mm == pytest.approx(16.0)
    wm = truth.reference["white_matter"]
    assert b.stats["max"] > 1.2 * wm  # enhancing rim
    assert image[labels == 2].min() < 0.6 * wm  # necrotic core


def test_axial_diameters_follow_rotation() -> None:
    flat = Ellipsoid("E", (0.0, 0.0, 0.0), (10.0, 4.0, 6.0))
    upright = Ellipsoid("E", (0.0, 0.0, 0.0), (10.0, 4.0, 6.0), angles_deg=(0.0, 90.0, 0.0))  # long axis to z
    g = Grid((30, 40, 40), (1.0, 1.0, 1.0))
    t_flat = liver_ct_phantom(g, [flat]).truth.lesions[0]
    t_up = liver_ct_phantom(g, [upright]).truth.lesions[0]
    assert (t_flat.longest_axial_diameter_mm, t_flat.perpendicular_diameter_mm) == pytest.approx((20.0, 8.0))
    assert (t_up.longest_axial_diameter_mm, t_up.perpendicular_diameter_mm) == pytest.approx((12.0, 8.0))
    assert t_up.max_3d_diameter_mm == pytest.approx(20.0)


def test_random_lesions_inside_and_deterministic() -> None:
    a = random_brain_lesions(np.random.default_rng(5), 6, (5.0, 25.0))
    b = random_brain_lesions(np.random.default_rng(5), 6, (5.0, 25.0))
    assert a == b and len(a) == 6
    tpl = mni_template()
    inv = np.linalg.inv(tpl.affine_lps)
    for les in a:
        q = np.round(inv[:3, :3] @ les.centre + inv[:3, 3]).astype(int)
        assert tpl.brain[tuple(q)] > 0.5
    for i, x in enumerate(a):
        for y in a[i + 1:]:
            assert np.linalg.norm(np.subtract(x.centre, y.centre)) > max(x.radii) + max(y.radii)
    liver = random_liver_lesions(np.random.default_rng(2), 3, nodes=2)
    assert [les.kind for les in liver].count("node") == 2


def test_ct_and_pet_values() -> None:
    lesions = [Ellipsoid("H", (-70.0, -5.0, 30.0), (12.0, 12.0, 12.0)),
               Ellipsoid("N", (36.0, 35.0, 0.0), (7.0, 7.0, 10.0), kind="node", intensity=6.0)]
    grid = Grid((40, 96, 96), (4.0, 4.0, 4.0))
    _, labels, ct = liver_ct_phantom(grid, lesions, seed=1)
    assert ct.lesions[0].stats["mean"] == pytest.approx(55.0, abs=10.0)
    assert ct.reference["liver"] == 110.0
    pet_image, pet_labels, pet = torso_pet_phantom(grid, lesions, seed=1, noise=0.0)
    assert pet.lesions[1].value == 6.0 and pet.lesions[0].value == 8.0
    assert pet.lesions[0].stats["max"] == pytest.approx(8.0, rel=0.1)  # 24 mm sphere, 5 mm PSF
    assert float(np.median(pet_image[np.abs(pet_image - 2.2) < 0.3])) == pytest.approx(2.2, abs=0.1)


def test_phantom_volume() -> None:
    from daemon.demo.phantom import phantom_volume

    ph = liver_ct_phantom(Grid((4, 8, 8), (3.0, 2.0, 2.0)))
    vol = phantom_volume(ph)
    assert vol.shape == (4, 8, 8) and vol.modality == "CT" and len({s.sop_instance_uid for s in vol.slices}) == 4
    np.testing.assert_array_equal(vol.affine, ph.truth.affine)


def test_brain_pet_reference_regions() -> None:
    from daemon.demo.phantom import STRIATUM, brain_pet_phantom

    grid = Grid((40, 64, 64), (3.0, 3.0, 3.0))
    lesion = Ellipsoid("B", (-30.0, 0.0, 15.0), (9.0, 9.0, 9.0), intensity=4.0)
    image, labels, truth = brain_pet_phantom(grid, [lesion], seed=2, noise=0.0)
    assert truth.reference["striatum"] > truth.reference["grey_matter"] > truth.reference["white_matter"]
    putamen = STRIATUM[0].centre
    k, j, i = np.round(np.linalg.inv(truth.affine)[:3, :3] @ putamen + np.linalg.inv(truth.affine)[:3, 3]).astype(int)
    assert image[k, j, i] > 2.0  # the striatum is hot
    assert truth.lesions[0].stats["max"] == pytest.approx(4.0, rel=0.15)


def test_chun_looks_texture_interface_and_rim() -> None:
    from scipy import ndimage

    from daemon.demo.phantom import CHUN_LOOKS, organ_mask

    grid = Grid((24, 90, 90), (2.5, 1.0, 1.0), centre=(-70.0, -5.0, 30.0))
    base = Ellipsoid("H", (-70.0, -5.0, 30.0), (16.0, 16.0, 16.0))
    looks = {g: liver_ct_phantom(grid, [base.textured(CHUN_LOOKS[g])], seed=4, noise_hu=0.0) for g in (1, 2, 3)}
    liver_hu = looks[1].truth.reference["liver"]
    core = ndimage.binary_erosion(looks[1].labels == 1, iterations=3)
    sd = {g: float(p.image[core].std()) for g, p in looks.items()}
    assert sd[1] < 1.0 < sd[2] < sd[3]  # homogeneous -> heterogeneous
    assert all(p.truth.lesions[0].stats["mean"] < liver_hu - 20 for p in looks.values())  # all hypodense
    blurred = liver_ct_phantom(grid, [replace(base, intensity=30.0, interface_mm=10.0)], noise_hu=0.0)
    sharp = liver_ct_phantom(grid, [replace(base, intensity=30.0)], noise_hu=0.0)
    lesion = sharp.labels == 1
    shell = ndimage.binary_dilation(lesion, iterations=4) & ~ndimage.binary_dilation(lesion, iterations=2)
    assert float(sharp.image[shell].mean()) == pytest.approx(liver_hu)  # 2-4 mm out: liver
    assert float(blurred.image[shell].mean()) < liver_hu - 8  # still inside a 10 mm wide interface
    liver = looks[1].truth.organs["liver"]
    assert not (liver & (looks[1].labels > 0)).any()
    np.testing.assert_array_equal(liver, organ_mask(grid) & (looks[1].labels == 0))
    rim = liver_ct_phantom(grid, [Ellipsoid("H", base.centre, base.radii, rim_hu=40.0)], noise_hu=0.0)
    inner = (rim.labels == 1) & ~ndimage.binary_erosion(rim.labels == 1, iterations=1)
    assert float(rim.image[inner].mean()) > float(liver_ct_phantom(grid, [base], noise_hu=0.0).image[inner].mean()) + 25
    assert base.scaled(0.5).textured(CHUN_LOOKS[3]).interface_mm == CHUN_LOOKS[3].interface_mm


def test_random_chun_looks_keep_the_geometry() -> None:
    plain = random_liver_lesions(np.random.default_rng(9), 4, nodes=1)
    looked = random_liver_lesions(np.random.default_rng(9), 4, nodes=1, chun_looks=True)
    assert [(a.centre, a.radii) for a in plain] == [(b.centre, b.radii) for b in looked]
    mets = [les for les in looked if les.kind == "metastasis"]
    assert all(les.intensity is not None and les.intensity + les.rim_hu <= 95.0 for les in mets)
    assert looked[-1].kind == "node" and looked[-1].heterogeneity_hu == 0.0
