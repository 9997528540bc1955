"""The committed DEMO liver model on a held-out SYNTHETIC torso phantom (a seed it was neither trained nor evaluated on).

The phantom is daemon.demo.phantom's portal-venous CT, on a field of view around
the liver and the retroperitoneum to stay cheap, with metastases of Chun's three
looks (daemon.demo.phantom.CHUN_LOOKS: homogeneous and sharp; textured with a
soft interface and a rim) and one lymph node. Every
lesion must be found by its own label, the liver's Dice stay above LIVER_DICE,
and the long axes (short axis for the node) measured by daemon.measure on the
predicted mask lie within AXIS_MM of the analytic truth and of the same
measurement of the true mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from daemon.demo.phantom import CHUN_LOOKS, Ellipsoid, Grid, liver_ct_phantom, phantom_volume
from daemon.measure.geometry import axial_axes
from daemon.measure.lesions import MeasureOptions, measure_mask
from daemon.segment import load_model, segment, split_roles

LIVER_DICE = 0.9
# The route aims at 1.5 mm for lesions >= 10 mm; this demo model reaches it for 13 of 23 metastases on
# its held-out phantoms (model.yaml: median error 1.25 mm, 0.90 mm against the true mask; the softest
# looks up to 3-5 mm short, the sharpest up to 2-3 mm long) and here measures -1.8 to +1.3 mm.
AXIS_MM = 2.5
GRID = Grid(shape=(60, 220, 240), spacing=(2.5, 1.0, 1.0), centre=(-30.0, 10.0, 25.0))  # 150 x 220 x 240 mm


def _lesions() -> list[Ellipsoid]:
    mets = [  # Chun groups 3, 1 and 2
        Ellipsoid("H1", (-85.0, -15.0, 35.0), (13.0, 11.0, 12.0), (0.0, 0.0, 30.0), site="liver").textured(CHUN_LOOKS[3]),
        Ellipsoid("H2", (-45.0, 25.0, 60.0), (7.0, 6.5, 7.0), site="liver").textured(CHUN_LOOKS[1]),
        Ellipsoid("H3", (-100.0, -35.0, 5.0), (6.0, 6.0, 6.0), site="liver").textured(CHUN_LOOKS[2]),
    ]
    node = Ellipsoid("N1", (36.0, 35.0, 10.0), (7.0, 7.5, 11.0), kind="node", site="retroperitoneal lymph node")
    return [*mets, node]


@pytest.fixture(scope="module")
def model_dir(request: pytest.FixtureRequest) -> Path:
    folder = Path(str(request.config.rootpath)) / "models" / "demo-liver-mets"
    assert (folder / "model.onnx").is_file(), f"the demo liver model is committed at {folder}"
    return folder


def test_manifest_says_demo_roles_and_checksum(model_dir: Path) -> None:
    model = load_model(model_dir, providers="cpu")  # verifies the sha256, IR version and opset
    m = model.manifest
    assert m.name == "demo-liver-mets" and m.modality == "CT"
    assert not m.clinical_use and "NOT FOR CLINICAL USE" in m.intended_use
    assert (model_dir / "model.onnx").stat().st_size < 2_000_000
    assert [(lab.value, lab.name, lab.role, lab.node) for lab in m.labels] == [
        (1, "Liver", "organ", False), (2, "Liver metastasis", "lesion", False), (3, "Lymph node", "lesion", True)]
    assert m.input.normalisation.method == "window"
    assert {a.metric for a in m.accuracy} >= {"dice_liver", "dice_metastasis", "lesion_sensitivity_10mm"}


def test_finds_and_measures_the_lesions_of_a_liver_phantom(model_dir: Path) -> None:
    p = liver_ct_phantom(GRID, _lesions(), seed=40001)
    vol = phantom_volume(p, "liver-test")
    model = load_model(model_dir, providers="cpu")
    mask = segment(vol, model)
    lesions, organs = split_roles(mask, model.manifest)
    liver = p.truth.organs["liver"]
    dice = 2.0 * float((organs["liver"] & liver).sum()) / float(organs["liver"].sum() + liver.sum())
    assert dice >= LIVER_DICE, f"liver Dice {dice:.3f}"
    measured = measure_mask(vol, lesions, MeasureOptions(quantity="hu", intensity_statistics=False))
    errors = {}
    for les in p.truth.lesions:
        own = p.labels == les.label
        value = 3 if les.kind == "node" else 2
        hits = [m for m in measured if m.label == value and m.full_mask(own.shape)[own].any()]
        assert hits, f"{les.lesion_id} ({les.kind}, {les.max_3d_diameter_mm:.0f} mm) not found by label {value}"
        node = les.kind == "node"
        cal = hits[0].measurements.short_axis if node else hits[0].measurements.long_axis
        assert cal is not None
        truth = les.perpendicular_diameter_mm if node else les.longest_axial_diameter_mm
        true_mask = axial_axes(vol, own)
        assert true_mask is not None and true_mask.short_axis is not None
        same_way = true_mask.short_axis.length_mm if node else true_mask.long_axis.length_mm
        errors[les.lesion_id] = (round(cal.length_mm - truth, 2), round(cal.length_mm - same_way, 2))
    assert all(abs(e) <= AXIS_MM for pair in errors.values() for e in pair), f"axis errors (mm): {errors}"
    comp, n = ndimage.label(lesions.labels > 0, structure=np.ones((3, 3, 3)))
    false_positives = n - int(np.count_nonzero(np.unique(comp[p.labels > 0])))
    assert false_positives == 0, f"{false_positives} lesions where there is none"
