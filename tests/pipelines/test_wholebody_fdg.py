"""Whole-body FDG PET/CT through the lesion-follow-up pipeline (route wholebody_fdg), on the
SYNTHETIC PET/CT patient of `nadir demo-data` (daemon.demo.wholebody): lesions of designed
SUL and volume, physiological uptake in the brain, heart, kidneys and bladder, fat and
muscle compartments of known volume; PERCIST 1.0 designed as baseline, PMR, PMD.

Asserted against the designed truth: SULpeak within 2 %, TMTV within 5 %, Dmax within 2 mm,
body-composition volumes within 5 %, the PERCIST categories, no physiological uptake taken
for a lesion, the liver reference; then bad input (no attenuation correction, a PET without
its CT, a half-body PET) answered by an SR that says why.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_wholebody import MemoryPriors, category, numbers, run_patient, sr_of, texts
from pydicom.dataset import Dataset

from daemon.demo import wholebody as wb
from daemon.demo.wholebody_studies import HALF_BODY, write_pet_study
from daemon.findings import Timepoint
from daemon.pipelines.base import PipelineInput

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list[Dataset]], MemoryPriors, list[dict[str, Any]]]:
    return run_patient(tmp_path_factory.mktemp("wholebody"))


def _lesion_at(tp: Timepoint, where: np.ndarray[Any, Any], within_mm: float = 10.0) -> Any:
    found = [les for les in tp.lesions
             if les.measurements.centroid is not None
             and float(np.linalg.norm(np.asarray(les.measurements.centroid) - where)) <= within_mm]
    assert len(found) == 1, f"{len(found)} lesions found near {where}"
    return found[0]


def _designed_centre(lesion_id: str, t: int) -> np.ndarray[Any, Any]:
    centre = np.asarray(wb.LESIONS[lesion_id][0], dtype=np.float64)
    return centre + np.asarray(wb.POSES[t].translation_mm)


def test_each_designed_lesion_is_found_with_its_sulpeak_within_2_percent(patient: Any) -> None:
    _, priors, truths = patient
    for t, (tp, truth) in enumerate(zip(priors.timepoints, truths, strict=True)):
        assert len(tp.lesions) == len(truth["designed"]), f"t{t}: {[les.tracking_id for les in tp.lesions]}"
        for lid, designed in truth["designed"].items():
            les = _lesion_at(tp, _designed_centre(lid, t))
            peak = les.measurements.intensity["sul_peak"]
            assert abs(peak - designed["sul_peak"]) <= 0.02 * designed["sul_peak"], f"t{t} {lid}: SULpeak {peak}"
            # SUVbw beside SUL (the seed reports SUVbw), by the header's lean body mass
            assert les.measurements.intensity["suv_peak"] == pytest.approx(peak * wb.SUV_PER_SUL, rel=1e-3)
            # the coarse site from the CT (rules/wholebody_fdg.yaml lesion_sites) for PERCIST's per-organ limit
            assert les.site == designed["site"], f"t{t} {lid}: site {les.site}"


def test_physiological_uptake_is_set_aside_and_the_report_says_how(patient: Any) -> None:
    results, priors, _ = patient
    for datasets, tp in zip(results, priors.timepoints, strict=True):
        for les in tp.lesions:  # nothing in the head, heart, kidneys or bladder
            c = np.asarray(les.measurements.centroid)
            assert c[2] < wb.NECK[1] and les.measurements.volume_ml is not None and les.measurements.volume_ml < 40
        said = " ".join(texts(sr_of(datasets)))
        for organ in ("brain (above the neck)", "heart (rule)", "kidney (rule)", "bladder (rule)"):
            assert organ in said
        # the route's rules file is cited like a criterion's (with a site's overrides when any)
        for section in ("lesion_finder", "physiological", "liver_reference", "lesion_sites"):
            assert f"Rules wholebody_fdg.yaml {section}: " in said


def test_percist_categories_as_designed(patient: Any) -> None:
    results, _, truths = patient
    got = [category(sr_of(ds)) for ds in results]
    assert got == [t["expected"]["PERCIST1.0"] for t in truths] == ["BASELINE", "PMR", "PMD"]


def test_the_liver_reference_is_a_3_cm_sphere_in_the_right_lobe(patient: Any) -> None:
    _, priors, _ = patient
    for tp in priors.timepoints:
        assert float(tp.context["liver_sul_mean"]) == pytest.approx(wb.LIVER_SUL, rel=0.02)
        assert "sphere 30 mm" in tp.context["liver_reference"]
        x = float(tp.context["liver_centre"].split(",")[0])
        assert x < wb.ORGANS[4][1][0]  # the liver's right half (LPS: -x)


def test_tmtv_tlg_and_dmax_within_tolerance(patient: Any) -> None:
    results, _, truths = patient
    for t, (datasets, truth) in enumerate(zip(results, truths, strict=True)):
        n = numbers(sr_of(datasets))
        assert abs(n["Total metabolic tumour volume"] - truth["metabolic"]["tmtv_ml"]) <= 0.05 * truth["metabolic"]["tmtv_ml"]
        assert n["Total Lesion Glycolysis"] == pytest.approx(truth["metabolic"]["tlg"], rel=0.05)
        assert n["Number of FDG-avid lesions"] == len(truth["designed"])
        centres = [_designed_centre(lid, t) for lid in truth["designed"]]
        dmax = max(float(np.linalg.norm(a - b)) for a in centres for b in centres)
        assert abs(n["Dmax (largest distance between lesion centroids)"] - dmax) <= 2.0, t
        bsa = math.sqrt(wb.HEIGHT_M * 100 * wb.WEIGHT_KG / 3600)  # Mosteller
        assert n["Dmax / body surface area"] == pytest.approx(n["Dmax (largest distance between lesion centroids)"] / bsa,
                                                              rel=1e-3)


def test_body_composition_volumes_within_5_percent(patient: Any) -> None:
    results, _, truths = patient
    names = {"subcutaneous_fat_ml": "Subcutaneous adipose tissue volume",
             "visceral_fat_ml": "Visceral adipose tissue volume", "skeletal_muscle_ml": "Skeletal muscle volume"}
    for datasets, truth in zip(results, truths, strict=True):
        n = numbers(sr_of(datasets))
        for key, meaning in names.items():
            assert abs(n[meaning] - truth["composition"][key]) <= 0.05 * truth["composition"][key], key
        # SULmean of each compartment: fat 0.3 and muscle 0.7 SUVbw in the phantom, through the PSF
        assert n["Subcutaneous adipose tissue SULmean"] < n["Skeletal muscle SULmean"]


def test_every_report_object_is_there(patient: Any) -> None:
    results, _, _ = patient
    for datasets in results:
        assert {"SR", "SEG", "OT", "KO"} <= {str(ds.Modality) for ds in datasets}
        # key images: the PET slice of each target (the hottest first among them) and the coronal MIP
        shown = [str(ds.get("ImageComments", "")) for ds in datasets if ds.Modality == "OT"]
        assert "coronal MIP" in shown and any(text.startswith("L") for text in shown)
        assert ("trend plot" in shown) == (datasets is not results[0])  # follow-ups: SULpeak and TMTV


def test_the_impression_is_percist_wording(patient: Any) -> None:
    results, _, _ = patient
    lines = [" ".join(texts(sr_of(datasets))) for datasets in results]  # the SR's impression among its texts
    assert "measurable (threshold" in lines[0]
    assert "partial metabolic response (PMR). Hottest lesion L1 SULpeak 3.5 vs 6.0 at baseline" in lines[1]
    assert "No new FDG-avid lesion." in lines[1] and "Liver reference SULmean 1.6 (baseline 1.6)" in lines[1]
    assert "1 new FDG-avid lesion (L4)." in lines[2]


# --------------------------------------------------------------------------- bad input


def _write(out: Path, name: str, **kw: Any) -> PipelineInput:
    study = write_pet_study(out, name, **kw)
    files = tuple(sorted(study.folder.glob("*.dcm")))
    return PipelineInput(study.study_instance_uid, "wholebody-fdg-percist", files, {})


@pytest.mark.parametrize(("name", "kw", "said"), [
    ("nac", {"corrected": ["DECY", "NORM"]}, "not attenuation-corrected"),
    ("no-ct", {"with_ct": False}, "The PET has no CT"),
    ("half-body", {"pet_grid": HALF_BODY}, "partial (e.g. half-body) PET"),
])
def test_bad_input_gets_an_sr_that_says_why(tmp_path: Path, name: str, kw: dict[str, Any], said: str) -> None:
    from daemon.pipelines.wholebody_fdg import run

    datasets = run(_write(tmp_path, name, **kw))
    sr = sr_of(datasets)
    assert "SEG" not in {str(ds.Modality) for ds in datasets}  # an SR (and its summary page), no lesion objects
    reason = " ".join(texts(sr))
    assert said in reason and "No attenuation-corrected whole-body FDG PET" in reason, reason
