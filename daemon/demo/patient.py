"""A synthetic demo patient followed over three timepoints, with ground truth.

Studies (one folder each under OUT_DIR):

- `mr-brain-t0`, `-t1`, `-t2`: post-gadolinium 3D T1 brain MR (MNI152 background)
  with metastases that grow (B1), shrink (B2), appear (B3 at t1), vanish (B4
  after t0) and a ring-enhancing one (B5).
- `ct-abdomen-t0..t2`: portal-venous CT, hypodense liver metastases and lymph nodes
  designed for RECIST 1.1 and Chun (LIVER_EXPECTED, in truth.json's "expected"):
  baseline; a partial response at t1 (H1 and the target node N1 shrink, H1 turns from
  Chun group 3 to 1, H2 from 3 to 2); progression at t2 (H2 grows back as group 3 and
  H3 appears). N2 is a stable non-target node. The liver parenchyma mask is written too
  (`organ-liver-CT03.nii.gz`).
- `pet-brain-t0..t2`: amino-acid (FDOPA) brain PET, Bq/ml with SUV-calibrated
  headers, on the MNI152 grey/white matter maps with a bright striatum, carrying
  the brain lesions with known SUV (B1 rising, B2 falling...).
- `pet-ct-t0..t2`: whole-body FDG PET (Bq/ml, SUV-calibrated headers) and its low-dose CT
  in the same frame of reference (daemon.demo.wholebody): lesions of designed SUL and
  volume for PERCIST 1.0 (baseline, PMR, PMD with a new lesion), physiological uptake,
  fat and muscle compartments of known volume.

The patient lies differently at each timepoint (rotation up to 10 degrees,
translation up to 20 mm). Each folder holds the DICOM files only; beside it,
`<folder>.truth/` (daemon/demo/truth.py) holds `truth.json` (lesions in patient LPS mm,
per series) and one `mask-<modality><series>.nii.gz` per series (label n = truth
lesion n). Everything is SYNTHETIC.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np

from daemon.demo import wholebody as wb
from daemon.demo.dicom import (
    PetDose,
    SeriesInfo,
    StudyInfo,
    demo_uid,
    pet_bqml,
    series_datasets,
    stored_values,
    write_datasets,
)
from daemon.demo.phantom import (
    CHUN_LOOKS,
    SYNTHETIC_NOTE,
    Ellipsoid,
    Grid,
    Phantom,
    Pose,
    brain_mr_phantom,
    brain_pet_phantom,
    liver_ct_phantom,
)
from daemon.demo.truth import truth_dir, truth_file
from daemon.imaging.nifti import array_to_nifti

log = logging.getLogger(__name__)

Size = Literal["small", "full"]
TIMEPOINTS = ("t0", "t1", "t2")
DATES = (datetime(2024, 1, 15, 10, 0), datetime(2024, 4, 16, 10, 30), datetime(2024, 7, 17, 9, 45))
POSES = (
    Pose(),
    Pose(rotation_deg=(4.0, -3.0, 7.0), translation_mm=(6.0, -9.0, 12.0)),
    Pose(rotation_deg=(-6.0, 5.0, -8.0), translation_mm=(-11.0, 7.0, -14.0)),
)

# lesion id -> (template, diameter scale per timepoint; 0 = absent)
BRAIN_SCRIPT: dict[str, tuple[Ellipsoid, tuple[float, float, float]]] = {
    "B1": (Ellipsoid("B1", (-30.0, 0.0, 15.0), (10.0, 8.5, 9.0), (10.0, 0.0, 20.0)), (1.0, 1.3, 1.6)),
    "B2": (Ellipsoid("B2", (35.0, -30.0, 5.0), (7.0, 6.0, 6.5), (0.0, 15.0, 0.0)), (1.0, 0.65, 0.4)),
    "B3": (Ellipsoid("B3", (20.0, 50.0, -10.0), (5.0, 5.0, 5.0)), (0.0, 0.6, 1.0)),
    "B4": (Ellipsoid("B4", (-25.0, -40.0, 20.0), (4.0, 4.0, 4.0)), (1.0, 0.0, 0.0)),
    "B5": (Ellipsoid("B5", (-10.0, 45.0, -35.0), (12.0, 11.0, 10.0), (0.0, 0.0, 30.0), core_fraction=0.55),
           (1.0, 1.05, 0.95)),
}
LIVER_SCRIPT: dict[str, tuple[Ellipsoid, tuple[float, float, float]]] = {
    "H1": (Ellipsoid("H1", (-80.0, -10.0, 30.0), (20.0, 18.0, 19.0), (0.0, 0.0, 25.0), site="liver"),
           (1.0, 0.5, 0.5)),
    "H2": (Ellipsoid("H2", (-50.0, 20.0, 60.0), (13.0, 12.0, 12.5), site="liver"), (1.0, 0.8, 1.4)),
    "H3": (Ellipsoid("H3", (-95.0, -30.0, 0.0), (7.0, 7.0, 7.0), site="liver"), (0.0, 0.0, 1.0)),
    "N1": (Ellipsoid("N1", (37.0, 35.0, 0.0), (9.0, 9.5, 13.0), kind="node",
                     site="retroperitoneal lymph node"), (1.0, 0.5, 0.5)),
    "N2": (Ellipsoid("N2", (-6.0, 47.0, -40.0), (6.0, 6.5, 8.0), kind="node",
                     site="retroperitoneal lymph node"), (1.0, 1.0, 1.0)),
}
# Chun group each metastasis is drawn as (phantom CHUN_LOOKS) per timepoint on the portal-venous CT;
# None: the phantom's default look (sharp, 55 HU). H1 3 -> 1 (optimal), H2 3 -> 2 -> 3.
LIVER_LOOKS: dict[str, tuple[int | None, int | None, int | None]] = {
    "H1": (3, 1, 1), "H2": (3, 2, 3), "H3": (None, None, None),
}
# The designed categories per timepoint (checked against the engines on the true masks by
# tests/demo): baseline; targets -41 % (PR); H2 grows (+30 to +35 % over the nadir, +15 to +17 mm) and H3 appears
# (PD). Chun is per lesion (no patient-level rule is published): with two liver lesions its category
# is "per_lesion"; each lesion's response is in LIVER_EXPECTED_LESIONS (truth.json "expected_per_lesion").
LIVER_EXPECTED: tuple[dict[str, str], ...] = (
    {"RECIST1.1": "BASELINE", "CHUN": "BASELINE"},
    {"RECIST1.1": "PR", "CHUN": "per_lesion"},
    {"RECIST1.1": "PD", "CHUN": "per_lesion"},
)
LIVER_EXPECTED_LESIONS: tuple[dict[str, dict[str, str]], ...] = (
    {},
    {"CHUN": {"H1": "optimal", "H2": "incomplete"}},
    {"CHUN": {"H1": "optimal", "H2": "none"}},
)

# true SUV per lesion and timepoint
PET_SUV: dict[str, tuple[float, float, float]] = {
    "H1": (9.0, 6.0, 4.0), "H2": (6.0, 6.5, 8.0), "H3": (7.0, 7.0, 7.0),
    "N1": (5.0, 3.5, 2.5), "N2": (3.0, 3.0, 3.0),
}

# true SUV of the brain lesions on amino-acid PET
PET_BRAIN_SUV: dict[str, tuple[float, float, float]] = {
    "B1": (3.2, 3.8, 4.5), "B2": (2.6, 2.0, 1.6), "B3": (2.4, 2.4, 2.6), "B4": (2.2, 2.2, 2.2),
    "B5": (2.9, 3.0, 2.8),
}

GRIDS: dict[tuple[str, Size], Grid] = {
    ("PT-brain", "small"): Grid(shape=(64, 100, 100), spacing=(2.5, 2.5, 2.5)),
    ("PT-brain", "full"): Grid(shape=(110, 256, 256), spacing=(2.0, 1.0, 1.0)),
    ("MR", "small"): Grid(shape=(120, 128, 128), spacing=(1.5, 1.8, 1.8)),
    ("MR", "full"): Grid(shape=(208, 512, 512), spacing=(1.0, 0.5, 0.5)),
    ("CT", "small"): Grid(shape=(64, 128, 128), spacing=(3.0, 2.8, 2.8)),
    ("CT", "full"): Grid(shape=(160, 512, 512), spacing=(2.5, 0.78125, 0.78125)),  # 40 cm, 2.5 mm slices
    ("PT", "small"): Grid(shape=(48, 96, 96), spacing=(4.0, 4.0, 4.0)),
    ("PT", "full"): Grid(shape=(96, 192, 192), spacing=(2.0, 2.0, 2.0)),
}
# A portal-venous liver CT's usual cover: the clinical grid in plane (512 x 512, 0.78 mm) and 2.5 mm slices,
# 96 of them over 24 cm from below the kidneys to above the liver dome; its slices lie at the full grid's
# positions. The liver e2e test runs on it: 40 % fewer voxels than the full grid's 40 cm, lesions alike.
LIVER_COVER = Grid(shape=(96, 512, 512), spacing=(2.5, 0.78125, 0.78125), centre=(0.0, 0.0, 30.0))


def lesions_at(script: dict[str, tuple[Ellipsoid, tuple[float, float, float]]], t: int) -> list[Ellipsoid]:
    return [tpl.scaled(scales[t]) for tpl, scales in script.values() if scales[t] > 0]


def liver_lesions_at(t: int) -> list[Ellipsoid]:
    """LIVER_SCRIPT at timepoint t with each metastasis drawn in its designed Chun look."""
    out = []
    for les in lesions_at(LIVER_SCRIPT, t):
        group = LIVER_LOOKS.get(les.lesion_id, (None, None, None))[t]
        out.append(les if group is None else les.textured(CHUN_LOOKS[group]))
    return out


@dataclass(frozen=True)
class WrittenStudy:
    folder: Path
    study_instance_uid: str
    truth_path: Path
    files: int


def _truth_series(ph: Phantom, series: SeriesInfo, mask_name: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "series_instance_uid": series.series_instance_uid,
        "modality": series.modality,
        "description": series.description,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "shape_kji": list(ph.image.shape),
        "affine_kji_to_lps": ph.truth.affine.tolist(),
        "pose": asdict(ph.truth.pose),
        "units": ph.truth.units,
        "reference": ph.truth.reference,
        "mask": mask_name,
        "lesions": [asdict(les) for les in ph.truth.lesions],
        **extra,
    }


def _write_series(folder: Path, ph: Phantom, values: np.ndarray[Any, Any], study: StudyInfo,
                  series: SeriesInfo, seed: int) -> tuple[int, str, np.ndarray[Any, Any]]:
    """Write one series and its mask; return (files, mask name, values as stored)."""
    prefix = f"{series.modality}{series.series_number:02d}-"
    dsets = series_datasets(values, ph.truth.affine, study, series, seed=seed)
    write_datasets(dsets, folder, prefix=prefix)
    mask_name = f"mask-{series.modality}{series.series_number:02d}.nii.gz"
    truth_dir(folder).mkdir(parents=True, exist_ok=True)
    nib.save(array_to_nifti(ph.labels, ph.truth.affine), str(truth_dir(folder) / mask_name))
    return len(dsets), mask_name, stored_values(values, series.modality)


def _study(seed: int, kind: str, t: int, description: str, body_part: str) -> StudyInfo:
    return StudyInfo(
        study_instance_uid=demo_uid(seed, kind, t, "study"),
        study_datetime=DATES[t],
        accession_number=f"DEMO{seed % 1000:03d}{kind[:2].upper()}{t}",
        study_id=str(t + 1),
        description=description,
        body_part=body_part,
    )


def _series_info(seed: int, kind: str, t: int, modality: str, number: int, description: str,
                 when: datetime, frame: str, **kw: Any) -> SeriesInfo:
    return SeriesInfo(
        series_instance_uid=demo_uid(seed, kind, t, modality, number, "series"),
        modality=modality, series_number=number, description=description,
        frame_of_reference_uid=frame, series_datetime=when, **kw,
    )


def _dump(folder: Path, study: StudyInfo, kind: str, t: int, series: list[dict[str, Any]],
          known: set[str], extra: dict[str, Any] | None = None) -> Path:
    present = {les["lesion_id"] for s in series for les in s["lesions"]}
    doc = {
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "study_instance_uid": study.study_instance_uid,
        "study_date": study.study_datetime.date().isoformat(),
        "timepoint": TIMEPOINTS[t],
        "kind": kind,
        "patient_id": study.patient_id,
        "coordinates": "patient LPS mm (DICOM); lesion label n in the mask = lesions[n-1]",
        "absent_lesions": sorted(known - present),
        "series": series,
        **(extra or {}),
    }
    path = truth_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def write_brain_mr(out: Path, t: int, size: Size, seed: int) -> WrittenStudy:
    kind = "mr-brain"
    folder = out / f"{kind}-{TIMEPOINTS[t]}"
    study = _study(seed, kind, t, "MR brain with gadolinium", "BRAIN")
    grid = GRIDS[("MR", size)]
    ph = brain_mr_phantom(grid, lesions_at(BRAIN_SCRIPT, t), POSES[t], seed=seed * 10 + t)
    when = DATES[t] + timedelta(minutes=20)
    series = _series_info(seed, kind, t, "MR", 5, "T1 MPRAGE 3D post-Gd", when,
                          demo_uid(seed, kind, t, "for"), contrast_agent="Gadoterate meglumine",
                          image_type=("ORIGINAL", "PRIMARY", "M", "ND"))
    n, mask, _ = _write_series(folder, ph, ph.image, study, series, seed)
    doc = [_truth_series(ph, series, mask, {})]
    return WrittenStudy(folder, study.study_instance_uid, _dump(folder, study, kind, t, doc, set(BRAIN_SCRIPT)), n)


def write_abdomen_ct(out: Path, t: int, size: Size, seed: int, grid: Grid | None = None) -> WrittenStudy:
    """The liver patient's portal-venous CT at timepoint t, on GRIDS[("CT", size)] or on `grid`."""
    kind = "ct-abdomen"
    folder = out / f"{kind}-{TIMEPOINTS[t]}"
    study = _study(seed, kind, t, "CT abdomen portal venous", "ABDOMEN")
    ph = liver_ct_phantom(grid or GRIDS[("CT", size)], liver_lesions_at(t), POSES[t], seed=seed * 10 + t)
    series = _series_info(seed, kind, t, "CT", 3, "Abdomen PV 70s", DATES[t] + timedelta(minutes=5),
                          demo_uid(seed, kind, t, "for"), contrast_agent="Iohexol 350")
    n, mask, _ = _write_series(folder, ph, ph.image, study, series, seed)
    liver = f"organ-liver-{series.modality}{series.series_number:02d}.nii.gz"
    nib.save(array_to_nifti(ph.truth.organs["liver"].astype(np.uint8), ph.truth.affine),
             str(truth_dir(folder) / liver))
    doc = [_truth_series(ph, series, mask, {"phase": "portal venous", "organs": {"liver": liver}})]
    for les in doc[0]["lesions"]:
        group = LIVER_LOOKS.get(les["lesion_id"], (None, None, None))[t]
        if group is not None:
            les["chun_group"] = group  # the designed group (CHUN_LOOKS)
    path = _dump(folder, study, kind, t, doc, set(LIVER_SCRIPT),
                 {"expected": LIVER_EXPECTED[t], "expected_per_lesion": LIVER_EXPECTED_LESIONS[t]})
    return WrittenStudy(folder, study.study_instance_uid, path, n)


