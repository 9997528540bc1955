"""PERCIST 1.0 branches and SUV/SUL from header values (synthetic header values)."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest

from daemon.criteria import percist, suv
from daemon.criteria.inputs import LesionInput
from daemon.criteria.params import PercistParams, SuvParams
from daemon.criteria.rules import load_rules
from daemon.volume import PetHeader


@pytest.fixture(scope="module")
def pp() -> PercistParams:
    return load_rules().percist.percist


@pytest.fixture(scope="module")
def sp() -> SuvParams:
    return load_rules().percist.suv


BASE = percist.PetTimepoint("b", liver_sul_mean=2.0, liver_sul_sd=0.3, hottest_sulpeak=8.0, uptake_time_min=60)


def fu(**kw: object) -> percist.PetTimepoint:
    values: dict[str, object] = {"liver_sul_mean": 2.0, "liver_sul_sd": 0.3, "uptake_time_min": 60}
    values.update(kw)
    return percist.PetTimepoint("f", **values)  # type: ignore[arg-type]


def cat(pp: PercistParams, *tps: percist.PetTimepoint) -> str:
    return percist.assess([BASE, *tps] if tps[0] is not BASE else list(tps), pp).category


def test_threshold_falls_back_to_blood_pool(pp: PercistParams) -> None:
    assert percist.threshold(pp, fu(liver_abnormal=True, blood_pool_sul_mean=1.5, blood_pool_sul_sd=0.2)) == Fraction(17, 5)
    assert percist.threshold(pp, fu(liver_sul_mean=None)) is None
    a = percist.assess([percist.PetTimepoint("b", hottest_sulpeak=5), fu(hottest_sulpeak=2)], pp)
    assert a.category == "NE" and a.timepoints[0].checks["measurable"] is False


def test_categories(pp: PercistParams) -> None:
    assert cat(pp, fu(hottest_sulpeak=None, all_lesions_at_background=True)) == "CMR"
    assert cat(pp, fu(hottest_sulpeak=None)) == "NE"
    assert cat(pp, fu(hottest_sulpeak=8.5, tlg=200), ) == "SMD"
    tlg_base = percist.PetTimepoint("b", liver_sul_mean=2.0, liver_sul_sd=0.3, hottest_sulpeak=8.0, tlg=100)
    assert percist.assess([tlg_base, fu(hottest_sulpeak=8.0, tlg=180)], pp).category == "PMD"
    assert percist.assess([tlg_base, fu(hottest_sulpeak=7.9, tlg=180)], pp).category == "SMD"
    assert cat(pp, fu(hottest_sulpeak=4.0, recist_pd=True)) == "SMD"
    assert cat(pp, fu(hottest_sulpeak=1.5)) == "PMR"  # below liver but background not confirmed
    lesions = (LesionInput("L1", uptake={"sul_peak": 9.0}), LesionInput("L2"))
    assert cat(pp, fu(lesions=lesions)) == "SMD"


def test_inclusive_progression_is_a_setting(pp: PercistParams) -> None:
    exact = fu(hottest_sulpeak=10.4)  # +30 %, +2.4
    assert cat(pp, exact) == "SMD"
    assert percist.assess([BASE, exact], pp.model_copy(update={"pmd_inclusive": True})).category == "PMD"


def test_comparability_and_uptake_window(pp: PercistParams) -> None:
    a = percist.assess([BASE, fu(hottest_sulpeak=7.0, uptake_time_min=80)], pp)
    assert a.timepoints[1].checks["comparability_warning"] is True
    assert a.flags == ("comparability_warning", "uptake_window_warning")
    assert "uptake times differ by 20 min" in a.reasons[1]
    b = percist.assess([BASE, fu(hottest_sulpeak=7.0, uptake_time_min=70)], pp)
    assert b.flags == ()


def test_zero_baseline_uptake_has_no_percentage(pp: PercistParams) -> None:
    zero = percist.PetTimepoint("b", liver_sul_mean=0, liver_sul_sd=0, hottest_sulpeak=0)
    a = percist.assess([zero, fu(hottest_sulpeak=3.0, liver_sul_mean=0)], pp)
    assert a.category == "SMD" and a.numbers["pct_vs_baseline"] is None


def test_percist_needs_a_baseline(pp: PercistParams) -> None:
    with pytest.raises(ValueError, match="at least the baseline"):
        percist.assess([], pp)


def header(**kw: object) -> suv.SuvInputs:
    values: dict[str, object] = dict(
        units="BQML", decay_correction="START", injected_dose_bq=370e6, half_life_s=6586.2,
        injection_time=datetime(2024, 1, 15, 9, 30), reference_time=datetime(2024, 1, 15, 10, 30),
        weight_kg=75.0, height_m=1.75, sex="M", corrected_image=("ATTN", "DECY"),
    )
    values.update(kw)
    return suv.SuvInputs(**values)  # type: ignore[arg-type]


def test_suv_factors_and_rejections(sp: SuvParams) -> None:
    f = suv.suv_factors(header(), sp)
    assert f.delta_t_s == 3600 and round(f.suv_per_bqml * 20000, 3) == 5.922
    assert f.lbm_kg is not None and round(f.lbm_kg, 2) == 58.08
    admin = suv.suv_factors(header(decay_correction="ADMIN"), sp)
    assert admin.delta_t_s == 0 and admin.decayed_dose_bq == 370e6
    assert suv.suv_factors(header(units="GML"), sp).suv_per_bqml == 1.0
    assert suv.suv_factors(header(sex="O"), sp).sul_per_bqml is None
    late = suv.suv_factors(header(reference_time=datetime(2024, 1, 15, 17, 0)), sp)
    assert late.warnings and "outside" in late.warnings[0]
    for bad, message in [
        (header(units="CNTS"), "Units"), (header(corrected_image=("ATTN",)), "CorrectedImage lacks DECY"),
        (header(decay_correction="NONE"), "DecayCorrection"), (header(weight_kg=None), "PatientWeight"),
        (header(injected_dose_bq=0), "must be positive"),
    ]:
        with pytest.raises(suv.SuvError, match=message):
            suv.suv_factors(bad, sp)


def test_pet_header_dataclass_is_accepted(sp: SuvParams) -> None:
    h = PetHeader(units="BQML", decay_correction="START", injected_dose_bq=250e6, half_life_s=6586.2,
                  injection_time=datetime(2024, 3, 1, 8, 15), reference_time=datetime(2024, 3, 1, 9, 20),
                  weight_kg=62.0, height_m=1.63, sex="F")
    f = suv.suv_factors(h, sp)
    assert f.lbm_kg is not None and round(f.lbm_kg, 2) == 39.71


def test_james_lean_body_mass_is_an_option(sp: SuvParams) -> None:
    james = sp.model_copy(update={"lbm_formula": "james"})
    assert round(suv.lean_body_mass(james, 75, 1.75, "M"), 2) == round(1.10 * 75 - 128 * (75 / 175) ** 2, 2)
    assert round(suv.lean_body_mass(james, 62, 1.63, "F"), 2) == round(1.07 * 62 - 148 * (62 / 163) ** 2, 2)


def test_dicom_times(sp: SuvParams) -> None:
    assert suv.parse_dt("20240115093000.5") == datetime(2024, 1, 15, 9, 30, 0, 500000)
    assert suv.parse_dt("20240115") == datetime(2024, 1, 15)
    assert suv.parse_dt("202401151030+0100") == datetime(2024, 1, 15, 10, 30)
    with pytest.raises(suv.SuvError, match="not a DICOM date-time"):
        suv.parse_dt("2024-01-15")
    ref = datetime(2024, 1, 15, 0, 40)
    assert suv.injection_datetime(None, "233000", "20240115", ref) == datetime(2024, 1, 14, 23, 30)
    assert suv.injection_datetime(None, "003000", "20240115", ref) == datetime(2024, 1, 15, 0, 30)
    with pytest.raises(suv.SuvError, match="no RadiopharmaceuticalStart"):
        suv.injection_datetime(None, None, "20240115")
    series = datetime(2024, 1, 15, 10, 0)
    assert suv.scan_reference_time(series, [])[1] == "SeriesDateTime"


def test_exploratory_sum_of_the_hottest_lesions(pp: PercistParams) -> None:
    peaks = [("a", "liver", 9), ("b", "liver", 8), ("c", "liver", 7), ("d", "lung", 6), ("e", "bone", 5),
             ("f", "node", 4), ("g", "node", 3.5)]
    lesions = tuple(LesionInput(i, site=s, uptake={"sul_peak": v}) for i, s, v in peaks)
    tp = fu(lesions=lesions)
    assert percist.hottest_sum(pp, tp) == 9 + 8 + 6 + 5 + 4
    assert percist.hottest_sum(pp, fu()) is None
