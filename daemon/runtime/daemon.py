"""The running node: its services, started in order and stopped in reverse.

`nadir serve` builds one `Context` (settings, database, spool, scheduler, bus),
then the services below, wires their wake-ups on the bus (`daemon.runtime.bus`
lists every topic), starts them, waits for SIGTERM or SIGINT, and stops them.

| service | module | what it does |
| --- | --- | --- |
| assembly | `runtime.assembly` | RECEIVING studies that have settled become READY |
| retention | `runtime.retention` | finished studies and aborted transfers removed after their time |
| receiving | `runtime.receiving` | the DICOM listener (`node.scp`), and more receiving processes |
| router | `runtime.router` | READY studies -> one job per matching route; studies DONE/FAILED |
| executor | `runtime.local_executor` or `runtime.celery_executor` | runs the jobs (`runtime.execution`) |
| sender | `runtime.sender` | the outbox, C-STORE to each destination with retries |
| web | `web.service` | the admins' console, the HTTP API, /health, /ready, /metrics (web.port) |

A service has `name`, `start()` (returns promptly: it starts a thread, processes
or timers on `ctx.scheduler`) and `stop()` (returns once its current unit of work
is finished).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

from daemon.config import Settings
from daemon.runtime.bus import JobsQueued, Topic
from daemon.runtime.context import Context, build_context

log = logging.getLogger(__name__)


class Service(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Executor(Service, Protocol):
    def on_jobs_queued(self, queued: JobsQueued) -> None:
        """Jobs were queued: look for due jobs now rather than at the next poll."""


def make_executor(ctx: Context) -> Executor:
    if ctx.settings.jobs.executor == "celery":
        from daemon.runtime.celery_executor import CeleryExecutor

        return CeleryExecutor(ctx)
    from daemon.runtime.local_executor import LocalExecutor

    return LocalExecutor(ctx)


def build_services(ctx: Context) -> list[Service]:
    """Every service of the node, in start order, with their wake-ups subscribed."""
    from daemon.runtime.assembly import AssemblyService
    from daemon.runtime.receiving import ReceivingService
    from daemon.runtime.retention import RetentionService
    from daemon.runtime.router import RouterService
    from daemon.runtime.sender import SenderService

    router = RouterService(ctx)
    executor = make_executor(ctx)
    sender = SenderService(ctx.settings, ctx.sessions)
    ctx.bus.subscribe(Topic.STUDY_READY, router.on_study_ready)
    ctx.bus.subscribe(Topic.JOBS_QUEUED, executor.on_jobs_queued)
    ctx.bus.subscribe(Topic.OUTPUTS_READY, sender.on_outputs_ready)
    receiving = ReceivingService(ctx)
    services: list[Service] = [AssemblyService(ctx), RetentionService(ctx), receiving, router, executor, sender]
    if ctx.settings.web.enabled:  # the console last: up once the node it shows is
        from daemon.web.service import WebService, node_checks

        services.append(WebService(ctx, router.holder, node_checks(ctx, receiving)))
    return services


class Daemon:
    """Starts services in order, stops them in reverse; `run` blocks until a signal."""

    def __init__(self, ctx: Context, services: Sequence[Service]) -> None:
        self.ctx = ctx
        self.services = list(services)
        self._stop = threading.Event()
        self._started: list[Service] = []

    def start(self) -> None:
        self.ctx.scheduler.start()
        try:
            for service in self.services:
                log.debug("starting %s", service.name)
                service.start()
                self._started.append(service)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self._started:
            service = self._started.pop()
            began = time.monotonic()
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s failed", service.name)
            log.debug("stopped %s in %.2f s", service.name, time.monotonic() - began)
        if self.ctx.scheduler.running:
            self.ctx.scheduler.shutdown(wait=True)
        self.ctx.engine.dispose()

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> None:
        """Start, wait for SIGTERM/SIGINT (or `request_stop`), stop cleanly."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            log.info("nadir running (%s)", ", ".join(s.name for s in self.services))
            while not self._stop.wait(1.0):
                pass
            log.info("stopping")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("stopped")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self._stop.set()


def build_daemon(settings: Settings) -> Daemon:
    ctx = build_context(settings)
    return Daemon(ctx, build_services(ctx))