def write_pet_ct(out: Path, t: int, size: Size, seed: int) -> WrittenStudy:
    """Whole-body FDG PET/CT (daemon.demo.wholebody): lesions of designed SUL and radius,
    physiological uptake, body-composition compartments; truth.json "expected" holds the
    designed PERCIST 1.0 category, "designed" the lesions' SUL and volumes, "metabolic" the
    TMTV/TLG at SUV 4 on the noise-free image and "composition" the compartments' volumes."""
    kind = "pet-ct"
    folder = out / f"{kind}-{TIMEPOINTS[t]}"
    study = _study(seed, kind, t, "PET-CT FDG whole body", "WHOLEBODY")
    frame = demo_uid(seed, kind, t, "for")
    lesions = wb.lesions_at(t)
    injection = DATES[t]
    dose = PetDose(injected_dose_bq=250e6, injection_time=injection)
    pet_time = injection + timedelta(minutes=60)
    pet_grid = wb.GRIDS[("PT", size)]
    pet_ph, clean = wb.wholebody_pet(pet_grid, lesions, wb.POSES[t], seed=seed * 10 + t)
    pet_series = _series_info(seed, kind, t, "PT", 2, "PET FDG AC WB", pet_time, frame, pet=dose,
                              image_type=("ORIGINAL", "PRIMARY"))
    n_pet, pet_doc = _write_pet(folder, pet_ph, study, pet_series, dose, seed)
    ct_grid = wb.GRIDS[("CT", size)]
    ct_ph = wb.wholebody_ct(ct_grid, lesions, wb.POSES[t], seed=seed * 10 + t + 5)
    ct_series = _series_info(seed, kind, t, "CT", 1, "CT AC low dose WB", pet_time - timedelta(minutes=2), frame)
    n_ct, mask_ct, _ = _write_series(folder, ct_ph, ct_ph.image, study, ct_series, seed)
    pet_ml = float(np.prod(pet_grid.spacing)) / 1000.0
    designed = {lid: {"sul_peak": sul[t], "volume_ml": 4.0 / 3.0 * np.pi * r**3 / 1000.0, "site": site,
                      "centre_anatomical": list(centre)}
                for lid, (centre, r, site, _, sul) in wb.LESIONS.items() if sul[t] > 0}
    doc = [pet_doc, _truth_series(ct_ph, ct_series, mask_ct, {})]
    extra = {
        "expected": wb.EXPECTED[t], "designed": designed, "liver_sul": wb.LIVER_SUL, "suv_per_sul": wb.SUV_PER_SUL,
        "metabolic": wb.metabolic_truth(clean, pet_ph.labels, pet_ph.truth.organs, pet_ml),
        "composition": wb.composition_truth(wb.region_ids(ct_grid, wb.POSES[t]), float(np.prod(ct_grid.spacing)) / 1000.0),
        "physiological": list(wb.PHYSIOLOGICAL),
    }
    path = _dump(folder, study, kind, t, doc, set(wb.LESIONS), extra)
    return WrittenStudy(folder, study.study_instance_uid, path, n_pet + n_ct)


