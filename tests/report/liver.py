"""A synthetic liver patient (not patient data): two CT timepoints with RECIST 1.1 and Chun side by side.

The phantom of synthetic.py with CT headers; two liver lesions H1 and H2 whose proposed
Chun groups go 3 -> 1 (optimal response) and 3 -> 2 (incomplete), with the Chun
features the liver route measures (measure/chun_features.py) and the Chun assessment
computed by the real criterion (criteria/chun.py, rules/chun.yaml).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from daemon.config import ReportSettings
from daemon.criteria import chun
from daemon.criteria.assessment import Assessment, Citation, TimepointResult
from daemon.criteria.params import ChunParams
from daemon.criteria.rules import RULES_DIR, load_model
from daemon.findings import Lesion, Timepoint
from daemon.report.bundle import ReportObjects, build_report
from daemon.report.inputs import ModelInfo, ReportRequest
from daemon.report.readback import as_prior
from daemon.volume import Code

from .phantom import OUTPUT, write
from .synthetic import LesionSpec, Study, make_study

ROUTE = "liver-mets-recist"
MODEL = ModelInfo("demo-liver-mets", "0.1.0", "1e" * 32)
LIVER = Code("10200004", "SCT", "Liver")
METASTASIS = Code("128462008", "SCT", "Metastasis")
RECIST = Citation("Eisenhauer EA et al. Eur J Cancer 2009;45:228-247 (RECIST 1.1)", "10.1016/j.ejca.2008.10.026")
THRESHOLDS = {"pr_pct_vs_baseline": -30.0, "pd_pct_vs_nadir": 20.0}

# per proposed group, features as chun_features.py names them (values exact in 4 decimals:
# the SR keeps 4)
FEATURES = {
    "3": {"hu_mean": 62.5, "hu_sd": 18.25, "lesion_to_liver_hu": -41.5, "interface_hu_per_mm": 6.75,
          "rim_vs_core_hu": 22.0, "rim_vs_liver_hu": 8.5},
    "2": {"hu_mean": 44.0, "hu_sd": 11.5, "lesion_to_liver_hu": -63.25, "interface_hu_per_mm": 14.5,
          "rim_vs_core_hu": 9.75, "rim_vs_liver_hu": -30.0},
    "1": {"hu_mean": 21.0, "hu_sd": 6.5, "lesion_to_liver_hu": -88.0, "interface_hu_per_mm": 31.25,
          "rim_vs_core_hu": 1.5, "rim_vs_liver_hu": -72.0},
}
BASIS = {
    "3": "hu_sd 18.2 HU > 15 HU and interface 6.8 HU/mm < 10 HU/mm: group 3 (engineering defaults)",
    "2": "hu_sd 11.5 HU between 8 and 15 HU: group 2 (engineering defaults)",
    "1": "hu_sd 6.5 HU < 8 HU and interface 31.2 HU/mm >= 20 HU/mm, no rim: group 1 (engineering defaults)",
}


@dataclass(frozen=True, eq=False)
class Liver:
    baseline: Study
    followup: Study
    baseline_request: ReportRequest
    followup_request: ReportRequest
    baseline_report: ReportObjects
    followup_report: ReportObjects
    chun: Assessment
    settings: ReportSettings


def _liver_lesions(study: Study, groups: tuple[str, ...]) -> Study:
    """H1, H2... in the liver, each with the Chun features and proposed group of `groups`."""
    lesions = []
    for n, (les, group) in enumerate(zip(study.timepoint.lesions, groups, strict=True), start=1):
        m = dataclasses.replace(
            les.measurements, intensity=dict(FEATURES[group]), ratios={},
            notes={"chun_group": group, "chun_basis": BASIS[group]},
        )
        lesions.append(dataclasses.replace(les, tracking_id=f"H{n}", site="liver", measurements=m))
    tp = dataclasses.replace(study.timepoint, lesions=tuple(lesions))
    return dataclasses.replace(study, timepoint=tp)


def recist(category: str, sums: tuple[float, ...]) -> Assessment:
    results = [TimepointResult("2026-02-02", "BASELINE", {"sum_mm": sums[0]})]
    if len(sums) > 1:
        pct = round((sums[1] - sums[0]) / sums[0] * 100, 1)
        results.append(TimepointResult(
            "2026-05-04", category,
            {"sum_mm": sums[1], "nadir_mm": sums[0], "pct_vs_baseline": pct, "pct_vs_nadir": pct},
            nadir_timepoint="2026-02-02", reasons=(f"sum of diameters {pct:+.1f} % vs baseline (<= -30 %)",),
        ))
    return Assessment.from_timepoints("RECIST1.1", RECIST, tuple(results))


def chun_assessment(baseline: tuple[Lesion, ...], followup: tuple[Lesion, ...]) -> Assessment:
    """What the liver route hands over: the real Chun criterion on the proposed groups."""
    params = load_model(ChunParams, RULES_DIR / "chun.yaml")
    groups = {les.tracking_uid: int(les.measurements.notes["chun_group"]) for les in baseline}
    pairs = [
        chun.ChunLesion(les.tracking_id, groups[les.tracking_uid], int(les.measurements.notes["chun_group"]),
                        group_source="assisting_classifier")
        for les in followup
    ]
    return chun.assess(pairs, params, bevacizumab=False)


def build_liver() -> Liver:
    settings = ReportSettings()
    specs = (LesionSpec((6, 40, 35), 9.0, "liver"), LesionSpec((5, 62, 62), 7.0, "liver"))
    base = _liver_lesions(make_study(specs, date(2026, 2, 2), modality="CT"), ("3", "3"))
    first = base.timepoint.study_instance_uid
    shrunk = (LesionSpec((6, 40, 35), 5.0, "liver"), LesionSpec((5, 62, 62), 5.0, "liver"))
    fu = _liver_lesions(make_study(shrunk, date(2026, 5, 4), first, modality="CT"), ("1", "2"))
    sums = tuple(
        round(sum(les.measurements.long_axis.length_mm for les in s.timepoint.lesions  # type: ignore[union-attr]
                  ), 1)
        for s in (base, fu)
    )
    common = {"route": ROUTE, "model": MODEL, "finding_site": LIVER, "finding": METASTASIS, "thresholds": THRESHOLDS}
    base_req = ReportRequest(
        source_images=base.datasets, timepoint=base.timepoint, volume=base.volume, mask=base.mask,
        assessment=recist("BASELINE", sums[:1]), **common,  # type: ignore[arg-type]
    )
    base_objs = build_report(base_req, settings)
    chun_a = chun_assessment(base.timepoint.lesions, fu.timepoint.lesions)
    fu_req = ReportRequest(
        source_images=fu.datasets, timepoint=fu.timepoint, volume=fu.volume, mask=fu.mask,
        assessment=recist("PR", sums), extra_assessments=(chun_a,), history=(base.timepoint,),
        priors=(as_prior(base_objs.sr),), **common,  # type: ignore[arg-type]
    )
    fu_objs = build_report(fu_req, settings)
    write(base_objs, OUTPUT / "liver-baseline")
    write(fu_objs, OUTPUT / "liver-followup")
    return Liver(base, fu, base_req, fu_req, base_objs, fu_objs, chun_a, settings)


def timepoint_without_chun(tp: Timepoint) -> Timepoint:
    """The same lesions with none of the Chun keys (as the brain route measures them)."""
    lesions = tuple(
        dataclasses.replace(les, measurements=dataclasses.replace(les.measurements, intensity={}, notes={}))
        for les in tp.lesions
    )
    return dataclasses.replace(tp, lesions=lesions)
