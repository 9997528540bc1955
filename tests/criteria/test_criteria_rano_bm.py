"""RANO-BM branches the worked cases do not reach: steroids, clinical status, volumes."""

from __future__ import annotations

import pytest

from daemon.criteria import rano_bm
from daemon.criteria.inputs import Clinical, LesionInput, NonTarget, SteroidTrend, TimepointInput
from daemon.criteria.params import RanoBmParams
from daemon.criteria.rules import load_rules


@pytest.fixture(scope="module")
def params() -> RanoBmParams:
    return load_rules().rano_bm


def les(lesion_id: str, mm: float | None, **kw: object) -> LesionInput:
    return LesionInput(lesion_id, long_axis_mm=mm, **kw)  # type: ignore[arg-type]


def tp(label: str, *lesions: LesionInput, **ctx: object) -> TimepointInput:
    return TimepointInput(label, lesions, **ctx)  # type: ignore[arg-type]


def test_lesion_values(params: RanoBmParams) -> None:
    assert rano_bm.lesion_value(params, les("A", None, too_small=True)) == 5
    assert rano_bm.lesion_value(params, les("A", None, fragments_mm=(6.5, 4))) == 10.5
    assert rano_bm.lesion_value(params, les("A", 12, not_assessed=True)) is None


def test_measurability_and_baseline_flags(params: RanoBmParams) -> None:
    base = tp("b", les("A", 12, short_axis_mm=4), les("B", 11), slice_thickness_mm=5, slice_gap_mm=1)
    assert not rano_bm.measurable(params, base.lesions[0], base)  # perpendicular 4 < 5
    assert not rano_bm.measurable(params, base.lesions[1], base)  # 11 < 2 x (5 + 1)
    assert rano_bm.measurable(params, les("C", 12, short_axis_mm=6), tp("b"))
    six = [les(f"L{i}", 20) for i in range(6)]
    a = rano_bm.assess([tp("b", *six), tp("f", *six)], params)
    assert a.timepoints[0].flags == ("too_many_targets",)
    a = rano_bm.assess([base, tp("f", les("A", 12), les("B", 11))], params)
    assert a.timepoints[0].flags == ("target_not_measurable_at_baseline",)
    assert a.timepoints[0].checks["near_threshold"] and a.timepoints[1].checks["near_threshold"]


def test_steroid_trend_given_as_words(params: RanoBmParams) -> None:
    seq = [tp("b", les("A", 20)), tp("f", les("A", 0), steroid_trend=SteroidTrend.PHYSIOLOGICAL)]
    assert rano_bm.assess(seq, params).category == "CR"
    seq = [tp("b", les("A", 20)), tp("f", les("A", 0), steroid_trend=SteroidTrend.STABLE)]
    assert rano_bm.assess(seq, params).category == "PR"
    seq = [tp("b", les("A", 20)), tp("f", les("A", 18), steroid_trend=SteroidTrend.INCREASED)]
    a = rano_bm.assess(seq, params)
    assert a.category == "SD" and a.flags == ("steroid_increase",)


def test_steroid_reference_previous_is_a_setting(params: RanoBmParams) -> None:
    seq = [
        tp("b", les("A", 20), steroid_dose_mg_day=8),
        tp("f1", les("A", 18), steroid_dose_mg_day=2),
        tp("f2", les("A", 18), steroid_dose_mg_day=4),
    ]
    assert rano_bm.assess(seq, params).category == "SD"
    assert rano_bm.assess(seq, params).flags == ()
    previous = params.model_copy(update={"steroid_reference": "previous"})
    assert rano_bm.assess(seq, previous).flags == ("steroid_increase",)


def test_complete_response_blockers(params: RanoBmParams) -> None:
    base = tp("b", les("A", 20), nontarget=NonTarget.NON_CR_NON_PD)
    gone = tp("f", les("A", 0), nontarget=NonTarget.NON_CR_NON_PD)
    assert rano_bm.assess([base, gone], params).category == "PR"
    sick = tp("f", les("A", 0), clinical=Clinical.WORSE_NON_TUMOUR, steroid_dose_mg_day=0)
    a = rano_bm.assess([tp("b", les("A", 20)), sick], params)
    assert a.category == "PR" and "clinical_deterioration_non_tumour" in a.flags
    unknown = rano_bm.assess([tp("b", les("A", 20)), tp("f", les("A", 0))], params)
    assert unknown.category == "CR" and unknown.flags == ("steroid_status_unknown",)


def test_reappearance_after_cr_and_no_imaging(params: RanoBmParams) -> None:
    seq = [
        tp("b", les("A", 20), steroid_dose_mg_day=0),
        tp("f1", les("A", 0), steroid_dose_mg_day=0),
        tp("f2", les("A", 3), imaging_done=False),
        tp("f3", les("A", 3), steroid_dose_mg_day=0),
    ]
    a = rano_bm.assess(seq, params)
    assert [t.category for t in a.timepoints] == ["BASELINE", "CR", "NE", "PD"]
    assert "reappeared" in a.timepoints[3].reasons[0]


