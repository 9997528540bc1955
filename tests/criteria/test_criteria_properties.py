"""Properties of the lesion-based criteria, checked with hypothesis on synthetic lesions.

- the order of the lesions never changes a result;
- scaling every follow-up diameter down never worsens the category, up never improves it
  (one follow-up: with several, RECIST's reappearance-after-CR rule is deliberately not monotone);
- an unequivocal new lesion always gives progression (RECIST, RANO-BM, PERCIST);
- the percentages agree with the sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.criteria import percist, rano_bm, recist
from daemon.criteria.assessment import Assessment
from daemon.criteria.inputs import LesionInput, NewLesion, NonTarget, TimepointInput
from daemon.criteria.rules import RuleSet, load_rules

RULES: RuleSet = load_rules()
FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
RANK = {"CR": 0, "PR": 1, "SD": 2, "PD": 3}

mm = st.integers(0, 800).map(lambda x: x / 10)
big_mm = st.integers(100, 800).map(lambda x: x / 10)


@st.composite
def lesion_sets(draw: st.DrawFn) -> tuple[list[tuple[str, bool, str]], list[float], list[float]]:
    n = draw(st.integers(1, 5))
    nodes = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    defs = [(f"L{i}", node, f"organ{i}") for i, node in enumerate(nodes)]
    base = [draw(st.integers(150, 800).map(lambda x: x / 10)) if node else draw(big_mm) for node in nodes]
    follow = draw(st.lists(mm, min_size=n, max_size=n))
    return defs, base, follow


def make(defs: Sequence[tuple[str, bool, str]], values: Sequence[float], label: str, **ctx: Any) -> TimepointInput:
    lesions = tuple(
        LesionInput(i, site=site, is_node=node, long_axis_mm=None if node else v, short_axis_mm=v if node else None)
        for (i, node, site), v in zip(defs, values, strict=True)
    )
    return TimepointInput(label, lesions, **ctx)


def assess_with(name: str) -> Callable[[Sequence[TimepointInput]], Assessment]:
    if name == "recist":
        return lambda tps: recist.assess(tps, RULES.recist)
    return lambda tps: rano_bm.assess(tps, RULES.rano_bm)


def rano_defs(defs: Sequence[tuple[str, bool, str]]) -> list[tuple[str, bool, str]]:
    return [(i, False, "brain") for i, _, _ in defs]


def summary(a: Assessment) -> list[tuple[str, dict[str, float | None]]]:
    return [(t.category, t.numbers) for t in a.timepoints]


@pytest.mark.parametrize("criterion", ["recist", "rano_bm"])
@FAST
@given(data=lesion_sets(), order=st.randoms(use_true_random=False))
def test_lesion_order_never_changes_the_result(criterion: str, data: Any, order: Any) -> None:
    defs, base, follow = data
    if criterion == "rano_bm":
        defs = rano_defs(defs)
    run = assess_with(criterion)
    seq = [make(defs, base, "b"), make(defs, follow, "f")]
    shuffled = []
    for tp in seq:
        lesions = list(tp.lesions)
        order.shuffle(lesions)
        shuffled.append(TimepointInput(tp.label, tuple(lesions)))
    assert summary(run(seq)) == summary(run(shuffled))


@pytest.mark.parametrize("criterion", ["recist", "rano_bm"])
@FAST
@given(data=lesion_sets(), factor=st.integers(1, 99).map(lambda x: x / 100))
def test_smaller_follow_up_never_worsens_larger_never_improves(criterion: str, data: Any, factor: float) -> None:
    defs, base, follow = data
    if criterion == "rano_bm":
        defs = rano_defs(defs)
    run = assess_with(criterion)
    nontarget = NonTarget.NON_CR_NON_PD  # keeps CR and PR apart only by the targets
    original = run([make(defs, base, "b"), make(defs, follow, "f", nontarget=nontarget)]).category
    down = run([make(defs, base, "b"), make(defs, [v * factor for v in follow], "f", nontarget=nontarget)]).category
    up = run([make(defs, base, "b"), make(defs, [v / factor for v in follow], "f", nontarget=nontarget)]).category
    assert RANK[down] <= RANK[original] <= RANK[up]


@pytest.mark.parametrize("criterion", ["recist", "rano_bm"])
@FAST
@given(data=lesion_sets())
def test_a_new_lesion_is_always_progression(criterion: str, data: Any) -> None:
    defs, base, follow = data
    if criterion == "rano_bm":
        defs = rano_defs(defs)
    a = assess_with(criterion)([make(defs, base, "b"), make(defs, follow, "f", new_lesion=NewLesion.UNEQUIVOCAL)])
    assert a.category == "PD"


@FAST
@given(base=st.integers(10, 300).map(lambda x: x / 10), now=st.integers(0, 300).map(lambda x: x / 10))
def test_percist_new_lesion_is_always_progression(base: float, now: float) -> None:
    tps = [percist.PetTimepoint("b", liver_sul_mean=0.5, liver_sul_sd=0.1, hottest_sulpeak=base),
           percist.PetTimepoint("f", liver_sul_mean=0.5, liver_sul_sd=0.1, hottest_sulpeak=now, new_lesion=True)]
    assert percist.assess(tps, RULES.percist.percist).category == "PMD"


@pytest.mark.parametrize("criterion", ["recist", "rano_bm"])
@FAST
@given(data=lesion_sets(), more=st.lists(mm, min_size=5, max_size=5))
def test_percentages_agree_with_the_sums(criterion: str, data: Any, more: list[float]) -> None:
    defs, base, follow = data
    if criterion == "rano_bm":
        defs = rano_defs(defs)
    second = more[: len(defs)]
    a = assess_with(criterion)([make(defs, base, "b"), make(defs, follow, "f1"), make(defs, second, "f2")])
    baseline = a.timepoints[0].numbers["sum_mm"]
    assert baseline is not None
    for t in a.timepoints[1:]:
        s, nadir = t.numbers["sum_mm"], t.numbers["nadir_mm"]
        assert s is not None and nadir is not None
        assert t.numbers["pct_vs_baseline"] == pytest.approx((s - baseline) / baseline * 100, abs=1e-9)
        if nadir:
            assert t.numbers["pct_vs_nadir"] == pytest.approx((s - nadir) / nadir * 100, abs=1e-9)
        else:
            assert t.numbers["pct_vs_nadir"] is None
    assert a.timepoints[2].numbers["nadir_mm"] == min(a.timepoints[0].numbers["sum_mm"] or 0,
                                                      a.timepoints[1].numbers["sum_mm"] or 0)
