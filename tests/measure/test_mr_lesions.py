"""Lesions recorded on the brain MR placed on a brain PET (daemon.measure.mr_lesions): the
ellipsoid of the recorded callipers keeps the recorded volume and centre, and the SYNTHETIC demo
patient's MR lesions (measured on the MR phantom's true mask, as the MR route records them)
land on the PET's designed lesions after rigid PET-MR registration, the patient repositioned."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from daemon.demo import brain_pet_phantom as bp
from daemon.demo.patient import write_brain_mr
from daemon.demo.truth import truth_dir
from daemon.findings import Lesion, LesionKind
from daemon.imaging.series import load_folder
from daemon.measure import mr_lesions
from daemon.measure.lesions import measure_mask
from daemon.measure.registration import AlignmentMethod, align
from daemon.volume import Code, LesionMask, SegmentLabel

CODE = Code("49755003", "SCT", "Morphologically Altered Structure")


def _mr_lesions(tmp_path: Path) -> tuple[list[Lesion], list[str], object]:
    mr = write_brain_mr(tmp_path, 0, "small", 1)
    volume = load_folder(sorted(mr.folder.rglob("*.dcm"))).volume
    truth = json.loads((truth_dir(mr.folder) / "truth.json").read_text())["series"][0]
    labels = np.transpose(np.asarray(nib.load(str(truth_dir(mr.folder) / truth["mask"])).dataobj), (2, 1, 0))
    names = [les["lesion_id"] for les in truth["lesions"]]
    info = tuple(SegmentLabel(n, name, CODE, CODE) for n, name in enumerate(names, start=1))
    measured = measure_mask(volume, LesionMask(volume, labels.astype(np.uint16), info))
    lesions = [Lesion(m.name, f"2.25.{m.label}", LesionKind.TARGET, m.measurements) for m in measured]
    return lesions, names, volume


def test_ellipsoid_keeps_the_recorded_volume_and_centre(tmp_path: Path) -> None:
    lesions, _, _ = _mr_lesions(tmp_path)
    for les in lesions:
        e = mr_lesions.ellipsoid_of(les)
        assert e is not None
        m = les.measurements
        assert m.volume_ml is not None and m.centroid is not None and m.long_axis is not None
        a, b, c = e.radii
        assert a == pytest.approx(m.long_axis.length_mm / 2)
        assert 4 / 3 * math.pi * a * b * c / 1000 == pytest.approx(m.volume_ml, rel=0.01)
        assert np.allclose(e.centre, m.centroid)
        assert np.allclose(e.axes @ e.axes.T, np.eye(3), atol=1e-9)  # orthonormal


def test_mr_lesions_land_on_the_pet_lesions_after_registration(tmp_path: Path) -> None:
    lesions, names, mr = _mr_lesions(tmp_path)
    pet = bp.write_demo_patient_fdopa(tmp_path, 0, seed=1)
    pet_volume = load_folder(list(pet.files)).volume
    alignment = align(mr, pet_volume)  # type: ignore[arg-type]
    assert alignment.method is AlignmentMethod.REGISTRATION
    assert alignment.rotation_deg > 3.0  # the head was turned between the MR and the PET
    truth = {les.lesion_id: pet.phantom.labels == les.label for les in pet.phantom.truth.lesions}
    placed = dict((les.tracking_id, m) for les, m in mr_lesions.place(lesions, pet_volume, alignment))
    assert set(placed) == set(names)
    for name, m in placed.items():
        t = truth[name]
        dice = 2 * np.count_nonzero(m & t) / (np.count_nonzero(m) + np.count_nonzero(t))
        # the 0.3 mL lesion is 19 PET voxels: half a voxel of registration error costs it most
        assert dice >= (0.5 if t.sum() < 40 else 0.7), f"{name}: Dice {dice:.2f}"
