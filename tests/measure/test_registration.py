"""Rigid registration on a fine grid runs on a coarser copy, and a body that fills the field of view
is registered (SYNTHETIC liver CT phantoms, known poses)."""

from __future__ import annotations

import numpy as np

from daemon.demo.patient import POSES, liver_lesions_at
from daemon.demo.phantom import Grid, liver_ct_phantom, phantom_volume
from daemon.measure.registration import AlignmentMethod, align, coarse, to_sitk

# 0.8 mm pixels, 2.5 mm slices: the in-plane resolution of a clinical abdomen CT; a 256 mm field that
# the body fills (its sides cut off), as on a large patient
FINE = Grid(shape=(56, 320, 320), spacing=(2.5, 0.8, 0.8), centre=(0.0, 0.0, 20.0))


def test_a_fine_grid_is_binned_to_about_2_mm_and_a_coarse_one_kept() -> None:
    fine = coarse(to_sitk(phantom_volume(liver_ct_phantom(FINE, [], seed=1), "fine")), 2.0)
    assert fine.GetSpacing() == (1.6, 1.6, 2.5) and fine.GetSize() == (160, 160, 56)
    small = Grid(shape=(20, 40, 40), spacing=(3.0, 2.8, 2.8))
    image = to_sitk(phantom_volume(liver_ct_phantom(small, [], seed=1), "small"))
    assert coarse(image, 2.0) is image


def test_a_repositioned_patient_on_a_fine_grid_is_recovered_within_a_millimetre() -> None:
    """Before, the registration started from the centre of mass of the HU values, air at -1000 HU
    weighing negatively: this pose came out 225 mm away."""
    prior, follow = (phantom_volume(liver_ct_phantom(FINE, liver_lesions_at(t), POSES[t], seed=10 + t), f"t{t}")
                     for t in (0, 2))
    alignment = align(prior, follow)
    assert alignment.method == AlignmentMethod.REGISTRATION
    truth = POSES[0].matrix() @ np.linalg.inv(POSES[2].matrix())  # follow-up patient -> prior patient
    pose = POSES[2].matrix()
    for les in liver_lesions_at(2):
        at_followup = pose[:3, :3] @ np.asarray(les.centre) + pose[:3, 3]
        expected = truth[:3, :3] @ at_followup + truth[:3, 3]
        assert np.linalg.norm(alignment.to_prior(at_followup) - expected) < 1.0, les.lesion_id
