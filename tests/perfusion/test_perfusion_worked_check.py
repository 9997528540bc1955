"""perfusion.md §6 worked check (fixture tests/fixtures/perfusion/worked_check.yaml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from daemon.criteria import perfusion as rule
from daemon.criteria.params import PerfusionParams
from daemon.criteria.rules import RulesSource
from daemon.measure.perfusion import InputCurves, curve_values, from_slopes, slope_operator

CASE = yaml.safe_load((Path(__file__).parents[1] / "fixtures" / "perfusion" / "worked_check.yaml").read_text())


def test_worked_check_from_slopes() -> None:
    v = from_slopes(arterial_slope=CASE["arterial_slope_hu_s"], portal_slope=CASE["portal_slope_hu_s"],
                    aortic_peak=CASE["aortic_peak_hu"], portal_peak=CASE["portal_peak_hu"])
    e = CASE["expected"]
    assert v.hap == pytest.approx(e["hap_ml_min_100ml"])
    assert v.hpp == pytest.approx(e["hpp_ml_min_100ml"])
    assert v.tlp == pytest.approx(e["tlp_ml_min_100ml"])
    assert v.hpi == pytest.approx(e["hpi_pct"])
    assert v.hap / 6000 == pytest.approx(e["hap_per_s"])


def test_worked_check_agrees_with_the_rule_engine() -> None:
    params = RulesSource().load(PerfusionParams, "perfusion")
    a = rule.max_slope(params, CASE["arterial_slope_hu_s"], CASE["aortic_peak_hu"], CASE["portal_slope_hu_s"],
                       CASE["portal_peak_hu"])
    assert a.numbers["tlp_ml_min_100ml"] == pytest.approx(CASE["expected"]["tlp_ml_min_100ml"])


def test_worked_check_on_piecewise_linear_curves() -> None:
    """Curves whose steepest arterial and portal slopes are exactly the worked check's."""
    t = np.arange(0.0, 40.0, 1.0)
    aorta = np.interp(t, [0, 5, 10, 20], [0, 300, 0, 0])
    spleen = np.interp(t, [0, 12, 20], [0, 100, 0])  # t_s = 12 s
    portal = np.interp(t, [0, 14, 24, 39], [0, 0, 150, 0])
    tissue = np.interp(t, [0, 4, 9, 14, 18, 39], [0, 0, 6, 6, 9.6, 9.6])  # 1.2 HU/s, then 0.9 HU/s
    v = curve_values(tissue, InputCurves(t, aorta, portal, spleen), window=2)
    assert (v.hap, v.hpp, v.tlp, v.hpi) == pytest.approx((24.0, 36.0, 60.0, 40.0))


def test_slope_operator_is_exact_on_quadratics_with_uneven_times() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 30.0, 50.0])
    c = 3.0 + 2.0 * t - 0.05 * t**2
    assert slope_operator(t, 5) @ c == pytest.approx(2.0 - 0.1 * t)
