"""`/metrics`: the node's state in the Prometheus text format, read from the database.

The database is the source of truth, and jobs may run in other processes (`nadir worker`
on other machines): so each scrape queries it, rather than counting in this process.

| metric | type | labels | from |
| --- | --- | --- | --- |
| nadir_instances_received_total | counter | calling_ae | instances rows |
| nadir_studies | gauge | state | studies rows |
| nadir_jobs | gauge | state, route | jobs rows |
| nadir_instances_rejected_total | counter | status, calling_ae | rejection_counts rows (daemon.store.telemetry) |
| nadir_job_seconds | histogram | route | finished - started of DONE and FAILED jobs |
| nadir_inference_seconds | histogram | model | inference_runs rows (each model run of a DONE job) |
| nadir_outbox_pending, nadir_outbox_dead | gauge | destination | outbox rows |

Rejections are counter rows that every receiving process increments in the database, so
their totals are the counter as they stand, across restarts and processes. The other
cumulative ones keep counting what retention removes: the first scrape counts every row
there is, each later scrape adds the rows that appeared since (instances by id; job runs
by their finish time; model runs by id), so the counter never goes down while the node runs.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.store.jobs import Job, JobState, utc
from daemon.store.models import Instance, Study, StudyState
from daemon.store.outbox import OutboxRow, OutboxState
from daemon.store.telemetry import InferenceRun, rejection_totals, status_label

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# how far behind the newest row seen a scrape looks again for rows committed late
LOOKBACK = timedelta(minutes=10)
# seconds: a QA report in under a second, a CPU segmentation in minutes
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# seconds of one model run: a GPU in a second or two, a CPU at native resolution minutes
INFERENCE_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class _Seen:
    """Rows already counted, by key, within the lookback window behind the newest time seen.

    A row is new when its time is within the window and its key was not seen: this counts a
    row committed late (another process's transaction, another machine's clock) and a row
    whose id the database reused after a deletion, and never counts a row twice."""

    def __init__(self) -> None:
        self.newest: datetime | None = None
        self.keys: dict[tuple[object, ...], datetime] = {}

    def since(self) -> datetime | None:
        return None if self.newest is None else self.newest - LOOKBACK

    def is_new(self, key: tuple[object, ...], when: datetime) -> bool:
        if key in self.keys:
            return False
        self.keys[key] = when
        if self.newest is None or when > self.newest:
            self.newest = when
        return True

    def prune(self) -> None:
        cutoff = self.since()
        if cutoff is not None:
            self.keys = {k: t for k, t in self.keys.items() if t >= cutoff}


class _Histograms:
    """Observations by label, in fixed buckets, as a Prometheus histogram accumulates them."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, label: str, value: float) -> None:
        counts = self.counts.setdefault(label, [0] * (len(self.bounds) + 1))
        counts[next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))] += 1
        self.sums[label] += value

    def family(self, name: str, documentation: str, label: str) -> Metric:
        hist = HistogramMetricFamily(name, documentation, labels=[label])
        names = [str(floatToGoString(b)) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for value, counts in sorted(self.counts.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(names, counts, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            hist.add_metric([value], buckets, self.sums[value])
        return hist


class _Tallies:
    """What was counted so far: received instances by calling AE, job runs by route, model
    runs by model."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instances = _Seen()
        self.received: dict[str, int] = defaultdict(int)
        self.runs = _Seen()
        self.job_seconds = _Histograms(JOB_BUCKETS)
        self.inferences = _Seen()
        self.inference_seconds = _Histograms(INFERENCE_BUCKETS)

    def add_instances(self, session: Session) -> None:
        query = select(Instance.sop_instance_uid, Instance.received, Instance.calling_ae)
        since = self.instances.since()
        if since is not None:
            query = query.where(Instance.received >= since)
        for uid, received, ae in session.execute(query).all():
            if self.instances.is_new((uid,), utc(received)):
                self.received[str(ae)] += 1
        self.instances.prune()

    def add_jobs(self, session: Session) -> None:
        query = select(Job.id, Job.route, Job.started, Job.finished).where(
            Job.state.in_([JobState.DONE, JobState.FAILED]), Job.started.is_not(None), Job.finished.is_not(None))
        since = self.runs.since()
        if since is not None:
            query = query.where(Job.finished >= since)
        for job_id, route, started, finished in session.execute(query).all():
            if started is None or finished is None or not self.runs.is_new((job_id, utc(finished)), utc(finished)):
                continue
            self.job_seconds.observe(str(route), max(0.0, (utc(finished) - utc(started)).total_seconds()))
        self.runs.prune()

    def add_inferences(self, session: Session) -> None:
        query = select(InferenceRun.id, InferenceRun.at, InferenceRun.model, InferenceRun.seconds)
        since = self.inferences.since()
        if since is not None:
            query = query.where(InferenceRun.at >= since)
        for run_id, at, model, seconds in session.execute(query).all():
            if self.inferences.is_new((run_id, utc(at)), utc(at)):
                self.inference_seconds.observe(str(model), max(0.0, float(seconds)))
        self.inferences.prune()


class DatabaseCollector(Collector):
    """Every metric, read from the database at each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._tallies = _Tallies()

    def collect(self) -> Iterator[Metric]:
        t = self._tallies
        with self._sessions() as session, t.lock:
            t.add_instances(session)
            t.add_jobs(session)
            t.add_inferences(session)
            rejected = rejection_totals(session)
            studies: dict[str, int] = {str(k): int(v) for k, v in session.execute(
                select(Study.state, func.count(Study.id)).group_by(Study.state)).all()}
            jobs = session.execute(select(Job.state, Job.route, func.count(Job.id)).group_by(Job.state, Job.route)).all()
            outbox = session.execute(select(OutboxRow.state, OutboxRow.destination, func.count(OutboxRow.id))
                                     .where(OutboxRow.state.in_([OutboxState.PENDING, OutboxState.DEAD]))
                                     .group_by(OutboxRow.state, OutboxRow.destination)).all()
            destinations = set(session.scalars(select(OutboxRow.destination).distinct()))
            received = dict(t.received)
            job_seconds = t.job_seconds.family(
                "nadir_job_seconds", "Job run time (start of its last attempt to its end), by route", "route")
            inference_seconds = t.inference_seconds.family(
                "nadir_inference_seconds", "Seconds of one model run (segmentation) in a finished job, by model",
                "model")
        yield _received(received)
        yield _rejected(rejected)
        gauge = GaugeMetricFamily("nadir_studies", "Studies by state", labels=["state"])
        for state in StudyState:
            gauge.add_metric([state.value], float(studies.get(state.value, 0)))
        yield gauge
        gauge = GaugeMetricFamily("nadir_jobs", "Jobs by state and route", labels=["state", "route"])
        for job_state, route, count in jobs:
            gauge.add_metric([str(job_state), str(route)], float(count))
        yield gauge
        yield from _outbox(outbox, destinations)
        yield job_seconds
        yield inference_seconds


def _received(received: dict[str, int]) -> Metric:
    counter = CounterMetricFamily("nadir_instances_received", "Instances received and stored, by calling AE",
                                  labels=["calling_ae"])
    for ae, count in sorted(received.items()):
        counter.add_metric([ae], float(count))
    return counter


def _rejected(rows: list[tuple[str, int, int]]) -> Metric:
    counter = CounterMetricFamily("nadir_instances_rejected", "Instances refused, by DIMSE status and calling AE",
                                  labels=["status", "calling_ae"])
    for ae, status, count in sorted(rows, key=lambda r: (r[1], r[0])):
        counter.add_metric([status_label(status), ae], float(count))
    return counter


def _outbox(rows: Sequence[Any], destinations: set[str]) -> Iterator[Metric]:
    by = {(str(state), str(dest)): int(count) for state, dest, count in rows}
    pending = GaugeMetricFamily("nadir_outbox_pending", "Outputs waiting to be delivered, by destination",
                                labels=["destination"])
    dead = GaugeMetricFamily("nadir_outbox_dead", "Dead letters (delivery given up), by destination",
                             labels=["destination"])
    for dest in sorted(destinations):
        pending.add_metric([dest], float(by.get((OutboxState.PENDING, dest), 0)))
        dead.add_metric([dest], float(by.get((OutboxState.DEAD, dest), 0)))
    yield pending
    yield dead


def registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DatabaseCollector(sessions))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
