"""In-process wake-ups between the node's services: every topic in one place.

The database stays the source of truth: a wake-up only shortens a wait. Each
service also finds its work by querying at start and on a timer, since a wake-up
is lost with the process (and never crosses to another machine).

| topic | published by | payload | subscribed by |
| --- | --- | --- | --- |
| `STUDY_READY` | assembly (a study revision settled) | `StudyReady` | router |
| `JOBS_QUEUED` | router (jobs added for a study) | `JobsQueued` | the executor |
| `OUTPUTS_READY` | local executor (a job finished) | `None` | outbox sender |
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class Topic(enum.StrEnum):
    STUDY_READY = "study.ready"
    JOBS_QUEUED = "jobs.queued"
    OUTPUTS_READY = "outbox.ready"


@dataclass(frozen=True)
class StudyReady:
    study_instance_uid: str
    revision: int


@dataclass(frozen=True)
class JobsQueued:
    study_instance_uid: str


class Bus:
    """Topic -> callbacks, called on the publisher's thread; a failing callback is logged."""

    def __init__(self) -> None:
        self._subs: dict[Topic, list[Callable[[Any], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: Topic, callback: Callable[[Any], None]) -> None:
        with self._lock:
            self._subs[topic].append(callback)

    def publish(self, topic: Topic, payload: Any = None) -> None:
        with self._lock:
            callbacks = list(self._subs[topic])
        for cb in callbacks:
            try:
                cb(payload)
            except Exception:
                log.exception("subscriber of %s failed", topic)
