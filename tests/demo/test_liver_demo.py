"""The liver demo patient's designed categories (truth.json "expected") are what the engines give
on the TRUE lesion masks: RECIST 1.1 from RecistRule, Chun from the proposed groups. SYNTHETIC data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from daemon.cli import main
from daemon.criteria.params import ChunParams
from daemon.criteria.rules import RULES_DIR, load_model
from daemon.demo.truth import truth_dir, truth_file
from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.imaging.loader import scan
from daemon.imaging.nifti import nifti_to_array
from daemon.imaging.series import load_volume
from daemon.measure.chun_features import lesion_features
from daemon.measure.lesions import MeasuredLesion, MeasureOptions, measure_mask
from daemon.pipelines.liver_response import RecistRule, chun_assessment, propose_group, shells
from daemon.volume import LesionMask, Volume

CHUN = load_model(ChunParams, RULES_DIR / "chun.yaml")
SHELLS = shells(CHUN)


@pytest.fixture(scope="module")
def liver_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("liver")
    assert main(["demo-data", str(out), "--kinds", "ct-abdomen"]) == 0
    return out


def _load(folder: Path) -> tuple[dict[str, Any], Volume, np.ndarray, np.ndarray]:
    truth: dict[str, Any] = json.loads(truth_file(folder).read_text())
    s = truth["series"][0]
    vol = load_volume(scan(folder).series[s["series_instance_uid"]]).volume
    labels, _ = nifti_to_array(nib.load(str(truth_dir(folder) / s["mask"])))
    liver, _ = nifti_to_array(nib.load(str(truth_dir(folder) / s["organs"]["liver"])))
    return truth, vol, np.asarray(labels), np.asarray(liver) > 0


def _measure(vol: Volume, labels: np.ndarray) -> list[MeasuredLesion]:
    return measure_mask(vol, LesionMask(volume=vol, labels=labels, label_info=()),
                        MeasureOptions(split_components=False))


def _timepoint(truth: dict[str, Any], vol: Volume, labels: np.ndarray, liver: np.ndarray, rule: RecistRule,
               kinds: dict[str, LesionKind] | None) -> Timepoint:
    """The true lesions as the route would track them; kinds None: choose the baseline's targets."""
    by_label = {les["label"]: les for les in truth["series"][0]["lesions"]}
    measured = _measure(vol, labels)
    docs = [by_label[m.label] for m in measured]
    nodes = [d["kind"] == "node" for d in docs]
    sites = ["lymph node" if node else "liver" for node in nodes]
    if kinds is None:
        kinds = {d["lesion_id"]: k for d, k in zip(docs, rule.baseline_kinds(measured, vol, sites, nodes), strict=True)}
    lesions = []
    for m, d, site, node in zip(measured, docs, sites, nodes, strict=True):
        meas = m.measurements
        if site == "liver":
            features = lesion_features(vol, liver, m, SHELLS)
            group, basis = propose_group(CHUN, features)
            meas = replace(meas, intensity={**meas.intensity, **features},
                           notes={**meas.notes, "chun_group": str(group), "chun_basis": basis})
        lesions.append(Lesion(d["lesion_id"], f"2.25.{m.label}", kinds.get(d["lesion_id"], LesionKind.NEW), meas,
                              site=site, is_node=node))
    return Timepoint(truth["study_instance_uid"], None, tuple(lesions))


def test_expected_categories_are_the_engines(liver_demo: Path) -> None:
    rule = RecistRule(RULES_DIR)
    history: list[Timepoint] = []
    kinds: dict[str, LesionKind] | None = None
    for t in ("t0", "t1", "t2"):
        truth, vol, labels, liver = _load(liver_demo / f"ct-abdomen-{t}")
        current = _timepoint(truth, vol, labels, liver, rule, kinds)
        if kinds is None:
            kinds = {les.tracking_id: les.kind for les in current.lesions}
            assert sorted(k for k, v in kinds.items() if v is LesionKind.TARGET) == ["H1", "H2", "N1"]
        expected = truth["expected"]
        recist, why = rule.assess(history, current, vol)
        assert recist is not None, why
        assert recist.category == expected["RECIST1.1"], recist.reasons
        chun = chun_assessment(RULES_DIR, history, current, bevacizumab=None)
        assert (chun.category if chun else "BASELINE") == expected["CHUN"]
        if chun is not None:
            assert {r.timepoint: r.category for r in chun.timepoints} == truth["expected_per_lesion"]["CHUN"]
            assert "proposed" in chun.flags
        history.append(current)


@pytest.mark.parametrize("t", ["t0", "t1", "t2"])
def test_designed_groups_are_proposed_despite_a_voxel_of_segmentation_error(liver_demo: Path, t: str) -> None:
    truth, vol, labels, liver = _load(liver_demo / f"ct-abdomen-{t}")
    designed = {les["label"]: les["chun_group"] for les in truth["series"][0]["lesions"] if "chun_group" in les}
    assert designed
    for label, group in designed.items():
        true = labels == label
        for mask in (true, ndimage.binary_erosion(true), ndimage.binary_dilation(true)):
            (m,) = _measure(vol, mask.astype(np.int16))
            got, basis = propose_group(CHUN, lesion_features(vol, liver, m, SHELLS))
            assert got == group, (label, basis)


def test_truth_documents_the_design(liver_demo: Path) -> None:
    t0 = json.loads(truth_file(liver_demo / "ct-abdomen-t0").read_text())
    t2 = json.loads(truth_file(liver_demo / "ct-abdomen-t2").read_text())
    assert t0["expected"] == {"RECIST1.1": "BASELINE", "CHUN": "BASELINE"} and t0["expected_per_lesion"] == {}
    assert set(t2["expected"]) == {"RECIST1.1", "CHUN"} and set(t2["expected_per_lesion"]["CHUN"]) == {"H1", "H2"}
    assert "H3" in t0["absent_lesions"] and "H3" not in t2["absent_lesions"]
    groups = {les["lesion_id"]: les.get("chun_group") for les in t0["series"][0]["lesions"]}
    assert groups == {"H1": 3, "H2": 3, "N1": None, "N2": None}
    t0_truth = truth_dir(liver_demo / "ct-abdomen-t0")
    liver, _ = nifti_to_array(nib.load(str(t0_truth / t0["series"][0]["organs"]["liver"])))
    labels, _ = nifti_to_array(nib.load(str(t0_truth / t0["series"][0]["mask"])))
    assert liver.any() and not (np.asarray(liver > 0) & (np.asarray(labels) > 0)).any()  # parenchyma only
