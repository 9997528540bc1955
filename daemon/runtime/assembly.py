"""The assembly service: every `assembly.sweep_interval_seconds`, settled studies become
READY (`daemon.store.sweeper.sweep`) and the router is woken."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError

from daemon.runtime.bus import StudyReady, Topic
from daemon.runtime.context import Context
from daemon.store.recorder import utcnow
from daemon.store.sweeper import sweep

log = logging.getLogger(__name__)


class AssemblyService:
    name = "assembly"

    def __init__(self, ctx: Context, clock: Callable[[], datetime] = utcnow) -> None:
        self._ctx = ctx
        self._clock = clock

    def start(self) -> None:
        self._ctx.every("assembly-sweep", self._ctx.settings.assembly.sweep_interval_seconds, self.tick)

    def stop(self) -> None:
        self._ctx.cancel("assembly-sweep")

    def tick(self) -> None:
        try:
            moved = sweep(
                self._ctx.sessions, self._clock(), self._ctx.settings.assembly.settle_seconds
            )
        except OperationalError as exc:  # e.g. the database is busy or briefly away
            log.warning("assembly sweep skipped: %s", exc.orig)
            return
        for study in moved:
            self._ctx.bus.publish(Topic.STUDY_READY, StudyReady(study.study_instance_uid, study.revision))
