"""Retention: remove the rows and spool files of finished studies after their time.

`daemon.runtime.retention` runs `purge` hourly, and also removes what aborted
transfers left in the spool's tmp/.
Only studies in a finished state (`models.FINISHED_STATES`) whose last instance
and last state change are older than `store.retention_days` are removed; a study
with work pending (RECEIVING, READY, PROCESSING, FAILED) is never touched. A row
of another part that still references the study (a job, an outbox entry) makes
the database refuse the delete, and the study is kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from daemon.store.models import FINISHED_STATES, Instance, Study
from daemon.store.spool import Spool

log = logging.getLogger(__name__)

def expired_studies(session: Session, cutoff: datetime) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Study.id, Study.study_instance_uid).where(
            Study.state.in_([str(s) for s in FINISHED_STATES]),
            Study.last_received < cutoff,
            Study.state_changed < cutoff,
        )
    ).all()
    return [(row[0], row[1]) for row in rows]


def purge(sessions: sessionmaker[Session], spool: Spool, now: datetime, days: float) -> int:
    """Remove expired finished studies; return how many were removed."""
    cutoff = now - timedelta(days=days)
    with sessions() as session:
        candidates = expired_studies(session, cutoff)
    removed = 0
    for study_id, uid in candidates:
        try:
            with sessions.begin() as session:
                still = session.scalar(
                    select(Study.id).where(
                        Study.id == study_id,
                        Study.state.in_([str(s) for s in FINISHED_STATES]),
                        Study.last_received < cutoff,
                    )
                )
                if still is None:
                    continue
                paths = list(session.scalars(select(Instance.path).where(Instance.study_id == study_id)))
                session.execute(delete(Instance).where(Instance.study_id == study_id))
                session.execute(delete(Study).where(Study.id == study_id))
        except IntegrityError:
            log.info("study %s kept: other records still refer to it", uid)
            continue
        for path in paths:  # rows first: a crash here leaves unreferenced files, never dangling rows
            spool.remove(path)
        removed += 1
        log.info("retention removed study %s (%d instances)", uid, len(paths))
    return removed