def _write_pet(folder: Path, ph: Phantom, study: StudyInfo, series: SeriesInfo, dose: PetDose,
               seed: int) -> tuple[int, dict[str, Any]]:
    """Write a PET series in Bq/ml; its truth with the SUV measured on the stored values."""
    bqml = pet_bqml(ph.image, dose, series.series_datetime, study.weight_kg)
    n, mask, stored = _write_series(folder, ph, bqml, study, series, seed)
    factor = study.weight_kg * 1000.0 / dose.decayed_dose_bq(series.series_datetime)
    suv = stored * np.float32(factor)
    doc = _truth_series(ph, series, mask, {
        "injected_dose_bq": dose.injected_dose_bq, "injection_time": dose.injection_time.isoformat(),
        "half_life_s": dose.half_life_s, "weight_kg": study.weight_kg,
        "series_time": series.series_datetime.isoformat(), "bqml_to_suvbw": factor,
        "radiopharmaceutical": dose.radiopharmaceutical,
    })
    for les_doc, les in zip(doc["lesions"], ph.truth.lesions, strict=True):
        inside = suv[ph.labels == les.label]
        # SUVbw measured on the stored (quantised) image inside the mask
        les_doc["stats"] = {"suv_max": float(inside.max()), "suv_mean": float(inside.mean())} if inside.size else {}
    return n, doc


