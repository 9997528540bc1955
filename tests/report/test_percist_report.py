"""The whole-body FDG route's report wording and trend plot: the PERCIST 1.0 impression in
English and French (category, hottest lesion's SULpeak change, liver reference, new lesions)
and the trend of the hottest SULpeak and TMTV over the visits, while the other routes keep
the sum of diameters. SYNTHETIC timepoints; the assessment is the real PercistRule's."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from daemon.config import DEFAULT_TEMPLATES_DIR
from daemon.criteria.rules import RulesSource
from daemon.findings import Calliper, Lesion, LesionKind, Measurements, Timepoint
from daemon.pipelines.wholebody_response import PercistRule
from daemon.report.inputs import ReportRequest
from daemon.report.text import render_impression
from daemon.report.trend import trend_image, trend_numbers
from daemon.volume import ImagePoint, SliceRef, Volume

GRID = Volume(array=np.zeros((2, 2, 2), dtype=np.float32), affine=np.eye(4),
              slices=(SliceRef("1.2.3.1", "1.2.840.10008.5.1.4.1.1.128"), SliceRef("1.2.3.2", "1.2.840.10008.5.1.4.1.1.128")),
              frame_of_reference_uid="1.2")
LIVER = {"liver_sul_mean": "1.6", "liver_sul_sd": "0.2", "uptake_time_min": "60"}


def _lesion(tid: str, peak: float, ml: float, kind: LesionKind = LesionKind.TARGET) -> Lesion:
    m = Measurements(volume_ml=ml, intensity={"sul_peak": peak, "sul_mean": peak * 0.7, "sul_max": peak * 1.1})
    return Lesion(tid, f"2.25.{len(tid)}{int(peak * 10)}", kind, m, site="liver")


def _visits(liver_now: str = "1.6") -> list[Timepoint]:
    return [
        Timepoint("1.1", date(2024, 1, 10), (_lesion("L1", 6.0, 17.0), _lesion("L2", 4.5, 9.0)), dict(LIVER)),
        Timepoint("1.2", date(2024, 3, 10), (_lesion("L1", 3.5, 8.0), _lesion("L2", 2.8, 3.0)), dict(LIVER)),
        Timepoint("1.3", date(2024, 5, 10), (_lesion("L1", 8.5, 20.0), _lesion("L2", 5.0, 10.0),
                                             _lesion("L3", 6.0, 12.0, LesionKind.NEW)),
                  {**LIVER, "liver_sul_mean": liver_now}),
    ]


def _request(n: int, liver_now: str = "1.6") -> ReportRequest:
    visits = _visits(liver_now)
    rule = PercistRule(RulesSource())
    assessment, why = rule.assess(visits[:n], visits[n], GRID)
    assert assessment is not None, why
    return ReportRequest(route="wholebody-fdg-percist", source_images=(), timepoint=visits[n], assessment=assessment,
                         history=tuple(visits[:n]), thresholds=rule.thresholds(), trend="sulpeak_tmtv")


def _baseline_request() -> ReportRequest:
    visits = _visits()
    rule = PercistRule(RulesSource())
    assessment, _ = rule.assess([], visits[0], GRID)
    return ReportRequest(route="wholebody-fdg-percist", source_images=(), timepoint=visits[0], assessment=assessment,
                         thresholds=rule.thresholds(), trend="sulpeak_tmtv")


def _line(req: ReportRequest, lang: str) -> str:
    return render_impression(req, lang, DEFAULT_TEMPLATES_DIR).line


def test_pmr_in_english_says_the_hottest_sulpeak_change_the_liver_and_no_new_lesion() -> None:
    line = _line(_request(1), "en")
    assert line.startswith("PERCIST1.0: partial metabolic response (PMR).")
    assert "Hottest lesion L1 SULpeak 3.5 vs 6.0 at baseline (-41.7%, -2.5 SUL)." in line
    assert "Liver reference SULmean 1.6 (baseline 1.6)." in line
    assert "No new FDG-avid lesion." in line
    assert "Sum of diameters" not in line and " mm" not in line


def test_pmd_in_french_names_the_new_lesion_and_the_liver() -> None:
    line = _line(_request(2), "fr")
    assert line.startswith("PERCIST1.0 : progression métabolique (PMD).")
    assert "Lésion la plus intense L1 : SULpeak 8,5 contre 6,0 à l'examen de référence (+41,7 %, +2,5 SUL)." in line
    assert "Référence hépatique : SULmean 1,6 (examen de référence 1,6)." in line
    assert "1 nouvelle lésion hypermétabolique (L3)." in line
    assert "3 lésions mesurées" not in line  # no long axis measured: the count is of measured lesions


def test_pmd_in_english_and_a_liver_that_moved_is_said_not_comparable() -> None:
    line = _line(_request(2, liver_now="2.4"), "en")
    assert "1 new FDG-avid lesion (L3)." in line
    assert "Liver reference SULmean 2.4 (baseline 1.6), scans not comparable." in line


@pytest.mark.parametrize(("lang", "said"), [
    ("en", "PERCIST1.0: baseline (BASELINE). Hottest lesion L1 SULpeak 6.0, measurable (threshold 2.8 SUL). "
           "Liver reference SULmean 1.6."),
    ("fr", "PERCIST1.0 : examen de référence (BASELINE). Lésion la plus intense L1 : SULpeak 6,0, mesurable "
           "(seuil 2,8 SUL). Référence hépatique : SULmean 1,6."),
])
def test_baseline_says_measurability_against_the_liver(lang: str, said: str) -> None:
    assert _line(_baseline_request(), lang) == said


def test_the_percist_trend_plots_the_hottest_sulpeak_and_tmtv_with_pmr_and_pmd_lines() -> None:
    req = _request(2)
    plot = trend_numbers(req)
    assert plot is not None
    series, lines, axis, _ = plot
    assert series.sums == (6.0, 3.5, 8.5)  # the hottest SULpeak of each visit
    assert series.lesions["L3"] == (None, None, 6.0)
    assert axis.right == (26.0, 11.0, 42.0) and axis.unit == "SUL"  # TMTV: the lesions' volumes
    assert lines.baseline == 6.0 and lines.nadir is None
    assert lines.response_line == pytest.approx(6.0 * 0.7) and lines.progression_line == pytest.approx(6.0 * 1.3)
    image = trend_image(req, {k: k for k in ("baseline", "nadir", "resp", "prog", "hottest", "tmtv", "trend_pet")},
                        "footer")
    assert image is not None and image.shape == (600, 800, 3)


def test_other_routes_keep_the_sum_of_diameters() -> None:
    def axis_lesion(tid: str, mm: float) -> Lesion:
        p = ImagePoint(GRID.slices[0], 1.0, 1.0)
        m = Measurements(long_axis=Calliper(mm, (0.0, 0.0, 0.0), (mm, 0.0, 0.0), p, p))
        return Lesion(tid, "2.25.1", LesionKind.TARGET, m)

    visits = [Timepoint("1.1", date(2024, 1, 1), (axis_lesion("L1", 20.0), axis_lesion("L2", 10.0))),
              Timepoint("1.2", date(2024, 2, 1), (axis_lesion("L1", 12.0), axis_lesion("L2", 6.0)))]
    req = ReportRequest(route="liver", source_images=(), timepoint=visits[1], history=(visits[0],),
                        assessment=_request(1).assessment)
    plot = trend_numbers(req)
    assert plot is not None and plot[0].sums == (30.0, 18.0) and plot[2].unit == "mm" and plot[2].right == ()
