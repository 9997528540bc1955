"""A segmentation model judged against its readers, as the route runs it.

Per case: the model's lesion mask on the case's series by the route's own code
(`daemon.segment.segment`: the manifest's preprocessing, sliding window, threshold,
minimum lesion volume; `split_roles`: the lesion labels), then against the reader's
mask: Dice, HD95, lesion-wise detection and false positives
(`daemon.measure.segmentation_metrics`), and the long axis of each detected lesion
measured on both masks by the route's measurement (`daemon.measure.lesions`, with the
brain route's options). When cases form a patient's follow-up, both sides are tracked and
assessed by RANO-BM as the brain route does it (`daemon.measure.tracking`, the latest
prior registered; `RanoBmRule`), and the categories compared visit by visit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from daemon.findings import Timepoint
from daemon.measure.lesions import MeasuredLesion, measure_mask
from daemon.measure.registration import Alignment, AlignmentMethod, align, identity
from daemon.measure.segmentation_metrics import Detection, Summary, detect, dice, hd95, summarise
from daemon.measure.tracking import PriorTimepoint, track
from daemon.pipelines.brain_mets import ROUTE
from daemon.pipelines.brain_mets_response import RanoBmRule
from daemon.segment import LoadedModel, segment, split_roles
from daemon.volume import LesionMask, Volume

BoolArray = NDArray[np.bool_]


def predict(volume: Volume, model: LoadedModel) -> BoolArray:
    """The model's lesions on the volume's grid, as the route finds them (organ labels set aside)."""
    lesions, _ = split_roles(segment(volume, model), model.manifest)
    return np.asarray(lesions.labels > 0)


def measured(volume: Volume, mask: BoolArray) -> tuple[MeasuredLesion, ...]:
    """The mask's lesions (connected components) measured as the brain route measures them."""
    return tuple(measure_mask(volume, LesionMask(volume, mask.astype(np.uint16), ()), ROUTE.measure))


def _numbered(shape: tuple[int, int, int], lesions: Sequence[MeasuredLesion]) -> NDArray[np.int32]:
    out = np.zeros(shape, dtype=np.int32)
    for n, m in enumerate(lesions, start=1):
        out[m.box][m.local_mask] = n
    return out


def _long_axis(m: MeasuredLesion) -> float | None:
    la = m.measurements.long_axis
    return la.length_mm if la is not None else None


@dataclass(frozen=True)
class LesionRow:
    reference: int  # the reader's lesion, numbered largest first
    reference_long_axis_mm: float | None
    covered_fraction: float
    detected: bool
    predicted: int | None  # the model's lesion covering most of it
    predicted_long_axis_mm: float | None
    long_axis_error_mm: float | None  # model - reader, for a detected lesion measured on both


