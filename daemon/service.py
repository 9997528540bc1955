"""The running node: a context shared by the services, and their start/stop.

`nadir serve` builds one `Context` (settings, database, spool, scheduler, event
bus) and the services named in `SERVICE_FACTORIES`, starts them in order, waits
for SIGTERM or SIGINT, and stops them in reverse order.

Plugging a background service in (routing, job workers, outbox sender...):

1. write a class with `name: str`, `start()` and `stop()` (see `Service`);
   `start` must return promptly (start a thread, or add jobs to
   `ctx.scheduler`, an apscheduler `BackgroundScheduler` that the node starts
   before the services and shuts down after them); `stop` must return once the
   service has finished its current unit of work;
2. give it a factory `make(ctx: Context) -> Service` (the class itself works);
3. add `"your.module:make"` to `SERVICE_FACTORIES` below.

Wake-ups: `ctx.bus.subscribe(topic, callback)`; the node publishes
`TOPIC_STUDY_READY` with a `StudyReady` when a study (revision) settles. The
database stays the source of truth: a service must also find its work by
querying (e.g. studies in state READY) at start and on a timer, since a wake-up
is lost with the process.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.spool import Spool

log = logging.getLogger(__name__)

TOPIC_STUDY_READY = "study.ready"

# Started in this order, stopped in reverse. "module:callable", called with the Context.
SERVICE_FACTORIES: tuple[str, ...] = (
    "daemon.store.sweeper:AssemblyService",
    "daemon.store.retention:RetentionService",
    "daemon.node.scp:StoreSCP",
    "daemon.router:make_router",
    "daemon.router:make_workers",
    "daemon.router:make_sender",
)


class Service(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class StudyReady:
    study_instance_uid: str
    revision: int


class Bus:
    """In-process wake-ups: topic -> callbacks, called on the publisher's thread."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> None:
        with self._lock:
            self._subs[topic].append(callback)

    def publish(self, topic: str, payload: Any) -> None:
        with self._lock:
            callbacks = list(self._subs[topic])
        for cb in callbacks:
            try:
                cb(payload)
            except Exception:
                log.exception("subscriber of %s failed", topic)


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    spool: Spool
    scheduler: BackgroundScheduler
    bus: Bus = field(default_factory=Bus)

    def every(self, job_id: str, seconds: float, fn: Callable[[], None], first: datetime | None = None) -> None:
        """Run `fn` on the scheduler every `seconds` (first at `first`, else after one
        interval); a run still going when the next is due is not doubled."""
        extra: dict[str, Any] = {} if first is None else {"next_run_time": first}
        self.scheduler.add_job(
            fn, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True, **extra
        )


ServiceFactory = Callable[[Context], Service]


def build_context(settings: Settings) -> Context:
    """Create the data folder, the schema and the spool; nothing is started."""
    settings.store.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.store.effective_database_url)
    create_schema(engine)
    spool = Spool(settings.store.spool_dir)
    removed = spool.prepare()
    if removed:
        log.info("removed %d incomplete file(s) of interrupted transfers from the spool", removed)
    scheduler = BackgroundScheduler(timezone="UTC")
    return Context(settings, engine, make_sessionmaker(engine), spool, scheduler)


def load_factory(spec: str) -> ServiceFactory:
    module_name, _, attr = spec.partition(":")
    factory: ServiceFactory = getattr(importlib.import_module(module_name), attr)
    return factory


class Node:
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


def build_node(settings: Settings, factories: Sequence[str] = SERVICE_FACTORIES) -> Node:
    ctx = build_context(settings)
    services = [load_factory(spec)(ctx) for spec in factories]
    return Node(ctx, services)
