"""Run measurement, registration and tracking over the synthetic phantom patient and
score the identities against the ground truth (used by tests and bench/measure.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from daemon.findings import LesionKind, Timepoint
from daemon.measure.lesions import MeasuredLesion, measure_mask
from daemon.measure.phantoms import PhantomTimepoint, patient_timepoints, render_timepoint
from daemon.measure.registration import Alignment, align
from daemon.measure.tracking import Outcome, PriorTimepoint, TrackingResult, track
from daemon.volume import LesionMask, Volume


@dataclass
class PatientRun:
    timepoints: tuple[PhantomTimepoint, ...]
    volumes: list[Volume] = field(default_factory=list)
    measured: list[list[MeasuredLesion]] = field(default_factory=list)
    truth: list[list[frozenset[str]]] = field(default_factory=list)  # names in each current lesion
    results: list[TrackingResult] = field(default_factory=list)
    alignments: list[list[Alignment]] = field(default_factory=list)  # per follow-up, per prior


def run_patient(timepoints: tuple[PhantomTimepoint, ...] | None = None) -> PatientRun:
    tps = timepoints or patient_timepoints()
    run = PatientRun(timepoints=tps)
    priors: list[tuple[Timepoint, Volume]] = []
    for n, tp in enumerate(tps):
        vol, labels, masks = render_timepoint(tp, n)
        measured = measure_mask(vol, LesionMask(volume=vol, labels=labels, label_info=()))
        truth = []
        for m in measured:
            full = m.full_mask(vol.shape)
            truth.append(frozenset(name for name, mk in masks.items() if np.any(mk & full)))
        aligned = [PriorTimepoint(t, align(v, vol)) for t, v in priors]
        result = track(measured, vol, aligned, study_uid=vol.study_instance_uid,
                       baseline_kinds=[LesionKind.TARGET] * len(measured))
        run.volumes.append(vol)
        run.measured.append(measured)
        run.truth.append(truth)
        run.results.append(result)
        run.alignments.append([a.alignment for a in aligned])
        priors.append((Timepoint(vol.study_instance_uid, date(2024, 1 + 3 * n, 1), result.lesions), vol))
    return run


@dataclass(frozen=True)
class TrackingScore:
    correct: int
    total: int
    failures: tuple[str, ...]


def score(run: PatientRun) -> TrackingScore:
    """One decision per current lesion of each follow-up and per lesion that vanished."""
    id_of: dict[str, str] = {}
    for names, lesion in zip(run.truth[0], run.results[0].lesions, strict=True):
        for name in names:
            id_of[name] = lesion.tracking_id
    correct, total, failures = 0, 0, []
    for n in range(1, len(run.results)):
        result, truth = run.results[n], run.truth[n]
        events = result.events
        present: set[str] = set()
        for c, names in enumerate(truth):
            total += 1
            present |= names
            ok = _lesion_correct(c, names, result, id_of)
            correct += ok
            if not ok:
                failures.append(f"timepoint {n}: lesion {sorted(names)} got {result.lesions[c].tracking_id}")
        for name in sorted(set().union(*run.truth[n - 1]) - present):
            total += 1
            ok = any(e.outcome == Outcome.DISAPPEARED and e.tracking_id == id_of.get(name) for e in events)
            correct += ok
            if not ok:
                failures.append(f"timepoint {n}: {name} not reported disappeared")
    return TrackingScore(correct=correct, total=total, failures=tuple(failures))


def _lesion_correct(c: int, names: frozenset[str], result: TrackingResult, id_of: dict[str, str]) -> bool:
    got = result.lesions[c].tracking_id
    known = [id_of[n] for n in names if n in id_of]
    if not known:  # a new lesion: a new identity, reported as new
        if len(names) != 1 or got in id_of.values():
            return False
        id_of[next(iter(names))] = got
        return any(e.outcome == Outcome.NEW and e.current_index == c for e in result.events)
    if got not in known:
        return False
    others = set(known) - {got}
    merged = {e.tracking_id for e in result.events if e.outcome == Outcome.MERGED and e.current_index == c}
    return others <= merged