@dataclass(frozen=True, eq=False)
class CaseEvaluation:
    case: str
    series_instance_uid: str
    study_instance_uid: str
    dice: float | None
    hd95_mm: float | None
    detection: Detection
    lesions: tuple[LesionRow, ...]
    reference: tuple[MeasuredLesion, ...]
    predicted: tuple[MeasuredLesion, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0  # the model's run


def evaluate_case(case: str, volume: Volume, reference: BoolArray, predicted: BoolArray,
                  min_overlap: float = 0.0, seconds: float = 0.0, notes: Sequence[str] = ()) -> CaseEvaluation:
    """The model's mask against the reader's on one case."""
    ref, pred = measured(volume, reference), measured(volume, predicted)
    found = detect(_numbered(volume.shape, ref), _numbered(volume.shape, pred), min_overlap)
    rows = []
    for match in found.matches:
        r = _long_axis(ref[match.reference - 1])
        p = _long_axis(pred[match.predicted - 1]) if match.detected and match.predicted is not None else None
        err = p - r if p is not None and r is not None else None
        rows.append(LesionRow(match.reference, r, match.covered_fraction, match.detected,
                              match.predicted if match.detected else None, p, err))
    d, h = dice(reference, predicted), hd95(reference, predicted, volume.affine)
    said = list(notes)
    if d is None:
        said.append("Dice not computable: neither the reader nor the model marked any voxel")
    if h is None:
        empty = "the reader's mask" if not reference.any() else "the model's mask"
        said.append(f"HD95 not computable: {empty} is empty")
    if not found.matches:
        said.append("sensitivity not computable: the reader marked no lesion")
    return CaseEvaluation(case, volume.series_instance_uid, volume.study_instance_uid, d, h, found, tuple(rows),
                          ref, pred, tuple(said), seconds)


@dataclass(frozen=True)
class VisitAgreement:
    case: str
    date: date
    model: str | None  # the RANO-BM category from the model's lesions (None: not assessable)
    reference: str | None  # from the reader's lesions
    agree: bool | None  # None when either side is not assessable
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FollowUpAgreement:
    patient: str
    visits: tuple[VisitAgreement, ...]  # the follow-up visits (the baseline has no category)


# one visit of a follow-up: the case's evaluation, its series, its date
Visit = tuple[CaseEvaluation, Volume, date]


def _alignments(volumes: Sequence[Volume]) -> list[Alignment]:
    """Visit i -> visit i-1's patient coordinates (rigid registration, as the route registers the
    latest prior); for the first, nothing."""
    out = [identity(AlignmentMethod.NONE, "baseline")]
    for before, after in zip(volumes, volumes[1:], strict=False):
        out.append(align(before, after))
    return out


def _timepoints(side: str, visits: Sequence[Visit], rule: RanoBmRule,
                alignments: Sequence[Alignment]) -> list[tuple[Timepoint, str | None, str]]:
    """Each visit tracked and assessed from one side's lesions: (timepoint, category, why none)."""
    none = identity(AlignmentMethod.NONE, "an earlier prior: positions compared as they are")
    history: list[Timepoint] = []
    out: list[tuple[Timepoint, str | None, str]] = []
    for i, (ev, volume, when) in enumerate(visits):
        lesions = ev.predicted if side == "model" else ev.reference
        uid = ev.study_instance_uid or f"case:{ev.case}"
        kinds = None if history else rule.baseline_kinds(lesions, volume, ["brain"] * len(lesions),
                                                         [False] * len(lesions))
        priors = [PriorTimepoint(tp, alignments[i] if n == len(history) - 1 else none)
                  for n, tp in enumerate(history)]
        tracked = track(list(lesions), volume, priors, study_uid=uid, baseline_kinds=kinds)
        current = Timepoint(uid, when, tracked.lesions)
        category, why = None, ""
        if history:
            assessment, why = rule.assess(history, current, volume)
            category = assessment.category if assessment is not None else None
        out.append((current, category, why))
        history.append(current)
    return out


def followup_agreement(patient: str, visits: Sequence[Visit], rule: RanoBmRule) -> FollowUpAgreement:
    """RANO-BM on the model's lesions and on the reader's, visit by visit, compared."""
    alignments = _alignments([volume for _, volume, _ in visits])
    model = _timepoints("model", visits, rule, alignments)
    reader = _timepoints("reference", visits, rule, alignments)
    out = []
    for (ev, _, when), (_, m, m_why), (_, r, r_why) in list(zip(visits, model, reader, strict=True))[1:]:
        notes = tuple(f"{who}: {why}" for who, why in (("model", m_why), ("reader", r_why)) if why)
        agree = None if m is None or r is None else m == r
        out.append(VisitAgreement(ev.case, when, m, r, agree, notes))
    return FollowUpAgreement(patient, tuple(out))


@dataclass(frozen=True)
class EvaluationSummary:
    """The summary as the seed study tabulated it: mean and SD per metric over cases (lesions
    pooled for the long-axis error), lesions counted over all cases, RANO-BM agreement."""

    dice: Summary
    hd95_mm: Summary
    sensitivity: Summary
    false_positives: Summary
    long_axis_abs_error_mm: Summary  # |model - reader| over the detected lesions of all cases
    long_axis_error_mm: Summary  # signed (model - reader): a bias
    reference_lesions: int
    detected_lesions: int
    false_positive_lesions: int
    rano_bm_compared: int
    rano_bm_agree: int


def summary(cases: Sequence[CaseEvaluation], followups: Sequence[FollowUpAgreement]) -> EvaluationSummary:
    errors = [row.long_axis_error_mm for c in cases for row in c.lesions if row.long_axis_error_mm is not None]
    compared = [v.agree for f in followups for v in f.visits if v.agree is not None]
    return EvaluationSummary(
        dice=summarise([c.dice for c in cases]),
        hd95_mm=summarise([c.hd95_mm for c in cases]),
        sensitivity=summarise([c.detection.sensitivity for c in cases]),
        false_positives=summarise([float(len(c.detection.false_positives)) for c in cases]),
        long_axis_abs_error_mm=summarise([abs(e) for e in errors]),
        long_axis_error_mm=summarise(errors),
        reference_lesions=sum(len(c.detection.matches) for c in cases),
        detected_lesions=sum(c.detection.detected for c in cases),
        false_positive_lesions=sum(len(c.detection.false_positives) for c in cases),
        rano_bm_compared=len(compared),
        rano_bm_agree=sum(compared),
    )
