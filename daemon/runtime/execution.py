"""Job execution: claim a job, run its pipeline, record the outputs in the outbox.

`execute(settings, sessions, job)` is the whole of a job's work and assumes nothing
about the process it runs in: it reads the study's files from the spool, hands the
pipeline what the runtime provides (priors, report settings, rules folder), and
writes outputs and the outbox rows in the transaction that marks the job DONE (only
while it still holds the lease). Both executors call it: the local pool's
`work_loop` after `claim_one`, and a Celery worker after `claim_job` of the job
named by its message.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import ConfigError, Settings
from daemon.pipelines.base import PipelineInput, UnknownPipelineError, resolve
from daemon.routing_rules import load_rules
from daemon.runtime.priors import NodePriors
from daemon.store import jobs as jobstore
from daemon.store import outbox
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
        priors=NodePriors(settings, sessions), report=settings.report,
        rules_dir=settings.routing.rules_file.parent,
    )


def execute(settings: Settings, sessions: sessionmaker[Session], job: jobstore.ClaimedJob) -> jobstore.JobState | None:
    """Run one claimed job to DONE, RETRYING or FAILED; returns the new state."""
    data_dir = settings.store.data_dir
    log.info("job %d: %s on study %s rev %d (attempt %d)", job.id, job.route, job.study_instance_uid, job.revision, job.attempt)
    try:
        with _Heartbeat(sessions, job, settings) as beat:
            files = study_files(sessions, Spool(settings.store.spool_dir), job.study_instance_uid)
            pipeline = resolve(job.pipeline)
            datasets = pipeline(pipeline_input(settings, sessions, job, files))
            outputs = [
                outbox.Output(str(ds.SOPInstanceUID), str(ds.SOPClassUID), str(ds.StudyInstanceUID), outbox.write_output(data_dir, ds))
                for ds in datasets
            ]
        if beat.lost:
            return None
        with sessions() as session:
            now = utcnow()
            if not jobstore.mark_done(session, job.id, job.owner, now, len(outputs)):
                log.warning("job %d: lease lost before completion; its result is discarded", job.id)
                session.rollback()
                return None
            outbox.add(session, outputs, job.destinations, job.id, now)
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
        return state


def claim_one(settings: Settings, sessions: sessionmaker[Session], owner: str) -> jobstore.ClaimedJob | None:
    with sessions() as session:
        return jobstore.claim(session, owner, utcnow(), settings.jobs.lease_seconds)


def claim_job(settings: Settings, sessions: sessionmaker[Session], job_id: int, owner: str) -> jobstore.ClaimedJob | None:
    """Claim the job `job_id` if it is due (or its lease expired); None when it is done,
    held by a live worker, or not due yet."""
    with sessions() as session:
        return jobstore.claim(session, owner, utcnow(), settings.jobs.lease_seconds, job_id=job_id)


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
