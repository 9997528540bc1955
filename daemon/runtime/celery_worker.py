"""`nadir worker`: Celery worker processes that run the jobs the node sends (executor celery).

The command's process supervises `concurrency` children (`runtime.supervisor`: they
die with it and are restarted); each child is a Celery worker running one job at a
time (solo pool, prefetch 1, late acknowledgement) on the queues it was given.
A child needs what the node has: the database (`store.database_url`, PostgreSQL
when workers run on other machines) and the spool (`store.data_dir`, a shared POSIX
path mounted at the same place as on the node). It runs a message's job with the
same `execution.execute` as the local pool, so outputs and outbox rows are
committed with the job's DONE state, and the node's sender delivers them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.runtime.celery_app import TASK, make_app
from daemon.runtime.execution import (
    claim_job,
    execute,
    local_owner_dead,
    preload_pipelines,
    utcnow,
    worker_id,
)
from daemon.runtime.supervisor import ChildProcesses
from daemon.store import jobs as jobstore
from daemon.store.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)


def run_job(settings: Settings, sessions: sessionmaker[Session], owner: str, job_id: int) -> str:
    """A message's job: claimed and executed, or left alone (done, held, not due); the outcome."""
    job = claim_job(settings, sessions, job_id, owner)
    if job is None:
        # its last owner on this host may have died (kill -9): end that lease, try once more
        with sessions() as session:
            expired = jobstore.expire_leases_of(session, local_owner_dead, utcnow())
        job = claim_job(settings, sessions, job_id, owner) if expired else None
    if job is None:
        log.info("job %d: nothing to do (done, running elsewhere, or not due)", job_id)
        return "skipped"
    state = execute(settings, sessions, job)
    return str(state) if state is not None else "lease lost"


def run_celery_worker(settings: Settings, queues: Sequence[str], index: int, _stop: threading.Event) -> None:
    """One child: a Celery worker on `queues` until SIGTERM (its warm shutdown)."""
    engine = make_engine(settings.store.effective_database_url)
    sessions = make_sessionmaker(engine)
    owner = worker_id(index)
    app = make_app(settings.jobs.broker_url)

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def _task(job_id: int) -> str:
        return run_job(settings, sessions, owner, int(job_id))

    preload_pipelines(settings)
    level = logging.getLogger().getEffectiveLevel()
    worker = app.Worker(
        hostname=f"nadir{index}.{os.getpid()}@{socket.gethostname()}",
        queues=list(queues), pool="solo", concurrency=1, loglevel=level,
        without_mingle=True, without_gossip=True, optimization="fair", quiet=True,
    )
    log.info("worker %s consuming %s", owner, ", ".join(queues))
    try:
        worker.start()
    finally:
        engine.dispose()


class WorkerProcesses:
    """`nadir worker`: the children, stopped on SIGTERM or SIGINT."""

    def __init__(self, settings: Settings, queues: Sequence[str], concurrency: int) -> None:
        self._children = ChildProcesses("celery-worker", run_celery_worker, (settings, tuple(queues)), concurrency)
        self._stop = threading.Event()

    def run(self) -> None:
        previous: dict[int, Any] = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self._children.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            log.info("stopping the worker processes (a running job finishes, or runs again elsewhere)")
            self._children.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self._stop.set()
