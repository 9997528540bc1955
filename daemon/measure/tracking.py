"""Follow lesions across timepoints: each current lesion gets the identity of the same
lesion in the patient's earlier studies, or a new one.

Inputs are the follow-up's measured lesions (with their masks on the follow-up
grid) and the priors as lesion records (a Timepoint, from the database or read
back from an earlier SR -- this code does not care which), each prior with the
Alignment that maps follow-up patient coordinates to its own.

Every tracking identity ever seen forms the pool, taken from the most recent
timepoint in which it appears. Matching is an assignment problem
(scipy linear_sum_assignment) on a similarity built from overlap (the prior's
centroid inside the current mask; overlap of volume-equivalent spheres) and
centroid distance. Then:

- matched: the current lesion keeps the prior's tracking id, UID and kind
  (baseline targets stay targets); a lesion absent from the latest prior but seen
  earlier that is found again is matched too (reappeared, noted);
- merged: an unassigned prior lying in a current lesion assigned to another prior
  (RECIST 1.1: coalesced lesions -> the merged lesion carries one identity);
- split: an unassigned current lesion within reach of a prior already assigned to
  another current lesion; it gets a new identity and names its parent;
- new: any other current lesion (kind NEW, new id and UID);
- disappeared: a lesion of the latest prior with no current lesion.

Each outcome carries a confidence in [0, 1]. New UIDs are derived deterministically
from the patient's first study and the tracking id, so a re-run gives the same UIDs.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from daemon.findings import Lesion, LesionKind, Timepoint
from daemon.measure.lesions import MeasuredLesion
from daemon.measure.registration import Alignment, AlignmentMethod
from daemon.volume import Volume

FloatArray = NDArray[np.float64]

_INFEASIBLE = 1e6
_NAMESPACE = uuid.UUID("0b6b7f38-3c1e-5d4e-8f51-6a2f4c9d7e20")


class Outcome(StrEnum):
    MATCHED = "matched"
    NEW = "new"
    DISAPPEARED = "disappeared"
    MERGED = "merged"
    SPLIT = "split"


@dataclass(frozen=True)
class PriorTimepoint:
    timepoint: Timepoint
    alignment: Alignment  # follow-up patient -> this prior's patient coordinates


@dataclass(frozen=True)
class TrackingOptions:
    margin_mm: float = 10.0  # how far beyond a lesion's radius a match may be (technical)
    older_penalty: float = 0.1  # similarity lost by a lesion absent from the latest prior
    min_similarity: float = 0.05


@dataclass(frozen=True)
class TrackEvent:
    outcome: Outcome
    tracking_id: str  # the identity the outcome concerns
    tracking_uid: str
    confidence: float
    current_index: int | None = None  # index in the current lesions, None for disappeared
    prior_ids: tuple[str, ...] = ()  # prior identities involved
    prior_study_uid: str = ""
    distance_mm: float | None = None
    note: str = ""


@dataclass(frozen=True)
class TrackingResult:
    lesions: tuple[Lesion, ...]  # the current lesions, in input order, with their identities
    events: tuple[TrackEvent, ...]

    def fragments(self) -> dict[str, tuple[Lesion, ...]]:
        """Prior id -> the current lesions it split into (its own match first).

        What RECIST 1.1 sums for a fragmented target (criteria: LesionInput.fragments_mm).
        """
        out: dict[str, list[Lesion]] = {}
        for e in self.events:
            if e.outcome == Outcome.SPLIT and e.current_index is not None:
                out.setdefault(e.prior_ids[0], []).append(self.lesions[e.current_index])
        for parent, pieces in out.items():
            own = [les for les in self.lesions if les.tracking_id == parent]
            out[parent] = own + pieces
        return {k: tuple(v) for k, v in out.items()}

    def merged_into(self) -> dict[str, str]:
        """Prior id -> the id of the current lesion it coalesced into."""
        return {
            e.tracking_id: self.lesions[e.current_index].tracking_id
            for e in self.events
            if e.outcome == Outcome.MERGED and e.current_index is not None
        }


@dataclass(frozen=True)
class _PoolEntry:
    lesion: Lesion
    study_uid: str
    in_latest: bool
    centre: FloatArray  # prior centroid mapped into follow-up patient coordinates
    radius: float
    method: AlignmentMethod


def tracking_uid(first_study_uid: str, tracking_id: str) -> str:
    """A deterministic DICOM UID for a tracking identity: 2.25.<name-based UUID>.

    Pipelines that mint lesion UIDs elsewhere (daemon/report/uids.py) pass their own
    function to track(uid_for=...).
    """
    return "2.25." + str(uuid.uuid5(_NAMESPACE, f"tracking|{first_study_uid}|{tracking_id}").int)


def _radius(volume_ml: float | None, diameter_mm: float | None) -> float:
    if volume_ml is not None and volume_ml > 0:
        return float((3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0))
    if diameter_mm is not None:
        return diameter_mm / 2.0
    return 0.0


def _sphere_iou(r1: float, r2: float, d: float) -> float:
    """Intersection over union of two spheres of radii r1, r2 with centres d apart."""
    if r1 <= 0 or r2 <= 0 or d >= r1 + r2:
        return 0.0
    v1, v2 = 4.0 / 3.0 * math.pi * r1**3, 4.0 / 3.0 * math.pi * r2**3
    if d <= abs(r1 - r2):
        inter = min(v1, v2)
    else:
        inter = (
            math.pi * (r1 + r2 - d) ** 2
            * (d * d + 2 * d * (r1 + r2) - 3 * (r1 - r2) ** 2) / (12.0 * d)
        )
    return inter / (v1 + v2 - inter)


def _position(lesion: Lesion) -> FloatArray | None:
    """The centroid, or (a record read back without one) the middle of the long axis."""
    m = lesion.measurements
    if m.centroid is not None:
        return np.asarray(m.centroid, dtype=np.float64)
    if m.long_axis is not None:
        return np.asarray((np.asarray(m.long_axis.start) + np.asarray(m.long_axis.end)) / 2.0, dtype=np.float64)
    return None


def _build_pool(priors: Sequence[PriorTimepoint]) -> list[_PoolEntry]:
    ordered = sorted(
        priors, key=lambda p: (p.timepoint.study_date is None, p.timepoint.study_date), reverse=True
    )
    seen: set[str] = set()
    pool: list[_PoolEntry] = []
    for rank, prior in enumerate(ordered):
        for lesion in prior.timepoint.lesions:
            m = lesion.measurements
            position = _position(lesion)
            if lesion.tracking_id in seen or position is None:
                continue
            seen.add(lesion.tracking_id)
            centre = prior.alignment.to_followup(position)
            pool.append(
                _PoolEntry(
                    lesion=lesion,
                    study_uid=prior.timepoint.study_instance_uid,
                    in_latest=rank == 0,
                    centre=centre,
                    radius=_radius(m.volume_ml, m.max_3d_diameter_mm
                                   or (m.long_axis.length_mm if m.long_axis else None)),
                    method=prior.alignment.method,
                )
            )
    return pool


def _contains(grid: Volume, lesion: MeasuredLesion, point: FloatArray) -> bool:
    idx = np.rint(grid.patient_to_index(point)).astype(int)
    local = [int(idx[n]) - int(lesion.box[n].start) for n in range(3)]
    if any(v < 0 or v >= s for v, s in zip(local, lesion.local_mask.shape, strict=True)):
        return False
    return bool(lesion.local_mask[local[0], local[1], local[2]])


def _similarity(
    entry: _PoolEntry, cur: MeasuredLesion, grid: Volume, options: TrackingOptions
) -> tuple[float, float, bool]:
    """(similarity, distance mm, prior centre inside the current lesion)."""
    c = cur.measurements.centroid
    if c is None:
        return 0.0, math.inf, False
    d = float(np.linalg.norm(entry.centre - np.asarray(c)))
    r_cur = _radius(cur.measurements.volume_ml, cur.measurements.max_3d_diameter_mm)
    inside = _contains(grid, cur, entry.centre)
    gate = max(entry.radius, r_cur) + options.margin_mm
    if d > gate and not inside:
        return 0.0, d, inside
    overlap = max(_sphere_iou(entry.radius, r_cur, d), 0.6 if inside else 0.0)
    closeness = max(0.0, 1.0 - d / gate)
    s = 0.5 * overlap + 0.5 * closeness
    if not entry.in_latest:
        s -= options.older_penalty
    if entry.method == AlignmentMethod.NONE:
        s *= 0.5
    return max(s, 0.0), d, inside


def _next_number(pool: Sequence[_PoolEntry]) -> int:
    numbers = [int(m.group(1)) for e in pool if (m := re.fullmatch(r"L(\d+)", e.lesion.tracking_id))]
    return max(numbers, default=0) + 1


def _as_lesion(cur: MeasuredLesion, tracking_id: str, uid: str, kind: LesionKind, base: Lesion | None) -> Lesion:
    if base is not None:
        return replace(base, tracking_id=tracking_id, tracking_uid=uid, kind=kind,
                       measurements=cur.measurements, segment_number=cur.label)
    return Lesion(tracking_id=tracking_id, tracking_uid=uid, kind=kind,
                  measurements=cur.measurements, segment_number=cur.label)


@dataclass
class _State:
    assigned: dict[int, int]  # current index -> pool index
    sims: FloatArray
    dists: FloatArray
    inside: NDArray[np.bool_]
    radius_cur: FloatArray


def _assign(pool: Sequence[_PoolEntry], current: Sequence[MeasuredLesion], grid: Volume,
            options: TrackingOptions) -> _State:
    n_p, n_c = len(pool), len(current)
    sims = np.zeros((n_p, n_c))
    dists = np.full((n_p, n_c), math.inf)
    inside = np.zeros((n_p, n_c), dtype=bool)
    for p, entry in enumerate(pool):
        for c, cur in enumerate(current):
            sims[p, c], dists[p, c], inside[p, c] = _similarity(entry, cur, grid, options)
    assigned: dict[int, int] = {}
    if n_p and n_c:
        cost = np.where(sims >= options.min_similarity, 1.0 - sims, _INFEASIBLE)
        rows, cols = linear_sum_assignment(cost)
        for p, c in zip(rows, cols, strict=True):
            if cost[p, c] < _INFEASIBLE:
                assigned[int(c)] = int(p)
    radius_cur = np.array([
        _radius(c.measurements.volume_ml, c.measurements.max_3d_diameter_mm) for c in current
    ])
    return _State(assigned=assigned, sims=sims, dists=dists, inside=inside, radius_cur=radius_cur)


def track(
    current: Sequence[MeasuredLesion],
    grid: Volume,
    priors: Sequence[PriorTimepoint],
    *,
    study_uid: str,
    baseline_kinds: Sequence[LesionKind] | None = None,
    options: TrackingOptions | None = None,
    uid_for: Callable[[str], str] | None = None,
) -> TrackingResult:
    """Give each current lesion its identity; report matched/new/merged/split/disappeared.

    With no priors this is the baseline: identities L1, L2... in input order, kinds
    from baseline_kinds (the target selection), default non-target.
    """
    opts = options or TrackingOptions()
    pool = _build_pool(priors)
    first_study = _first_study(priors, study_uid)
    mint = uid_for or (lambda tid: tracking_uid(first_study, tid))
    if not pool:
        return _baseline(current, mint, baseline_kinds)
    st = _assign(pool, current, grid, opts)
    pool_to_cur = {p: c for c, p in st.assigned.items()}
    lesions: list[Lesion | None] = [None] * len(current)
    events: list[TrackEvent] = []
    next_no = _next_number(pool)
    for c, cur in enumerate(current):
        if c in st.assigned:
            e = pool[st.assigned[c]]
            lesions[c] = _as_lesion(cur, e.lesion.tracking_id, e.lesion.tracking_uid, e.lesion.kind, e.lesion)
            events.append(TrackEvent(
                Outcome.MATCHED, e.lesion.tracking_id, e.lesion.tracking_uid,
                confidence=float(min(1.0, st.sims[st.assigned[c], c])), current_index=c,
                prior_ids=(e.lesion.tracking_id,), prior_study_uid=e.study_uid,
                distance_mm=float(st.dists[st.assigned[c], c]),
                note="" if e.in_latest else "seen again after being absent",
            ))
    for p, e in enumerate(pool):
        if p in pool_to_cur:
            continue
        events.append(_unassigned_prior(p, e, st, pool, lesions, len(current)))
    for c, cur in enumerate(current):
        if lesions[c] is not None:
            continue
        tid = f"L{next_no}"
        next_no += 1
        uid = mint(tid)
        parent = _split_parent(c, st, pool, pool_to_cur, opts)
        if parent is not None:
            pe = pool[parent]
            lesions[c] = _as_lesion(cur, tid, uid, pe.lesion.kind, None)
            events.append(TrackEvent(
                Outcome.SPLIT, tid, uid, confidence=float(min(1.0, st.sims[parent, c])),
                current_index=c, prior_ids=(pe.lesion.tracking_id,), prior_study_uid=pe.study_uid,
                distance_mm=float(st.dists[parent, c]),
                note=f"fragment of {pe.lesion.tracking_id}",
            ))
        else:
            lesions[c] = _as_lesion(cur, tid, uid, LesionKind.NEW, None)
            best = float(st.sims[:, c].max()) if len(pool) else 0.0
            events.append(TrackEvent(Outcome.NEW, tid, uid, confidence=1.0 - best, current_index=c))
    done = tuple(les for les in lesions if les is not None)
    return TrackingResult(lesions=done, events=tuple(e for e in events if e is not None))


def _unassigned_prior(
    p: int, e: _PoolEntry, st: _State, pool: Sequence[_PoolEntry],
    lesions: Sequence[Lesion | None], n_cur: int,
) -> TrackEvent:
    """Merged into an assigned current lesion, or disappeared (or still absent)."""
    host = None
    for c in range(n_cur):
        if c in st.assigned and (st.inside[p, c] or st.dists[p, c] <= st.radius_cur[c]):
            if host is None or st.sims[p, c] > st.sims[p, host]:
                host = c
    if host is not None:
        into = lesions[host]
        assert into is not None
        return TrackEvent(
            Outcome.MERGED, e.lesion.tracking_id, e.lesion.tracking_uid,
            confidence=float(min(1.0, max(st.sims[p, host], 0.6 if st.inside[p, host] else 0.0))),
            current_index=host, prior_ids=(e.lesion.tracking_id, pool[st.assigned[host]].lesion.tracking_id),
            prior_study_uid=e.study_uid, distance_mm=float(st.dists[p, host]),
            note=f"merged into {into.tracking_id}",
        )
    best = float(st.sims[p].max()) if n_cur else 0.0
    return TrackEvent(
        Outcome.DISAPPEARED, e.lesion.tracking_id, e.lesion.tracking_uid,
        confidence=1.0 - best, prior_ids=(e.lesion.tracking_id,), prior_study_uid=e.study_uid,
        note="" if e.in_latest else "still absent",
    )


def _split_parent(c: int, st: _State, pool: Sequence[_PoolEntry], pool_to_cur: dict[int, int],
                  options: TrackingOptions) -> int | None:
    """A prior assigned to another current lesion whose extent this one lies in."""
    best = None
    for p in pool_to_cur:
        reach = pool[p].radius + 0.5 * options.margin_mm
        if st.dists[p, c] <= reach and (best is None or st.sims[p, c] > st.sims[best, c]):
            best = p
    return best


def _first_study(priors: Sequence[PriorTimepoint], study_uid: str) -> str:
    dated = [p.timepoint for p in priors]
    if not dated:
        return study_uid
    first = min(dated, key=lambda t: (t.study_date is None, t.study_date, t.study_instance_uid))
    return first.study_instance_uid


def _baseline(current: Sequence[MeasuredLesion], mint: Callable[[str], str],
              kinds: Sequence[LesionKind] | None) -> TrackingResult:
    lesions, events = [], []
    for c, cur in enumerate(current):
        tid = f"L{c + 1}"
        uid = mint(tid)
        kind = kinds[c] if kinds is not None and c < len(kinds) else LesionKind.NON_TARGET
        lesions.append(_as_lesion(cur, tid, uid, kind, None))
        events.append(TrackEvent(Outcome.NEW, tid, uid, confidence=1.0, current_index=c, note="baseline"))
    return TrackingResult(lesions=tuple(lesions), events=tuple(events))
