"""The assembly sweep: marks RECEIVING studies READY once they have settled.

`sweep` reads the RECEIVING studies, asks the pure `assembly.settled` which have
settled at `now`, and moves each to READY with a conditional update (same
revision and instance count as read), so an instance committed meanwhile keeps
its study RECEIVING. `daemon.runtime.assembly` runs it on the node's scheduler;
after a restart the first sweep picks every study up where the database left it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from daemon.store.assembly import ReceivingStudy, settled
from daemon.store.models import Study, StudyState

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
