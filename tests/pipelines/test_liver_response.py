"""RECIST 1.1 and Chun for the liver route (daemon.pipelines.liver_response): target selection,
follow-up categories, the proposed Chun group and response, the regimen warning. Numbers in the
assertions come from rules/recist.yaml and rules/chun.yaml, read here the way the route reads them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from daemon.criteria.params import ChunParams
from daemon.criteria.rules import RULES_DIR, load_model
from daemon.findings import Calliper, Lesion, LesionKind, Measurements, Timepoint
from daemon.measure.lesions import MeasuredLesion
from daemon.pipelines.liver_response import (
    OUTSIDE_FOV,
    RecistRule,
    bevacizumab_mentioned,
    chun_assessment,
    propose_group,
)
from daemon.volume import ImagePoint, SliceRef, Volume

RULE = RecistRule(RULES_DIR)
P = RULE.params
CHUN = load_model(ChunParams, RULES_DIR / "chun.yaml")
REF = SliceRef("1.2.3.4", "1.2.840.10008.5.1.4.1.1.2")


def _volume(slice_mm: float = 2.5, shape: tuple[int, int, int] = (80, 200, 200)) -> Volume:
    """1 mm pixels from (-100, -100, -100): the field of view is about (-100, 100) mm in x and y."""
    affine = np.diag([slice_mm, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-100.0, -100.0, -100.0)
    affine = affine[[2, 1, 0, 3]]  # (k, j, i) -> (x, y, z): i along x, j along y, k along z
    return Volume(array=np.zeros(shape, np.float32), affine=affine, slices=(REF,) * shape[0],
                  frame_of_reference_uid="1.2.3")


def _calliper(mm: float) -> Calliper:
    p = ImagePoint(REF, 0.0, 0.0)
    return Calliper(mm, (0.0, 0.0, 0.0), (mm, 0.0, 0.0), p, p)


def _m(long_mm: float, short_mm: float | None = None, centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
       **notes: str) -> Measurements:
    return Measurements(long_axis=_calliper(long_mm), short_axis=_calliper(short_mm if short_mm else long_mm * 0.8),
                        centroid=centre, max_3d_diameter_mm=long_mm, notes=dict(notes))


def _measured(long_mm: float, short_mm: float | None = None) -> MeasuredLesion:
    box = (slice(0, 1), slice(0, 1), slice(0, 1))
    return MeasuredLesion(1, "lesion", 1, box, np.ones((1, 1, 1), bool), _m(long_mm, short_mm))


def _les(tid: str, kind: LesionKind, long_mm: float, short_mm: float | None = None, site: str = "liver",
         node: bool = False, centre: tuple[float, float, float] = (0.0, 0.0, 0.0), **notes: str) -> Lesion:
    return Lesion(tid, f"2.25.{abs(hash(tid)) % 10**8}", kind, _m(long_mm, short_mm, centre, **notes),
                  site=site, is_node=node)


def _tp(n: int, *lesions: Lesion, **context: str) -> Timepoint:
    return Timepoint(f"1.2.{n}", date(2024, 1 + 3 * n, 1), tuple(lesions), dict(context))


T, NT, NEW = LesionKind.TARGET, LesionKind.NON_TARGET, LesionKind.NEW


# --------------------------------------------------------------------------- baseline targets


def test_at_most_five_targets_and_two_per_organ_largest_first() -> None:
    sizes = [40.0, 35.0, 30.0, 28.0, 26.0, 24.0, 22.0, 20.0]
    sites = ["liver", "liver", "liver", "lung", "lung", "lung", "adrenal_left", "adrenal_right"]
    kinds = RULE.baseline_kinds([_measured(s) for s in sizes], _volume(), sites, [False] * 8)
    assert kinds == [T, T, NT, T, T, NT, T, NT]  # 2 liver, 2 lung, 1 adrenal (paired organs are one)
    assert kinds.count(T) == P.max_targets
    many = RULE.baseline_kinds([_measured(20.0)] * 7, _volume(), [f"organ{n}" for n in range(7)], [False] * 7)
    assert many.count(T) == P.max_targets


def test_measurable_threshold_follows_the_slice_thickness() -> None:
    at = float(P.min_ld_mm)
    kinds = RULE.baseline_kinds([_measured(at), _measured(at - 0.1)], _volume(), ["liver", "lung"], [False, False])
    assert kinds == [T, NT]
    thick = 6.0  # above 5 mm the minimum is slice_multiplier x slice (§3.1.1)
    need = float(P.slice_multiplier) * thick
    kinds = RULE.baseline_kinds([_measured(need), _measured(need - 0.1)], _volume(thick), ["a", "b"], [False, False])
    assert kinds == [T, NT]


def test_nodes_are_targets_by_short_axis() -> None:
    sa = float(P.node_target_sa_mm)
    lesions = [_measured(30.0, sa - 0.1), _measured(sa + 2, sa), _measured(12.0)]
    kinds = RULE.baseline_kinds(lesions, _volume(), ["lymph node", "lymph node", "liver"], [True, True, False])
    assert kinds == [NT, T, T]  # a long node with a 14.9 mm short axis is not measurable


# --------------------------------------------------------------------------- follow-up


def _baseline() -> Timepoint:
    return _tp(0, _les("L1", T, 40.0), _les("L2", T, 30.0), _les("N1", T, 25.0, 20.0, "lymph node", True),
               _les("L3", NT, 8.0))


def _category(history: list[Timepoint], current: Timepoint) -> str:
    a, why = RULE.assess(history, current, _volume())
    assert a is not None, why
    return a.category


def test_baseline_then_pr_sd_pd_cr() -> None:
    base = _baseline()  # sum 40 + 30 + 20 = 90
    assert _category([], base) == "BASELINE"
    pr = _tp(1, _les("L1", T, 28.0), _les("L2", T, 20.0), _les("N1", T, 20.0, 15.0, "lymph node", True),
             _les("L3", NT, 8.0))  # 63 = -30 % exactly: PR (inclusive)
    assert _category([base], pr) == "PR"
    sd = replace(pr, lesions=(_les("L1", T, 32.0), *pr.lesions[1:]))  # 67
    assert _category([base], sd) == "SD"
    pd = _tp(2, _les("L1", T, 34.0), _les("L2", T, 26.6), _les("N1", T, 20.0, 15.0, "lymph node", True),
             _les("L3", NT, 8.0))  # 75.6 = +20 % and +12.6 mm over the nadir 63
    assert _category([base, pr], pd) == "PD"
    cr = _tp(2, _les("N1", T, 12.0, 9.0, "lymph node", True))  # non-nodal gone, node < 10 mm, non-target gone
    a, _ = RULE.assess([base, pr], cr, _volume())
    assert a is not None and a.category == "CR"
    assert RULE.thresholds() == {"pr_pct_vs_baseline": float(P.pr_pct_vs_baseline),
                                 "pd_pct_vs_nadir": float(P.pd_pct_vs_nadir)}


def test_a_new_lesion_is_progression() -> None:
    base = _baseline()
    same = _tp(1, *base.lesions, _les("L4", NEW, 6.0))
    assert _category([base], same) == "PD"


def test_a_missing_target_is_gone_inside_the_field_of_view_and_not_evaluable_outside() -> None:
    base = _tp(0, _les("L1", T, 40.0), _les("L2", T, 30.0, centre=(0.0, 0.0, 90.0)))
    gone = _tp(1, _les("L1", T, 20.0))
    a, _ = RULE.assess([base], gone, _volume())  # L2's last extent (z 75-105 mm + margin) leaves the volume
    assert a is not None and a.category == "NE"
    inside = replace(base, lesions=(base.lesions[0], _les("L2", T, 30.0, centre=(0.0, 0.0, 20.0))))
    a, _ = RULE.assess([inside], gone, _volume())  # L2 gone inside the field of view: 0 mm, 20 vs 70 mm
    assert a is not None and a.category == "PR"
    told = replace(gone, context={OUTSIDE_FOV: "L2"})  # the caller (registered) says where it is
    a, _ = RULE.assess([inside], told, _volume())
    assert a is not None and a.category == "NE"
    a, _ = RULE.assess([base], replace(gone, context={OUTSIDE_FOV: ""}), _volume())
    assert a is not None and a.category == "PR"


def test_a_target_under_5_mm_counts_as_the_default() -> None:
    base = _tp(0, _les("L1", T, 20.0))
    tiny = _tp(1, _les("L1", T, 2.0))
    a, _ = RULE.assess([base], tiny, _volume())
    assert a is not None and a.numbers["sum_mm"] == float(P.too_small_default_mm)


def test_non_target_nodes_below_10_mm_are_normal() -> None:
    base = _tp(0, _les("L1", T, 20.0), _les("N2", NT, 14.0, 12.0, "lymph node", True))
    shrunk = _tp(1, _les("L1", T, 0.0), _les("N2", NT, 11.0, 9.0, "lymph node", True))
    a, _ = RULE.assess([base], replace(shrunk, lesions=shrunk.lesions[1:]), _volume())
    assert a is not None and a.category == "CR"
    still = _tp(1, _les("N2", NT, 14.0, 12.0, "lymph node", True))
    a, _ = RULE.assess([base], still, _volume())
    assert a is not None and a.category == "PR"  # targets CR, non-target present: PR (Table 1)


def test_not_assessable() -> None:
    assert RULE.assess([], _tp(0), _volume()) == (None, "no lesion at baseline: RECIST 1.1 response cannot be assessed")
    broken = _tp(0, Lesion("L1", "2.25.1", T, Measurements()))
    a, why = RULE.assess([], broken, _volume())
    assert a is None and why.startswith("RECIST 1.1 not assessable: baseline target L1")


# --------------------------------------------------------------------------- Chun


G1, G3 = CHUN.proposal.group1, CHUN.proposal.group3


def _features(**over: float) -> dict[str, float]:
    """A lesion just inside group 1's thresholds."""
    f = {"hu_sd": float(G1.hu_sd_max), "lesion_to_liver_hu": float(G1.lesion_to_liver_hu_max),
         "interface_hu_per_mm": float(G1.interface_hu_per_mm_min), "rim_vs_liver_hu": float(G1.rim_vs_liver_hu_max),
         "rim_vs_core_hu": 0.0, "hu_mean": 40.0}
    return f | over


