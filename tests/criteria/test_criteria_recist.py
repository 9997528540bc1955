"""RECIST 1.1 branches the worked cases do not reach (synthetic lesions, no imaging)."""

from __future__ import annotations

import pytest

from daemon.criteria import recist
from daemon.criteria.inputs import LesionInput, NewLesion, NonTarget, Role, TimepointInput
from daemon.criteria.params import RecistParams
from daemon.criteria.rules import load_rules


@pytest.fixture(scope="module")
def params() -> RecistParams:
    return load_rules().recist


def tp(label: str, *lesions: LesionInput, **ctx: object) -> TimepointInput:
    return TimepointInput(label, lesions, **ctx)  # type: ignore[arg-type]


def ld(lesion_id: str, mm: float | None, site: str = "liver", **kw: object) -> LesionInput:
    return LesionInput(lesion_id, long_axis_mm=mm, site=site, **kw)  # type: ignore[arg-type]


def node(lesion_id: str, sa: float | None, site: str = "node") -> LesionInput:
    return LesionInput(lesion_id, is_node=True, short_axis_mm=sa, site=site)


def test_select_targets_keeps_five_and_two_per_organ(params: RecistParams) -> None:
    lesions = [
        ld("L1", 50, "liver"), ld("L2", 40, "liver"), ld("L3", 30, "liver"),
        ld("P1", 25, "lung_left"), ld("P2", 24, "lung_right"), ld("P3", 23, "lung_left"),
        node("N1", 16), node("N2", 12), ld("S1", 8, "spleen"), ld("B1", 11, "bone"),
    ]
    targets, others = recist.select_targets(lesions, params)
    assert [t.lesion_id for t in targets] == ["L1", "L2", "P1", "P2", "N1"]
    assert {o.lesion_id for o in others} == {"L3", "P3", "N2", "S1", "B1"}
    thick, _ = recist.select_targets([ld("A", 11), ld("B", 12, "lung")], params, slice_thickness_mm=6)
    assert [t.lesion_id for t in thick] == ["B"]  # 2 x 6 mm = 12 mm minimum
    none, _ = recist.select_targets([ld("C", None)], params)
    assert none == ()


def test_baseline_flags(params: RecistParams) -> None:
    base = tp("b", *(ld(f"L{i}", 20) for i in range(6)), ld("S", 8, "spleen"))
    a = recist.assess([base, tp("f", *(ld(f"L{i}", 20) for i in range(6)), ld("S", 8, "spleen"))], params)
    assert set(a.timepoints[0].flags) == {"target_not_measurable_at_baseline", "too_many_targets",
                                          "too_many_targets_in_organ"}
    assert a.category == "SD"


def test_non_target_only_uses_table_2(params: RecistParams) -> None:
    nt = LesionInput("X", role=Role.NON_TARGET)
    rows = [
        (NonTarget.CR, "CR"), (NonTarget.NON_CR_NON_PD, "NON_CR_NON_PD"), (NonTarget.NE, "NE"),
        (NonTarget.NONE, "NE"), (NonTarget.PD, "PD"),
    ]
    for status, want in rows:
        a = recist.assess([tp("b", nt), tp("f", nt, nontarget=status)], params)
        assert a.category == want, status
        assert a.timepoints[1].numbers == {}
    assert recist.assess([tp("b", nt), tp("f", new_lesion=NewLesion.UNEQUIVOCAL)], params).category == "PD"


def test_no_imaging_is_ne_and_equivocal_new_lesion_dates_progression(params: RecistParams) -> None:
    seq = [
        tp("b", ld("A", 30)),
        tp("f1", ld("A", 30), imaging_done=False),
        tp("f2", ld("A", 30), new_lesion=NewLesion.EQUIVOCAL),
        tp("f3", ld("A", 30), new_lesion=NewLesion.EQUIVOCAL),
        tp("f4", ld("A", 30), LesionInput("N9", role=Role.NEW)),
    ]
    a = recist.assess(seq, params)
    assert [t.category for t in a.timepoints] == ["BASELINE", "NE", "SD", "SD", "PD"]
    assert not a.timepoints[1].evaluable
    assert "equivocal_new_lesion" in a.timepoints[2].flags
    assert a.timepoints[4].details["progression_dated_to"] == "f2"


def test_reappearance_after_cr_of_a_node_and_missing_lesions(params: RecistParams) -> None:
    seq = [
        tp("b", ld("A", 20), node("N", 20)),
        tp("f1", ld("A", 0), node("N", 8)),
        tp("f2", ld("A", None, not_assessed=True), node("N", 11)),
    ]
    a = recist.assess(seq, params)
    assert [t.category for t in a.timepoints] == ["BASELINE", "CR", "PD"]
    assert "reappeared" in a.timepoints[2].reasons[0]


def test_nadir_zero_without_prior_cr_uses_the_absolute_rule(params: RecistParams) -> None:
    seq = [
        tp("b", ld("A", 20), nontarget=NonTarget.NON_CR_NON_PD),
        tp("f1", ld("A", 0), nontarget=NonTarget.NON_CR_NON_PD),
        tp("f2", ld("A", 4), nontarget=NonTarget.NON_CR_NON_PD),
        tp("f3", ld("A", 5), nontarget=NonTarget.NON_CR_NON_PD),
    ]
    a = recist.assess(seq, params)
    assert [t.category for t in a.timepoints] == ["BASELINE", "PR", "PR", "PD"]
    assert a.timepoints[3].numbers["pct_vs_nadir"] is None


def test_missing_targets_that_already_prove_pd(params: RecistParams) -> None:
    seq = [tp("b", ld("A", 10), ld("B", 10)), tp("f", ld("A", 26), ld("B", None))]
    a = recist.assess(seq, params)
    assert a.category == "PD" and "measured targets alone" in a.timepoints[1].reasons[0]


def test_invalid_baselines(params: RecistParams) -> None:
    with pytest.raises(ValueError, match="at least the baseline"):
        recist.assess([], params)
    with pytest.raises(ValueError, match="baseline target A has no measurement"):
        recist.assess([tp("b", ld("A", None))], params)
    with pytest.raises(ValueError, match="sum of the target diameters is 0"):
        recist.assess([tp("b", ld("A", 0))], params)
    only = recist.assess([tp("b", ld("A", 12))], params)
    assert only.category == "BASELINE"


def test_reappearance_is_judged_against_the_last_complete_timepoint(params: RecistParams) -> None:
    seq = [tp("b", ld("A", 20)), tp("f1", ld("A", 0)), tp("f2", ld("A", 0), imaging_done=False),
           tp("f3", ld("A", 3))]
    assert [t.category for t in recist.assess(seq, params).timepoints] == ["BASELINE", "CR", "NE", "PD"]
