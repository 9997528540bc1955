"""Job execution: claim a job, run its pipeline, record the outputs in the outbox.

`execute(settings, sessions, job)` is the whole of a job's work and assumes nothing
about the process it runs in: it reads the study's files from the spool, hands the
pipeline what the runtime provides (priors, report settings, rules folder), and
writes outputs and the outbox rows in the transaction that marks the job DONE (only
while it still holds the lease). Both executors call it: the local pool's
`work_loop` after `claim_one`, and a Celery worker after `claim_job` of the job
named by its message. A job that fails for good sends its destinations an SR saying
that the automatic analysis failed (`report_failure`; the route may turn it off).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import DEFAULT_OUTPUTS, ConfigError, OutputKind, Settings
from daemon.pipelines.base import PipelineInput, UnknownPipelineError, resolve
from daemon.pipelines.research import collect_research
from daemon.report.failure import FailedJob, build_failure_sr
from daemon.report.kinds import kind_of_dataset, taken_by
from daemon.report.reissue import reissue
from daemon.routing_rules import load_rules
from daemon.runtime.priors import NodePriors
from daemon.runtime.research import write_tables
from daemon.segment.timing import collect_inferences
from daemon.store import jobs as jobstore
from daemon.store import outbox, telemetry
from daemon.store.db import make_engine, make_sessionmaker
from daemon.store.models import Instance, Study
from daemon.store.spool import Spool

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def worker_id(index: int) -> str:
    """The lease owner of a worker: host, process and index (`local_owner_dead` reads it)."""
    return f"{socket.gethostname()}:{os.getpid()}:w{index}"


def local_owner_dead(owner: str) -> bool:
    """True when `owner` names a worker process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Heartbeat:
    """Extends the job's lease every `interval` seconds on its own connection."""

    def __init__(self, sessions: sessionmaker[Session], job: jobstore.ClaimedJob, settings: Settings) -> None:
        self._sessions = sessions
        self._job = job
        self._settings = settings
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        cfg = self._settings.jobs
        while not self._stop.wait(cfg.heartbeat_seconds):
            try:
                with self._sessions() as session:
                    if not jobstore.heartbeat(session, self._job.id, self._job.owner, utcnow(), cfg.lease_seconds):
                        self.lost = True
                        log.warning("job %d: lease lost", self._job.id)
                        return
            except Exception:
                log.exception("job %d: heartbeat failed", self._job.id)


def study_files(sessions: sessionmaker[Session], spool: Spool, study_uid: str) -> list[Path]:
    with sessions() as session:
        study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == study_uid))
        if study_id is None:
            return []
        rows = session.scalars(select(Instance.path).where(Instance.study_id == study_id).order_by(Instance.id))
        return [spool.absolute(p) for p in rows]


def pipeline_input(settings: Settings, sessions: sessionmaker[Session], job: jobstore.ClaimedJob,
                   files: list[Path]) -> PipelineInput:
    """What a pipeline gets: the study's files, the route's parameters, and what the runtime provides."""
    return PipelineInput(
        job.study_instance_uid, job.route, tuple(files), job.parameters, job.revision,
        priors=NodePriors(settings, sessions, last_attempt=job.last_attempt), report=settings.report,
        site_rules_dir=settings.criteria.site_dir,  # over the shipped rules files, wherever routing.yaml is
        outputs=wanted_outputs(settings, job.destinations),
    )


def wanted_outputs(settings: Settings, destinations: Sequence[str]) -> frozenset[OutputKind]:
    """The kinds of output that some destination of a job takes (the default with none)."""
    if not destinations:
        return frozenset(DEFAULT_OUTPUTS)
    return frozenset().union(*(settings.outputs_of(d) for d in destinations))


