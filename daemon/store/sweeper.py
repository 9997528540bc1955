"""The assembly sweeper: marks RECEIVING studies READY once they have settled.

Each tick reads the RECEIVING studies, asks the pure `assembly.settled` which
have settled at `now`, and moves each to READY with a conditional update (same
revision and instance count as read), so an instance committed meanwhile keeps
its study RECEIVING. Runs on the node's scheduler; after a restart the first
tick picks every study up where the database left it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from daemon.service import TOPIC_STUDY_READY, Context, StudyReady
from daemon.store.assembly import ReceivingStudy, settled
from daemon.store.models import Study, StudyState
from daemon.store.recorder import utcnow

log = logging.getLogger(__name__)


def receiving_studies(session: Session) -> list[ReceivingStudy]:
    rows = session.execute(
        select(
            Study.id,
            Study.study_instance_uid,
            Study.revision,
            Study.instance_count,
            Study.last_received,
            Study.settle_seconds,
        ).where(Study.state == StudyState.RECEIVING)
    ).all()
    return [ReceivingStudy(*row) for row in rows]


def sweep(sessions: sessionmaker[Session], now: datetime, default_seconds: float) -> list[ReceivingStudy]:
    """Move settled studies to READY; return those moved."""
    with sessions() as session:
        candidates = settled(receiving_studies(session), now, default_seconds)
    moved = []
    for study in candidates:
        with sessions.begin() as session:
            result = session.execute(
                update(Study)
                .where(
                    Study.id == study.study_id,
                    Study.state == StudyState.RECEIVING,
                    Study.revision == study.revision,
                    Study.instance_count == study.instance_count,
                )
                .values(state=StudyState.READY, state_changed=now)
            )
        if result.rowcount:  # type: ignore[attr-defined]
            moved.append(study)
            log.info(
                "study %s revision %d READY (%d instances)",
                study.study_instance_uid,
                study.revision,
                study.instance_count,
            )
    return moved


class AssemblyService:
    name = "assembly"

    def __init__(self, ctx: Context, clock: Callable[[], datetime] = utcnow) -> None:
        self._ctx = ctx
        self._clock = clock

    def start(self) -> None:
        self._ctx.every("assembly-sweep", self._ctx.settings.assembly.sweep_interval_seconds, self.tick)

    def stop(self) -> None:
        if self._ctx.scheduler.get_job("assembly-sweep") is not None:
            self._ctx.scheduler.remove_job("assembly-sweep")

    def tick(self) -> None:
        try:
            moved = sweep(
                self._ctx.sessions, self._clock(), self._ctx.settings.assembly.settle_seconds
            )
        except OperationalError as exc:  # e.g. the database is busy or briefly away
            log.warning("assembly sweep skipped: %s", exc.orig)
            return
        for study in moved:
            self._ctx.bus.publish(
                TOPIC_STUDY_READY, StudyReady(study.study_instance_uid, study.revision)
            )