def test_proposed_groups() -> None:
    group, why = propose_group(CHUN, _features())
    assert group == 1 and why.endswith("group 1 proposed") and "homogeneous" in why
    group, why = propose_group(CHUN, _features(hu_sd=float(G3.hu_sd_min), interface_hu_per_mm=float(
        G3.interface_hu_per_mm_max)))
    assert group == 3 and "heterogeneous" in why and "ill-defined" in why
    group, why = propose_group(CHUN, _features(lesion_to_liver_hu=float(G1.lesion_to_liver_hu_max) + 1))
    assert group == 2 and "not hypoattenuating enough" in why
    group, why = propose_group(CHUN, _features(hu_sd=float(G3.hu_sd_min), interface_hu_per_mm=100.0))
    assert group == 2 and why.startswith("heterogeneous (HU SD")  # heterogeneous but sharp
    group, why = propose_group(CHUN, _features(interface_hu_per_mm=float(G1.interface_hu_per_mm_min) - 0.5,
                                               rim_vs_liver_hu=5.0))
    assert group == 2 and "not sharp" in why and "an enhancing rim (rim vs liver HU 5," in why
    group, why = propose_group(CHUN, {"hu_mean": 40.0})
    assert group == 2 and "indeterminate" in why


def _chun_tp(n: int, groups: dict[str, int], source: str = "") -> Timepoint:
    notes = {"chun_group_source": source} if source else {}
    return _tp(n, *(_les(tid, T, 30.0, chun_group=str(g), chun_basis="...", **notes) for tid, g in groups.items()))


