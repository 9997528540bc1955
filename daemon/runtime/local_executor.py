"""The embedded executor: `jobs.workers` local processes running `execution.work_loop`.

CPU-bound pipelines never share the receiver's process. The workers are children
of the node (`runtime.supervisor`): they die with it (a kill -9 of the node leaves
no orphan; its running job's lease then expires and the job runs again) and are
restarted when they die. At start, the jobs of this host's workers of a previous
run get their lease ended at once, so they run again without waiting for it.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from multiprocessing.synchronize import Event as MpEvent

from daemon.config import Settings
from daemon.runtime.bus import JobsQueued, Topic
from daemon.runtime.context import Context
from daemon.runtime.execution import (
    local_owner_dead,
    preload_pipelines,
    utcnow,
    work_loop,
    worker_id,
)
from daemon.runtime.supervisor import ChildProcesses
from daemon.store import jobs as jobstore

log = logging.getLogger(__name__)


def _wait_and_clear(event: MpEvent, seconds: float) -> None:
    if event.wait(seconds):
        event.clear()


def run_worker(settings: Settings, wake: MpEvent, outputs: MpEvent, index: int, stop: threading.Event) -> None:
    """A worker process: claim and run jobs until the node stops it."""
    preload_pipelines(settings)
    work_loop(
        settings,
        worker_id(index),
        stop.is_set,
        idle=lambda seconds: _wait_and_clear(wake, seconds),
        finished=outputs.set,
    )


class LocalExecutor:
    """The worker processes, woken when jobs are queued; a finished job wakes the sender."""

    name = "local-executor"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        mp = multiprocessing.get_context("spawn")
        self._wake = mp.Event()
        self._outputs = mp.Event()
        self._workers = ChildProcesses(
            "worker", run_worker, (ctx.settings, self._wake, self._outputs), ctx.settings.jobs.workers
        )
        self._closing = threading.Event()
        self._relay = threading.Thread(target=self._relay_outputs, name="outputs-relay", daemon=True)

    def start(self) -> None:
        with self._ctx.sessions() as session:
            expired = jobstore.expire_leases_of(session, local_owner_dead, utcnow())
        if expired:
            log.info("%d job(s) of workers that died with a previous run will run again", expired)
        self._workers.start()
        self._relay.start()
        log.info("%d worker process(es) started", self._ctx.settings.jobs.workers)

    def on_jobs_queued(self, _queued: JobsQueued) -> None:
        self._wake.set()

    def _relay_outputs(self) -> None:
        while not self._closing.is_set():
            if self._outputs.wait(1.0):
                self._outputs.clear()
                self._ctx.bus.publish(Topic.OUTPUTS_READY)

    def stop(self) -> None:
        self._closing.set()
        self._workers.stop()
        self._relay.join()
