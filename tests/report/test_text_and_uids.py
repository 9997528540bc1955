"""Pure parts: deterministic UIDs, 99NADIR codes, the impression in English and French."""

from __future__ import annotations

from datetime import date

import pytest

from daemon.config import DEFAULT_TEMPLATES_DIR, ReportSettings
from daemon.criteria.assessment import Assessment, Citation, TimepointResult
from daemon.findings import Timepoint
from daemon.report import codes as nc
from daemon.report.inputs import Outcome, ReportRequest
from daemon.report.text import render_impression
from daemon.report.uids import lesion_uid, series_uid, sop_uid, uid_from


def test_uids_deterministic_valid_and_distinct() -> None:
    a = sop_uid("1.2.3", "route", "sr", "0.1.0", 1, 0)
    assert a == sop_uid("1.2.3", "route", "sr", "0.1.0", 1, 0)
    assert a.startswith("2.25.") and len(a) <= 64 and all(p.isdigit() for p in a.split("."))
    others = {
        sop_uid("1.2.3", "route", "sr", "0.1.0", 1, 1),  # correction
        sop_uid("1.2.3", "route", "sr", "0.2.0", 1, 0),  # new software
        sop_uid("1.2.3", "other", "sr", "0.1.0", 1, 0),  # other route
        sop_uid("1.2.3", "route", "seg", "0.1.0", 1, 0),  # other kind
        series_uid("1.2.3", "route", "sr", "0.1.0"),
        lesion_uid("P1", "1.2.3", "route", 1),
    }
    assert a not in others and len(others) == 6
    with pytest.raises(ValueError):
        series_uid("1.2.3", "route", "pdf", "0.1.0")
    assert uid_from("x") != uid_from("y")


def test_category_codes_are_private_with_meanings() -> None:
    assert nc.category_code("PD") == nc.nadir("PD", "Progressive disease")
    assert nc.category_code("PMR").meaning == "Partial metabolic response"
    odd = nc.category_code("radionecrosis_favoured")
    assert odd.scheme_designator == "99NADIR" and odd.value == "RADIONECROSIS_FA" and odd.meaning == "Radionecrosis favoured"
    assert nc.criterion_code("RECIST1.1").value == "126081"
    assert nc.criterion_code("PERCIST1.0").scheme_designator == "99NADIR"


def _req(assessment: Assessment | None, outcome: Outcome = Outcome.MEASURED, reason: str = "") -> ReportRequest:
    return ReportRequest(
        route="ct-recist", source_images=(), timepoint=Timepoint("1.2.3", date(2026, 3, 1), ()),
        outcome=outcome, assessment=assessment, reason=reason,
    )


RECIST = Assessment(
    criterion="RECIST1.1",
    citation=Citation("Eisenhauer EA et al. Eur J Cancer 2009;45:228-247", "10.1016/j.ejca.2008.10.026"),
    category="PR",
    timepoints=(
        TimepointResult("baseline", "BASELINE", {"sum_mm": 100.0}),
        TimepointResult("fu1", "PR", {"sum_mm": 70.0, "nadir_mm": 100.0, "pct_vs_baseline": -30.0, "pct_vs_nadir": -30.0},
                        nadir_timepoint="baseline"),
    ),
    reasons=("sum -30.0 % vs baseline (<= -30 %)",),
)


def test_english_and_french_impressions() -> None:
    en = render_impression(_req(RECIST), "en", DEFAULT_TEMPLATES_DIR)
    assert en.line == (
        "RECIST1.1: partial response (PR). Sum of diameters 70.0 mm; baseline 100.0 mm (-30.0%); "
        "nadir 100.0 mm (baseline), -30.0% vs nadir."
    )
    assert "doi:10.1016/j.ejca.2008.10.026" in en.details and "not verified by a physician" in en.details
    fr = render_impression(_req(RECIST), "fr", DEFAULT_TEMPLATES_DIR)
    assert fr.line.startswith("RECIST1.1 : réponse partielle (PR). Somme des diamètres 70,0 mm ; référence 100,0 mm (-30,0 %)")
    assert "non validé par un médecin" in fr.details


def test_outcome_sentences() -> None:
    d = DEFAULT_TEMPLATES_DIR
    assert render_impression(_req(None, Outcome.NO_LESION), "en", d).line == "No lesion found."
    assert render_impression(_req(None, Outcome.NO_SUITABLE_SERIES, "no portal-venous CT"), "fr", d).line == (
        "Aucune série exploitable pour ct-recist : non évalué (no portal-venous CT)."
    )
    ne = render_impression(_req(None, Outcome.NOT_EVALUABLE, "target lesion not imaged"), "en", d).line
    assert ne == "ct-recist: not evaluable (NE): target lesion not imaged."
    with pytest.raises(ValueError):
        render_impression(_req(None), "de", d)


def test_language_per_route() -> None:
    s = ReportSettings(language="en", route_languages={"brain-fr": "fr"})
    assert s.language_for("brain-fr") == "fr" and s.language_for("other") == "en"
