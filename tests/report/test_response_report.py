"""RANO-BM beyond its category in the SR and the en/fr text (issue 19): the lesions in an irradiated
field with plan, date and dose, the possible treatment effect with the rules' question, the
exploratory volumetric companion and the near-threshold review flag. SYNTHETIC phantom."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from daemon.config import ReportSettings
from daemon.criteria import rano_bm
from daemon.criteria.inputs import LesionInput, TimepointInput
from daemon.criteria.rules import load_rules
from daemon.report.bundle import ReportObjects, build_report
from daemon.report.inputs import ReportRequest
from daemon.report.readback import read_report

from .phantom import BRAIN, MODEL, THRESHOLDS
from .synthetic import ROUTE, LesionSpec, make_study
from .validators import dciodvfy, node_ready, pixelmed, read_sr_like_ohif

FIELD = {"rt_field": "PTV_T1", "rt_plan": "SRS 1", "rt_treated_on": "2026-01-20", "rt_dose": "24 Gy in 3 fractions"}


def _walk(items: Any) -> Any:
    for item in items or []:
        yield item
        yield from _walk(item.get("ContentSequence"))


def _group(sr: Dataset, label: str) -> list[Dataset]:
    for item in sr.ContentSequence:
        for group in item.get("ContentSequence", []):
            found = [x for x in _walk(group.get("ContentSequence")) if x.ValueType == "TEXT"
                     and x.ConceptNameCodeSequence[0].CodeValue == "112039" and x.TextValue.endswith(label)]
            if found:
                return list(_walk(group.ContentSequence))
    raise AssertionError(f"no group {label}")


def _coded(items: list[Dataset], meaning: str) -> list[str]:
    return [str(x.ConceptCodeSequence[0].CodeMeaning) for x in items if x.ValueType == "CODE"
            and x.ConceptNameCodeSequence[0].CodeMeaning == meaning]


@pytest.fixture(scope="module")
def reports() -> dict[str, ReportObjects]:
    params = load_rules().rano_bm
    seq = [TimepointInput("2026-01-12", (LesionInput("T1", long_axis_mm=16, volume_ml=1.0),
                                         LesionInput("T2", long_axis_mm=10, volume_ml=0.5))),
           TimepointInput("2026-04-13", (LesionInput("T1", long_axis_mm=22, volume_ml=2.8, treated_field=True,
                                                     days_since_treatment=83),
                                         LesionInput("T2", long_axis_mm=16, volume_ml=1.9)))]
    assessment = rano_bm.assess(seq, params)
    base = make_study((LesionSpec((6, 40, 35), 8.0), LesionSpec((5, 60, 62), 5.0)), date(2026, 1, 12))
    fu = make_study((LesionSpec((6, 40, 35), 11.0), LesionSpec((5, 60, 62), 8.0)), date(2026, 4, 13),
                    base.timepoint.study_instance_uid)
    t1 = fu.timepoint.lesions[0]
    lesions = (replace(t1, measurements=replace(t1.measurements, notes={**t1.measurements.notes, **FIELD})),
               *fu.timepoint.lesions[1:])
    req = ReportRequest(route=ROUTE, model=MODEL, finding_site=BRAIN, thresholds=THRESHOLDS, source_images=fu.datasets,
                        timepoint=replace(fu.timepoint, lesions=lesions), volume=fu.volume, mask=fu.mask,
                        assessment=assessment, history=(base.timepoint,))
    return {lang: build_report(req, ReportSettings(language=lang)) for lang in ("en", "fr")}


def test_the_sr_flags_the_treated_lesion_with_date_and_dose_not_the_untreated(
        reports: dict[str, ReportObjects]) -> None:
    sr = reports["en"].sr
    t1, t2 = _group(sr, "T1"), _group(sr, "T2")
    assert _coded(t1, "Inside an irradiated field") == ["Yes"]
    assert _coded(t1, "Possible treatment effect (radionecrosis not excluded)") == ["Yes"]
    text = [x.TextValue for x in t1 if x.ValueType == "TEXT" and x.ConceptNameCodeSequence[0].CodeValue == "RTFIELD"]
    assert text == ["PTV_T1; RT plan SRS 1; treated 2026-01-20; 24 Gy in 3 fractions"]
    assert not _coded(t2, "Inside an irradiated field") and not _coded(
        t2, "Possible treatment effect (radionecrosis not excluded)")


def test_the_assessment_group_codes_volumetric_near_threshold_and_flags(reports: dict[str, ReportObjects]) -> None:
    group = _group(reports["en"].sr, "RANO-BM assessment")
    assert _coded(group, "Volumetric response (exploratory)") == ["Progressive disease"]
    assert _coded(group, "Near a threshold, review advised") == ["Yes"]
    assert {"possible_treatment_effect", "volumetric_exploratory"} <= set(_coded(group, "Assessment flag"))
    nums = {str(x.ConceptNameCodeSequence[0].CodeMeaning): float(x.MeasuredValueSequence[0].NumericValue)
            for x in group if x.ValueType == "NUM"}
    assert nums["Sum of target volumes"] == pytest.approx(4.7)
    assert nums["Volume percent change from baseline"] == pytest.approx(213.33, abs=0.01)


def test_the_text_asks_the_question_in_each_language(reports: dict[str, ReportObjects]) -> None:
    en, fr = reports["en"].impression, reports["fr"].impression
    assert "Possible treatment effect: T1 grew inside the irradiated field (PTV_T1, 2026-01-20, 24 Gy in 3 " \
           "fractions): radionecrosis versus progression?" in en.line
    assert "T2 grew" not in en.line
    assert "radionecrosis versus progression" in en.details and "Not a diagnosis" in en.details
    assert "Irradiated field: T1 (PTV_T1; RT plan SRS 1; treated 2026-01-20; 24 Gy in 3 fractions)" in en.details
    assert "Volumetric companion (exploratory, not part of RANO-BM 2015): progressive disease (PD)" in en.details
    assert "review advised" in en.details
    assert "radionécrose ou progression ?" in fr.line and "24 Gy en 3 fractions" in fr.line
    assert "Ceci n'est pas un diagnostic" in fr.details and "Variante volumétrique (exploratoire" in fr.details
    assert "relecture conseillée" in fr.details


def test_validators_and_the_ohif_parser_accept_it(reports: dict[str, ReportObjects], tmp_path: Path) -> None:
    path = tmp_path / "sr.dcm"
    reports["fr"].sr.save_as(path, enforce_file_format=True)
    assert not dciodvfy(path).errors
    found = pixelmed(path)
    assert "Found Root Template TID_1500" in found.output and not found.errors, "\n".join(found.errors)
    if node_ready() is None:
        parsed = read_sr_like_ohif(path)
        group = next(m for m in parsed["measurements"] if m["trackingIdentifier"] == "RANO-BM assessment")
        assert "Sum of target volumes" in {n["meaning"] for n in group["measurements"]}


def test_our_reader_reads_it_back_as_a_prior(reports: dict[str, ReportObjects]) -> None:
    back = read_report(reports["en"].sr)
    assert back.category == "PD" and sorted(les.tracking_id for les in back.lesions) == ["T1", "T2"]