def execute(settings: Settings, sessions: sessionmaker[Session], job: jobstore.ClaimedJob) -> jobstore.JobState | None:
    """Run one claimed job to DONE, RETRYING or FAILED; returns the new state."""
    data_dir = settings.store.data_dir
    log.info("job %d: %s on study %s rev %d (attempt %d)", job.id, job.route, job.study_instance_uid, job.revision, job.attempt)
    try:
        with _Heartbeat(sessions, job, settings) as beat:
            files = study_files(sessions, Spool(settings.store.spool_dir), job.study_instance_uid)
            pipeline = resolve(job.pipeline)
            with collect_inferences() as inferences, collect_research() as tables:  # timings; research CSVs
                datasets = pipeline(pipeline_input(settings, sessions, job, files))
            # a changed content of a re-run goes out under new UIDs (daemon.report.reissue)
            with sessions() as session:
                previous = outbox.latest_issues(session, data_dir, [str(ds.SOPInstanceUID) for ds in datasets])
            issued = reissue(datasets, previous)
            write_tables(settings.research_folder, tables,
                         dict(zip(issued.base_uids, (str(ds.SOPInstanceUID) for ds in issued.datasets), strict=True)))
            wanted = wanted_outputs(settings, job.destinations)  # what no destination takes is not kept
            kinds = [kind_of_dataset(ds, settings.report) for ds in issued.datasets]
            outputs = [
                outbox.Output(str(ds.SOPInstanceUID), str(ds.SOPClassUID), str(ds.StudyInstanceUID),
                              outbox.write_output(data_dir, ds), base, issued.content_digest, kind)
                for ds, base, kind in zip(issued.datasets, issued.base_uids, kinds, strict=True)
                if taken_by(kind, wanted)
            ]
            if issued.changed:
                log.info("job %d: content changed since the last run: %d output(s) under new UIDs",
                         job.id, len(outputs))
        if beat.lost:
            return None
        with sessions() as session:
            now = utcnow()
            if not jobstore.mark_done(session, job.id, job.owner, now, len(outputs)):
                log.warning("job %d: lease lost before completion; its result is discarded", job.id)
                session.rollback()
                return None
            outbox.add(session, outputs, job.destinations, job.id, now, settings.outputs_of)
            telemetry.add_inferences(session, job.id, job.route, inferences, now)
            session.commit()  # the job is DONE and its outbox rows exist, or neither
        log.info("job %d: done, %d output(s) for %d destination(s)", job.id, len(outputs), len(job.destinations))
        return jobstore.JobState.DONE
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job %d: failed: %s", job.id, error, exc_info=log.isEnabledFor(logging.DEBUG))
        with sessions() as session:
            state = jobstore.fail(session, job.id, job.owner, utcnow(), error, settings.jobs.retry_delay_seconds)
        if state is jobstore.JobState.FAILED:
            log.error("job %d: failed for good after %d attempt(s): %s", job.id, job.attempt, error)
            report_failure(settings, sessions, job)
        return state


def _headers(files: list[Path]) -> list[Dataset]:
    out: list[Dataset] = []
    for path in files:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            log.debug("%s: not readable: %s", path, exc)
    return out


def report_failure(settings: Settings, sessions: sessionmaker[Session], job: jobstore.ClaimedJob) -> int:
    """After `job` failed for good: the SR saying so (daemon/report/failure.py) in the outbox
    for the job's destinations, unless its route says `report_failure: false`. Returns the
    rows added; a failure here is logged, never raised."""
    study = job.study_instance_uid
    if not job.report_failure:
        log.warning("job %d: route %s has report_failure: false; the PACS is not told that study %s has no result",
                    job.id, job.route, study)
        return 0
    if not job.destinations:
        log.warning("job %d: route %s has no destination to tell that study %s has no result", job.id, job.route, study)
        return 0
    try:
        headers = _headers(study_files(sessions, Spool(settings.store.spool_dir), study))
        failed = FailedJob(study, job.route, job.revision, job.id, job.attempt, job.parameters)
        sr = build_failure_sr(failed, headers, settings.report)
        path = outbox.write_output(settings.store.data_dir, sr)
        with sessions() as session:
            added = outbox.add(session, [outbox.Output(str(sr.SOPInstanceUID), str(sr.SOPClassUID), study, path, kind="sr")],
                               job.destinations, job.id, utcnow(), settings.outputs_of)
            session.commit()
    except Exception:
        log.exception("job %d: the SR telling the PACS that study %s has no result (route %s) could not be written",
                      job.id, study, job.route)
        return 0
    log.info("job %d: failure SR %s of study %s queued for %s", job.id, sr.SOPInstanceUID, study, ", ".join(job.destinations))
    return added