def write_brain_pet(out: Path, t: int, size: Size, seed: int) -> WrittenStudy:
    kind = "pet-brain"
    folder = out / f"{kind}-{TIMEPOINTS[t]}"
    study = _study(seed, kind, t, "PET brain FDOPA", "BRAIN")
    lesions = [
        Ellipsoid(e.lesion_id, e.centre, e.radii, e.angles_deg, e.kind, PET_BRAIN_SUV[e.lesion_id][t],
                  e.core_fraction, e.site)
        for e in lesions_at(BRAIN_SCRIPT, t)
    ]
    dose = PetDose(injected_dose_bq=185e6, injection_time=DATES[t], radiopharmaceutical="Fluorodopa F^18^")
    when = DATES[t] + timedelta(minutes=20)
    ph = brain_pet_phantom(GRIDS[("PT-brain", size)], lesions, POSES[t], seed=seed * 10 + t)
    series = _series_info(seed, kind, t, "PT", 4, "PET brain FDOPA AC static", when,
                          demo_uid(seed, kind, t, "for"), pet=dose, image_type=("ORIGINAL", "PRIMARY"))
    n, doc = _write_pet(folder, ph, study, series, dose, seed)
    return WrittenStudy(folder, study.study_instance_uid, _dump(folder, study, kind, t, [doc], set(BRAIN_SCRIPT)), n)


WRITERS = {
    "mr-brain": write_brain_mr, "ct-abdomen": write_abdomen_ct, "pet-ct": write_pet_ct, "pet-brain": write_brain_pet,
}


def write_demo_patient(
    out: Path,
    size: Size = "small",
    seed: int = 1,
    kinds: tuple[str, ...] = tuple(WRITERS),
    timepoints: tuple[int, ...] = (0, 1, 2),
) -> list[WrittenStudy]:
    """Write every study of the demo patient under `out`; return what was written."""
    written = []
    for kind in kinds:
        for t in timepoints:
            w = WRITERS[kind](out, t, size, seed)
            log.info("wrote %s (%d files)", w.folder, w.files)
            written.append(w)
    return written
