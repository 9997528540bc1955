"""The SYNTHETIC whole-body FDG PET/CT patient as demo studies, and PET studies the route must
refuse with a reason (no attenuation correction, no CT, half body)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from daemon.demo import wholebody as wb
from daemon.demo.dicom import (
    PetDose,
    SeriesInfo,
    StudyInfo,
    demo_uid,
    pet_bqml,
    series_datasets,
    write_datasets,
)
from daemon.demo.phantom import Grid
from daemon.demo.response_patient import DemoStudy


def pet_ct_timepoints(out: Path, size: str = "small", seed: int = 1,
                      visits: Sequence[int] | None = None) -> list[DemoStudy]:
    """The PET/CT visits (default all three) with the designed PERCIST 1.0 category (truth.json
    "expected"); `size` names the grids of wholebody.GRIDS ("tiny" for the end-to-end test)."""
    from daemon.demo.patient import TIMEPOINTS, write_pet_ct

    studies = []
    for t in visits if visits is not None else range(len(TIMEPOINTS)):
        written = write_pet_ct(out, t, size, seed)  # type: ignore[arg-type]
        truth = json.loads(written.truth_path.read_text())
        studies.append(DemoStudy(written.folder.name, written.folder, written.study_instance_uid,
                                 str(truth["study_date"]).replace("-", ""), written.files,
                                 str(truth["expected"]["PERCIST1.0"])))
    return studies


def write_pet_study(out: Path, name: str, *, pet_grid: Grid | None = None, corrected: list[str] | None = None,
                    with_ct: bool = True, seed: int = 7, size: str = "small") -> DemoStudy:
    """A one-visit PET(/CT) study of the phantom, its own patient, as a site might send it wrongly:
    `corrected` replaces CorrectedImage (e.g. without ATTN), `with_ct=False` leaves the CT out,
    a short `pet_grid` covers part of the body only (default grids: the size's)."""
    grid = pet_grid or wb.GRIDS[("PT", size)]
    when = datetime(2024, 3, 1, 10, 0)
    study = StudyInfo(demo_uid(seed, name, "study"), when, patient_id=f"NADIR-DEMO-WB-{name}",
                      description="PET-CT FDG whole body", body_part="WHOLEBODY")
    frame = demo_uid(seed, name, "for")
    dose = PetDose(injected_dose_bq=250e6, injection_time=when)
    pet_time = when + timedelta(minutes=60)
    extra: dict[str, object] = {"CorrectedImage": corrected} if corrected is not None else {}
    pet_series = SeriesInfo(demo_uid(seed, name, "pt"), "PT", 2, "PET FDG WB", frame, pet_time, pet=dose,
                            image_type=("ORIGINAL", "PRIMARY"), extra=extra)
    ph, _ = wb.wholebody_pet(grid, wb.lesions_at(0))
    bq = pet_bqml(ph.image, dose, pet_time, study.weight_kg)
    files = write_datasets(series_datasets(bq, ph.truth.affine, study, pet_series, seed=seed), out / name, "PT-")
    if with_ct:
        base = wb.GRIDS[("CT", size)]
        ct_grid = replace(base, shape=(int(grid.shape[0] * grid.spacing[0] / base.spacing[0]), *base.shape[1:]),
                          centre=grid.centre)
        ct = wb.wholebody_ct(ct_grid, wb.lesions_at(0))
        ct_series = SeriesInfo(demo_uid(seed, name, "ct"), "CT", 1, "CT AC", frame, pet_time - timedelta(minutes=2))
        files += write_datasets(series_datasets(ct.image, ct.truth.affine, study, ct_series, seed=seed), out / name, "CT-")
    return DemoStudy(name, out / name, study.study_instance_uid, when.strftime("%Y%m%d"), len(files),
                     "no_suitable_series")


HALF_BODY = replace(wb.GRIDS[("PT", "small")], shape=(85, 96, 96))  # 340 mm: the trunk only


def negative_pet_studies(out: Path) -> list[DemoStudy]:
    return [write_pet_study(out, "pet-nac", corrected=["DECY", "NORM"]),
            write_pet_study(out, "pet-without-ct", with_ct=False),
            write_pet_study(out, "pet-half-body", pet_grid=HALF_BODY)]