FAILURE_SWEEP_GRACE = timedelta(seconds=60)  # execute() reports at once; the sweep only takes older failures
FAILURE_SWEEP_WINDOW = timedelta(days=1)  # older ones (spool purged, the admin told) are left to `nadir study show`


def report_lost_failures(settings: Settings, sessions: sessionmaker[Session], now: datetime) -> int:
    """The failure SRs a crash lost (between a job's FAILED commit and its SR in the outbox):
    queued again. Run periodically by the node; returns the rows added."""
    with sessions() as session:
        lost = outbox.unreported_failures(session, now - FAILURE_SWEEP_WINDOW, now - FAILURE_SWEEP_GRACE)
    added = 0
    for job in lost:
        log.warning("job %d: failed for good with no failure SR queued (the process stopped?): queuing it now", job.id)
        added += report_failure(settings, sessions, job)
    return added


def _report_gave_up(settings: Settings, sessions: sessionmaker[Session], gave_up: list[jobstore.ClaimedJob]) -> None:
    """Jobs `claim` found past their maximum attempts (their last worker died): FAILED, reported."""
    for job in gave_up:
        log.error("job %d: failed for good: its last worker stopped without finishing", job.id)
        report_failure(settings, sessions, dataclasses.replace(job, attempt=job.attempt - 1))


def claim_one(settings: Settings, sessions: sessionmaker[Session], owner: str) -> jobstore.ClaimedJob | None:
    gave_up: list[jobstore.ClaimedJob] = []
    with sessions() as session:
        job = jobstore.claim(session, owner, utcnow(), settings.jobs.lease_seconds, gave_up=gave_up)
    _report_gave_up(settings, sessions, gave_up)
    return job


def claim_job(settings: Settings, sessions: sessionmaker[Session], job_id: int, owner: str) -> jobstore.ClaimedJob | None:
    """Claim the job `job_id` if it is due (or its lease expired); None when it is done,
    held by a live worker, or not due yet."""
    gave_up: list[jobstore.ClaimedJob] = []
    with sessions() as session:
        job = jobstore.claim(session, owner, utcnow(), settings.jobs.lease_seconds, job_id=job_id, gave_up=gave_up)
    _report_gave_up(settings, sessions, gave_up)
    return job


def preload_pipelines(settings: Settings) -> None:
    """Import the pipelines the routing file names now, not on their first job."""
    try:
        rules = load_rules(settings.routing.rules_file, settings.destinations.keys())
    except ConfigError:
        return  # the node logs it; jobs already queued still run
    for name in sorted({route.pipeline for route in rules.routes}):
        try:
            resolve(name)
        except UnknownPipelineError as exc:
            log.error("pipeline %s cannot be loaded; its jobs will fail: %s", name, exc)


def work_loop(
    settings: Settings,
    owner: str,
    should_stop: Callable[[], bool],
    burst: bool = False,
    engine: Engine | None = None,
    idle: Callable[[float], object] = time.sleep,
    finished: Callable[[], object] = lambda: None,
) -> int:
    """Claim and run jobs until `should_stop()` (or, in burst mode, until none is due).

    `idle(seconds)` waits when no job is due (a wake-up may end it early);
    `finished()` is called after each job (e.g. to wake the outbox sender).
    """
    own_engine = engine is None
    engine = engine or make_engine(settings.store.effective_database_url)
    sessions = make_sessionmaker(engine)
    done = 0
    try:
        while not should_stop():
            try:
                job = claim_one(settings, sessions, owner)
            except Exception:
                log.exception("worker %s: cannot claim a job", owner)
                job = None
            if job is None:
                if burst:
                    break
                idle(settings.jobs.poll_seconds)
                continue
            execute(settings, sessions, job)
            finished()
            done += 1
    finally:
        if own_engine:
            engine.dispose()
    return done
