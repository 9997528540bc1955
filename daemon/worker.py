"""Job workers: claim a job, run its pipeline, record the outputs in the outbox.

`execute(settings, job)` is the whole of a job's work and assumes nothing about the
process it runs in: it opens its own database connection, reads the study's files
from the spool, and writes outputs and the outbox rows in the transaction that
marks the job DONE (only if it still holds the lease). A Celery task on RabbitMQ
would call `claim_one` + `execute` the same way on a GPU node.

The embedded default is `WorkerPool`: a few local worker *processes* (CPU-bound
pipelines never share the receiver's process) running `work_loop`. Each worker
dies with its parent (PR_SET_PDEATHSIG), so a kill -9 of the daemon leaves no
orphan; its running job's lease then expires and the job runs again.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import ConfigError, Settings
from daemon.pipelines.base import PipelineInput, UnknownPipelineError, resolve
from daemon.routing_rules import load_rules
from daemon.store import jobs as jobstore
from daemon.store import outbox
from daemon.store.db import make_engine, make_sessionmaker
from daemon.store.models import Instance, Study
from daemon.store.spool import Spool

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def worker_id(index: int) -> str:
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


def study_files(sessions: sessionmaker[Session], spool: Spool, study_uid: str) -> list[Any]:
    with sessions() as session:
        study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == study_uid))
        if study_id is None:
            return []
        rows = session.scalars(select(Instance.path).where(Instance.study_id == study_id).order_by(Instance.id))
        return [spool.absolute(p) for p in rows]


def execute(settings: Settings, sessions: sessionmaker[Session], job: jobstore.ClaimedJob) -> jobstore.JobState | None:
    """Run one claimed job to DONE, RETRYING or FAILED; returns the new state."""
    data_dir = settings.store.data_dir
    log.info("job %d: %s on study %s rev %d (attempt %d)", job.id, job.route, job.study_instance_uid, job.revision, job.attempt)
    try:
        with _Heartbeat(sessions, job, settings) as beat:
            files = study_files(sessions, Spool(settings.store.spool_dir), job.study_instance_uid)
            pipeline = resolve(job.pipeline)
            inp = PipelineInput(job.study_instance_uid, job.route, tuple(files), job.parameters, job.revision,
                                settings=settings)
            datasets = pipeline(inp)
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


# --- the local pool of worker processes --------------------------------------------------


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the parent-pid check in the loop still ends us
        pass


def _preload(settings: Settings) -> None:
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


def _wait_and_clear(event: MpEvent, seconds: float) -> None:
    if event.wait(seconds):
        event.clear()


def _process_main(
    settings: Settings, index: int, stop: MpEvent, wake: MpEvent, outputs: MpEvent, parent: int, log_level: int
) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through `stop`
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    if log_level > logging.DEBUG:
        logging.getLogger("highdicom").setLevel(logging.WARNING)  # one line per copied module
    _preload(settings)
    if os.getppid() != parent:
        return
    work_loop(
        settings,
        worker_id(index),
        lambda: stop.is_set() or os.getppid() != parent,
        idle=lambda seconds: _wait_and_clear(wake, seconds),
        finished=outputs.set,
    )


class WorkerPool:
    """`jobs.workers` local processes running `work_loop`; restarts one that dies.

    `wake()` ends the workers' idle wait (new jobs were queued); `on_outputs` is
    called (on the supervisor thread) soon after a worker finished a job.
    """

    name = "workers"

    def __init__(self, settings: Settings, on_outputs: Callable[[], object] = lambda: None) -> None:
        self._settings = settings
        self._on_outputs = on_outputs
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._wake = self._ctx.Event()
        self._outputs = self._ctx.Event()
        self._procs: list[Any] = []
        self._watch: threading.Thread | None = None
        self._closing = threading.Event()

    def _spawn(self, index: int) -> Any:
        proc = self._ctx.Process(
            target=_process_main,
            args=(
                self._settings, index, self._stop, self._wake, self._outputs, os.getpid(),
                logging.getLogger().getEffectiveLevel(),
            ),
            name=f"nadir-worker-{index}",
            daemon=True,
        )
        proc.start()
        return proc

    def start(self) -> None:
        engine = make_engine(self._settings.store.effective_database_url)
        try:
            with make_sessionmaker(engine)() as session:
                expired = jobstore.expire_leases_of(session, local_owner_dead, utcnow())
        finally:
            engine.dispose()
        if expired:
            log.info("%d job(s) of workers that died with a previous run will run again", expired)
        self._procs = [self._spawn(i) for i in range(self._settings.jobs.workers)]
        self._watch = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self._watch.start()
        log.info("%d worker process(es) started", len(self._procs))

    def wake(self) -> None:
        self._wake.set()

    def _supervise(self) -> None:
        while not self._closing.is_set():
            if self._outputs.wait(1.0):
                self._outputs.clear()
                self._on_outputs()
            for i, proc in enumerate(self._procs):
                if not proc.is_alive() and not self._closing.is_set():
                    log.warning("worker %d exited (code %s); starting another", i, proc.exitcode)
                    self._procs[i] = self._spawn(i)

    def stop(self) -> None:
        self._closing.set()
        self._stop.set()
        if self._watch is not None:
            self._watch.join()
        deadline = time.monotonic() + 30.0
        for proc in self._procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("worker %s did not stop in time; terminating it", proc.name)
                proc.terminate()
                proc.join(5.0)
