"""The demo patient of the brain-metastases route: a baseline and two follow-ups
whose lesions shrink (partial response) then grow again (progression against the nadir).

Each study is one post-gadolinium 3D T1 brain MR (MNI152 background, enhancing
ellipsoids) written as DICOM under `<out>/<name>/`, with `truth.json` (the lesions'
true diameters in patient LPS mm) beside it in `<out>/<name>.truth/`. Two extra studies exercise the "nothing to
report" paths: `no-lesion` (a clean brain) and `thick-slices` (a post-contrast 3D
T1 reformatted at 5 mm, which the pipeline's series selection refuses).

The study dates, lesion sizes and the expected RANO-BM categories are part of the
design (EXPECTED); everything is SYNTHETIC.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from daemon.demo.dicom import SeriesInfo, StudyInfo, demo_uid, series_datasets, write_datasets
from daemon.demo.phantom import SYNTHETIC_NOTE, Ellipsoid, Grid, Pose, brain_mr_phantom
from daemon.demo.truth import truth_file

Size = Literal["small", "full"]

GRIDS: dict[Size, Grid] = {
    # 1 mm in plane (the diameters are read in plane), 2 mm slices: ~3 M voxels
    "small": Grid(shape=(80, 200, 176), spacing=(2.0, 1.0, 1.0)),
    # the seed study's acquisition: 512 x 512 x 208 at 0.5 x 0.5 x 1 mm
    "full": Grid(shape=(208, 512, 512), spacing=(1.0, 0.5, 0.5)),
}
TIMEPOINTS = ("baseline", "followup-1", "followup-2")
DATES = (datetime(2025, 1, 13, 9, 0), datetime(2025, 4, 14, 9, 30), datetime(2025, 7, 15, 10, 0))
# small repositioning between visits (the node has no prior images to register with
# when priors come from the database; tracking then compares positions as they are)
POSES = (Pose(), Pose((1.0, 0.0, 1.5), (2.0, -1.5, 1.0)), Pose((-1.0, 1.0, 0.0), (-1.5, 2.0, -1.0)))
# lesion -> (template, diameter scale per timepoint)
SCRIPT: dict[str, tuple[Ellipsoid, tuple[float, float, float]]] = {
    "M1": (Ellipsoid("M1", (-32.0, 5.0, 18.0), (11.0, 9.5, 10.0), (0.0, 0.0, 20.0)), (1.0, 0.55, 0.9)),
    "M2": (Ellipsoid("M2", (34.0, -28.0, 6.0), (8.0, 7.0, 7.5)), (1.0, 0.6, 0.85)),
}
EXPECTED = ("BASELINE", "PR", "PD")  # RANO-BM, by design of SCRIPT (see rules/rano_bm.yaml)
SERIES_NUMBER = 7


@dataclass(frozen=True)
class DemoStudy:
    name: str
    folder: Path
    study_instance_uid: str
    study_date: str  # YYYYMMDD
    files: int
    expected: str  # RANO-BM category, or "no_lesion" / "no_suitable_series"
    # other assessments' designed categories, criterion -> category (e.g. {"CHUN": "optimal"})
    also_expected: tuple[tuple[str, str], ...] = ()


def _study(seed: int, name: str, when: datetime) -> StudyInfo:
    return StudyInfo(
        study_instance_uid=demo_uid(seed, "rano-demo", name, "study"),
        study_datetime=when,
        patient_id=f"NADIR-DEMO-BM-{seed:03d}",
        patient_name="DEMO^BRAIN^METS",
        accession_number=f"BM{seed % 1000:03d}{name[:1].upper()}{name[-1]}",
        study_id=name[-1],
        description="MR brain with gadolinium",
        body_part="BRAIN",
    )


def _series(seed: int, name: str, when: datetime, description: str) -> SeriesInfo:
    return SeriesInfo(
        series_instance_uid=demo_uid(seed, "rano-demo", name, "series"),
        modality="MR",
        series_number=SERIES_NUMBER,
        description=description,
        frame_of_reference_uid=demo_uid(seed, "rano-demo", name, "for"),
        series_datetime=when + timedelta(minutes=25),
        image_type=("ORIGINAL", "PRIMARY", "M", "ND"),
        contrast_agent="Gadoterate meglumine",
    )


def write_study(
    out: Path, name: str, lesions: list[Ellipsoid], when: datetime, pose: Pose, grid: Grid,
    seed: int, expected: str, description: str = "T1 MPRAGE 3D post-Gd",
) -> DemoStudy:
    folder = out / name
    study = _study(seed, name, when)
    series = _series(seed, name, when, description)
    ph = brain_mr_phantom(grid, lesions, pose, seed=seed * 100 + len(name))
    paths = write_datasets(series_datasets(ph.image, ph.truth.affine, study, series, seed=seed), folder, "MR-")
    truth = {
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "study_instance_uid": study.study_instance_uid,
        "study_date": when.strftime("%Y%m%d"),
        "patient_id": study.patient_id,
        "expected": expected,
        "lesions": [
            {k: v for k, v in asdict(les).items() if k not in ("axes",)} for les in ph.truth.lesions
        ],
    }
    truth_file(folder).parent.mkdir(parents=True, exist_ok=True)
    truth_file(folder).write_text(json.dumps(truth, indent=1))
    return DemoStudy(name, folder, study.study_instance_uid, when.strftime("%Y%m%d"), len(paths), expected)


def write_timepoints(out: Path, size: Size = "small", seed: int = 1) -> list[DemoStudy]:
    """The baseline and the two follow-ups (shrink, then grow)."""
    grid = GRIDS[size]
    written = []
    for t, name in enumerate(TIMEPOINTS):
        lesions = [tpl.scaled(scales[t]) for tpl, scales in SCRIPT.values()]
        written.append(write_study(out, name, lesions, DATES[t], POSES[t], grid, seed, EXPECTED[t]))
    return written


def write_negative_cases(out: Path, seed: int = 1) -> list[DemoStudy]:
    """A clean brain (the model finds nothing) and a 5 mm reformat (no suitable series).

    They belong to other demo patients (seed + 1, seed + 2) so that they do not
    disturb the follow-up of the first.
    """
    when = DATES[0]
    clean = write_study(out, "no-lesion", [], when, Pose(), GRIDS["small"], seed + 1, "no_lesion")
    thick_grid = Grid(shape=(30, 200, 176), spacing=(5.0, 1.0, 1.0))
    lesions = [tpl for tpl, _ in SCRIPT.values()]
    thick = write_study(out, "thick-slices", lesions, when, Pose(), thick_grid, seed + 2,
                        "no_suitable_series", description="T1 3D post-Gd MPR 5mm")
    return [clean, thick]