def test_chun_3_to_1_is_optimal_and_proposed() -> None:
    a = chun_assessment(RULES_DIR, [_chun_tp(0, {"H1": 3})], _chun_tp(1, {"H1": 1}), bevacizumab=True)
    assert a is not None and a.category == "optimal" and "proposed" in a.flags
    assert "proposed_group_unconfirmed" in a.flags and "context_warning" not in a.flags


def test_chun_per_lesion_and_edge_cases() -> None:
    base = _chun_tp(0, {"H1": 3, "H2": 2})
    a = chun_assessment(RULES_DIR, [base], _chun_tp(1, {"H1": 2, "H3": 1}), bevacizumab=False)
    assert a is not None and a.category == "per_lesion" and "context_warning" in a.flags
    assert {r.timepoint: r.category for r in a.timepoints} == {"H1": "incomplete", "H2": "not_evaluable"}
    assert chun_assessment(RULES_DIR, [], base, None) is None  # baseline
    node = _tp(0, _les("N1", T, 20.0, 16.0, "lymph node", True, chun_group="3"))
    assert chun_assessment(RULES_DIR, [node], node, None) is None  # nodes are not graded
    assert chun_assessment(RULES_DIR, [_tp(0, _les("H1", T, 30.0))], base, None) is None  # no groups at baseline
    confirmed = chun_assessment(RULES_DIR, [_chun_tp(0, {"H1": 3}, "radiologist")],
                                _chun_tp(1, {"H1": 1}, "radiologist"), None)
    assert confirmed is not None and "proposed" not in confirmed.flags and confirmed.category == "optimal"


@pytest.mark.parametrize(("texts", "expected"), [
    (["FOLFOX + bevacizumab C6"], True),
    (["CT TAP", "Avastin J15"], True),
    (["Suivi FOLFIRI"], False),
    (["FOLFIRI sans bevacizumab"], False),
    (["no bevacizumab since March"], False),
    (["no bevacizumab in C1", "bevacizumab resumed C4"], True),
    (["", "  "], None),
    ([], None),
])
def test_bevacizumab_mentioned(texts: list[str], expected: bool | None) -> None:
    assert bevacizumab_mentioned(texts) is expected
