"""RANO-BM agreement between a model's lesions and a reader's over a SYNTHETIC follow-up:
both sides tracked and assessed as the brain route does, visit by visit (no network runs:
the 'model' masks are given)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import ndimage

from daemon.pipelines.brain_mets_response import RanoBmRule
from daemon.pipelines.model_evaluation import (
    CaseEvaluation,
    evaluate_case,
    followup_agreement,
    summary,
)
from daemon.resources import RULES_DIR
from daemon.volume import SliceRef, Volume

SHAPE = (24, 48, 48)
AFFINE = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)  # 2 mm slices, 1 mm pixels


def _volume() -> Volume:
    image = ndimage.gaussian_filter(np.random.default_rng(0).normal(0, 1, SHAPE), 3).astype(np.float32) * 100 + 500
    slices = tuple(SliceRef(f"2.25.{k + 1}", "1.2.840.10008.5.1.4.1.1.4") for k in range(SHAPE[0]))
    return Volume(image, AFFINE, slices, frame_of_reference_uid="2.25.9", modality="MR")


def _lesions(side: int) -> np.ndarray:  # type: ignore[type-arg]
    """Two boxes of `side` pixels (1 mm) in plane, over several 2 mm slices."""
    m = np.zeros(SHAPE, dtype=bool)
    for k, j, i in ((4, 6, 6), (4, 26, 26)):
        m[k:k + max(side // 2, 2), j:j + side, i:i + side] = True
    return m


def _visits(reader: list[int], model: list[int]) -> list[tuple[CaseEvaluation, Volume, date]]:
    vol = _volume()
    return [(evaluate_case(f"t{n}", vol, _lesions(r) if r else np.zeros(SHAPE, bool),
                           _lesions(p) if p else np.zeros(SHAPE, bool)), vol, date(2025, 1 + 3 * n, 1))
            for n, (r, p) in enumerate(zip(reader, model, strict=True))]


@pytest.fixture(scope="module")
def rule() -> RanoBmRule:
    return RanoBmRule(RULES_DIR)


def test_categories_agree_then_disagree(rule: RanoBmRule) -> None:
    """Reader: 12 -> 6 -> 12 mm boxes (PR, then PD against the nadir); the model misses the
    regrowth (6 mm at the third visit): PR and PR; one of two visits agrees."""
    visits = _visits([12, 6, 12], [12, 6, 6])
    f = followup_agreement("P1", visits, rule)
    assert [(v.case, v.reference, v.model, v.agree) for v in f.visits] == [("t1", "PR", "PR", True),
                                                                           ("t2", "PD", "PR", False)]
    s = summary([ev for ev, _, _ in visits], [f])
    assert (s.rano_bm_compared, s.rano_bm_agree) == (2, 1)
    assert s.detected_lesions == s.reference_lesions == 6 and s.false_positive_lesions == 0
    assert s.long_axis_error_mm.mean is not None and s.long_axis_error_mm.mean < 0  # the model's too short at t2


def test_a_side_without_baseline_targets_is_not_comparable(rule: RanoBmRule) -> None:
    f = followup_agreement("P2", _visits([12, 6], [0, 6]), rule)
    (visit,) = f.visits
    assert visit.reference == "PR" and visit.model is None and visit.agree is None
    assert any(n.startswith("model: no measurable target lesion at baseline") for n in visit.notes)
    assert summary([], [f]).rano_bm_compared == 0