def test_volumetric_companion_is_exploratory(params: RanoBmParams) -> None:
    def v(label: str, mm: float, ml: float | None) -> TimepointInput:
        return tp(label, les("A", mm, volume_ml=ml), les("B", 10, volume_ml=1.0))

    seq = [v("b", 20, 4.0), v("f1", 14, 0.75), v("f2", 15, 1.0), v("f3", 16, 2.0625), v("f4", 16, None)]
    a = rano_bm.assess(seq, params)
    vol = [t.details.get("volumetric_response") for t in a.timepoints]
    assert vol == [None, "PR", "SD", "PD", None]
    assert a.timepoints[1].numbers["vol_pct_vs_baseline"] == -65.0
    assert a.timepoints[3].numbers["vol_pct_vs_nadir"] == 75.0
    assert "volumetric_exploratory" in a.timepoints[1].flags
    assert a.timepoints[1].category == "SD"  # the diameter result stays the category
    gone = [tp("b", les("A", 20, volume_ml=2.0)), tp("f1", les("A", 0, volume_ml=0.0)),
            tp("f2", les("A", 4, volume_ml=0.1))]
    assert [t.details.get("volumetric_response") for t in rano_bm.assess(gone, params).timepoints] == [
        None, "CR", "PD"]


def test_invalid_baselines(params: RanoBmParams) -> None:
    with pytest.raises(ValueError, match="at least the baseline"):
        rano_bm.assess([], params)
    with pytest.raises(ValueError, match="needs at least one measurable target"):
        rano_bm.assess([tp("b")], params)
    with pytest.raises(ValueError, match="baseline target A has no measurement"):
        rano_bm.assess([tp("b", les("A", None))], params)
    with pytest.raises(ValueError, match="sum of the target diameters is 0"):
        rano_bm.assess([tp("b", les("A", 0))], params)


def test_single_lesion_reference_is_a_setting(params: RanoBmParams) -> None:
    # nadir sum 30 at f1 (A 12 there); A itself was smallest (8) at baseline
    seq = [tp("b", les("A", 8), les("B", 30)), tp("f1", les("A", 12), les("B", 18)),
           tp("f2", les("A", 16), les("B", 20))]
    a = rano_bm.assess(seq, params)
    assert a.numbers["max_single_lesion_increase_vs_nadir_mm"] == 4.0 and a.category == "SD"
    own = params.model_copy(update={"single_lesion_reference": "lesion_smallest"})
    b = rano_bm.assess(seq, own)
    assert b.numbers["max_single_lesion_increase_vs_nadir_mm"] == 8.0 and b.category == "PD"


def test_volumetric_label_follows_the_rules_file(params: RanoBmParams) -> None:
    seq = [tp("b", les("A", 20, volume_ml=4.0)), tp("f", les("A", 12, volume_ml=1.0))]
    vol = params.volumetric.model_copy(update={"exploratory": False})
    a = rano_bm.assess(seq, params.model_copy(update={"volumetric": vol}))
    assert a.details["volumetric_response"] == "PR" and a.flags == ()


def test_treatment_effect_names_the_treated_lesion_that_grew_not_the_untreated(params: RanoBmParams) -> None:
    """Both lesions grow >= 5 mm (PD); only A was irradiated, 90 days before: A is flagged, B is not."""
    seq = [tp("b", les("A", 20), les("B", 15)),
           tp("f", les("A", 27, treated_field=True, days_since_treatment=90), les("B", 21))]
    r = rano_bm.assess(seq, params).timepoints[1]
    assert r.category == "PD" and "possible_treatment_effect" in r.flags
    assert r.details["treatment_effect_lesions"] == "A"
    said = " ".join(r.reasons)
    assert "untreated B also grew" in said and "radionecrosis versus progression" in said
    assert "radionécrose ou progression" in r.details["treatment_effect_question_fr"]


def test_treatment_effect_window_and_dates(params: RanoBmParams) -> None:
    def follow(days: int | None, mm: float = 27) -> rano_bm.TimepointResult:
        seq = [tp("b", les("A", 20), les("B", 15)),
               tp("f", les("A", mm, treated_field=True, days_since_treatment=days), les("B", 15))]
        return rano_bm.assess(seq, params).timepoints[1]

    inside = follow(700)  # 24 months = 730.5 days
    assert "possible_treatment_effect" in inside.flags
    assert any("treated lesion(s) only" in r for r in inside.reasons)
    assert "possible_treatment_effect" not in follow(800).flags, "beyond the window"
    assert "possible_treatment_effect" not in follow(-3).flags, "treated after this study"
    assert "possible_treatment_effect" in follow(None).flags, "date unknown: cannot be excluded"
    assert "possible_treatment_effect" not in follow(90, mm=24).flags, "grew < 5 mm"


def test_treatment_effect_without_progression(params: RanoBmParams) -> None:
    """A treated lesion grows 6 mm but the sum stays < +20 % (SD): flagged, the category kept."""
    seq = [tp("b", les("A", 20), les("B", 30), les("C", 30)),
           tp("f", les("A", 26, treated_field=True), les("B", 30), les("C", 30))]
    r = rano_bm.assess(seq, params).timepoints[1]
    assert r.category == "SD" and "possible_treatment_effect" in r.flags
    assert any(x.startswith("treated lesion(s) A grew") and "radionecrosis cannot be excluded" in x
               for x in r.reasons)
