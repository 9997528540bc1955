"""Helpers of the report tests: a synthetic phantom patient at two timepoints, with reports.

Everything here is synthetic (tests/report/synthetic.py); outputs are written under
tests/report/output/ (git-ignored) so a person can open them in a viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from daemon.config import ReportSettings
from daemon.criteria.assessment import Assessment, Citation, TimepointResult
from daemon.report.bundle import ReportObjects, build_report
from daemon.report.inputs import ModelInfo, ReportRequest
from daemon.report.readback import as_prior
from daemon.volume import Code

from .synthetic import ROUTE, LesionSpec, Study, make_study

OUTPUT = Path(__file__).resolve().parent / "output"
MODEL = ModelInfo("unetr-brain-mets", "1.0.0", "0f" * 32)
BRAIN = Code("12738006", "SCT", "Brain")
CITATION = Citation("Lin NU et al. Lancet Oncol 2015;16:e270-e278 (RANO-BM), volumetric variant")
THRESHOLDS = {"pr_pct_vs_baseline": -30.0, "pd_pct_vs_nadir": 20.0}


@dataclass(frozen=True, eq=False)
class Phantom:
    baseline: Study
    followup: Study
    baseline_request: ReportRequest
    followup_request: ReportRequest
    baseline_report: ReportObjects
    followup_report: ReportObjects
    settings: ReportSettings


def baseline_assessment() -> Assessment:
    return Assessment(
        criterion="RANO-BM",
        citation=CITATION,
        category="BASELINE",
        timepoints=(TimepointResult("2026-01-12", "BASELINE", {"sum_mm": 26.0}),),
        reasons=("baseline: 2 target lesions, sum of diameters 26.0 mm",),
    )


def followup_assessment() -> Assessment:
    return Assessment(
        criterion="RANO-BM",
        citation=CITATION,
        category="PD",
        timepoints=(
            TimepointResult("2026-01-12", "BASELINE", {"sum_mm": 26.0}),
            TimepointResult(
                "2026-04-13", "PD",
                {"sum_mm": 32.0, "nadir_mm": 26.0, "pct_vs_baseline": 23.1, "pct_vs_nadir": 23.1, "abs_change_mm": 6.0},
                nadir_timepoint="2026-01-12",
                reasons=("sum of diameters +23.1 % vs nadir (threshold +20 %)",),
            ),
        ),
        reasons=("sum of diameters 32.0 mm is +23.1 % vs the nadir 26.0 mm (threshold +20 %)",),
    )


def write(objs: ReportObjects, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in objs.datasets():
        path = folder / f"{ds.Modality}_{int(ds.SeriesNumber)}_{int(ds.InstanceNumber)}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def build_phantom() -> Phantom:
    # files are overwritten, never the folder emptied: test files run in parallel (xdist) write here
    OUTPUT.mkdir(parents=True, exist_ok=True)
    settings = ReportSettings()
    base = make_study((LesionSpec((6, 40, 35), 8.0), LesionSpec((5, 60, 62), 5.0, "right parietal")), date(2026, 1, 12))
    first = base.timepoint.study_instance_uid
    fu = make_study(
        (LesionSpec((6, 40, 35), 10.0), LesionSpec((5, 60, 62), 6.0, "right parietal")), date(2026, 4, 13), first
    )
    common = {"route": ROUTE, "model": MODEL, "finding_site": BRAIN, "thresholds": THRESHOLDS}
    base_req = ReportRequest(
        source_images=base.datasets, timepoint=base.timepoint, volume=base.volume, mask=base.mask,
        assessment=baseline_assessment(), **common,  # type: ignore[arg-type]
    )
    base_objs = build_report(base_req, settings)
    prior = as_prior(base_objs.sr)  # what the pipeline does with the prior SR (DB or PACS)
    fu_req = ReportRequest(
        source_images=fu.datasets, timepoint=fu.timepoint, volume=fu.volume, mask=fu.mask,
        assessment=followup_assessment(), history=(base.timepoint,), priors=(prior,), **common,  # type: ignore[arg-type]
    )
    fu_objs = build_report(fu_req, settings)
    write(base_objs, OUTPUT / "baseline")
    write(fu_objs, OUTPUT / "followup")
    return Phantom(base, fu, base_req, fu_req, base_objs, fu_objs, settings)
