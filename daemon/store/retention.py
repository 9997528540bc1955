"""Retention: remove the rows and spool files of finished studies after their time.

`daemon.runtime.retention` runs `purge` hourly, and also removes what aborted
transfers left in the spool's tmp/.
Studies in a finished state (`models.FINISHED_STATES`) whose last instance and
last state change are older than `store.retention_days` are removed; FAILED
studies after their own time, `store.failed_retention_days` from the same two
moments (so an admin has had the time to look, retry or resend), together with
their jobs and their outbox rows (sent or dead letters) and output files. A study
with work pending (RECEIVING, READY, PROCESSING, or an outbox row still to send) is
never touched. A row of another part that still references the study makes the
database refuse the delete, and the study is kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from daemon.store.models import FINISHED_STATES, Instance, Study, StudyState
from daemon.store.outbox import OutboxRow, OutboxState, outputs_root
from daemon.store.spool import Spool

log = logging.getLogger(__name__)


def _expired(cutoff: datetime, failed_cutoff: datetime | None) -> Any:
    def past(states: list[str], moment: datetime) -> Any:
        return and_(Study.state.in_(states), Study.last_received < moment, Study.state_changed < moment)

    condition = past([str(s) for s in FINISHED_STATES], cutoff)
    if failed_cutoff is not None:
        condition = or_(condition, past([str(StudyState.FAILED)], failed_cutoff))
    pending = exists().where(
        OutboxRow.study_instance_uid == Study.study_instance_uid, OutboxRow.state == OutboxState.PENDING
    )
    return and_(condition, ~pending)


def expired_studies(session: Session, cutoff: datetime, failed_cutoff: datetime | None = None) -> list[tuple[int, str]]:
    rows = session.execute(select(Study.id, Study.study_instance_uid).where(_expired(cutoff, failed_cutoff))).all()
    return [(row[0], row[1]) for row in rows]


def purge(sessions: sessionmaker[Session], spool: Spool, now: datetime, days: float,
          failed_days: float | None = None, data_dir: Path | None = None) -> int:
    """Remove expired finished studies (and FAILED ones past `failed_days`, if given);
    return how many were removed. With `data_dir`, their outbox rows and output files go too."""
    cutoff = now - timedelta(days=days)
    failed_cutoff = now - timedelta(days=failed_days) if failed_days is not None else None
    with sessions() as session:
        candidates = expired_studies(session, cutoff, failed_cutoff)
    removed = 0
    for study_id, uid in candidates:
        try:
            with sessions.begin() as session:
                still = session.scalar(select(Study.id).where(Study.id == study_id, _expired(cutoff, failed_cutoff)))
                if still is None:
                    continue
                paths = list(session.scalars(select(Instance.path).where(Instance.study_id == study_id)))
                outputs = _delete_outbox_rows(session, uid) if data_dir is not None else set()
                session.execute(delete(Instance).where(Instance.study_id == study_id))
                session.execute(delete(Study).where(Study.id == study_id))
        except IntegrityError:
            log.info("study %s kept: other records still refer to it", uid)
            continue
        for path in paths:  # rows first: a crash here leaves unreferenced files, never dangling rows
            spool.remove(path)
        if data_dir is not None:
            for output in outputs:
                (outputs_root(data_dir) / output).unlink(missing_ok=True)
        removed += 1
        log.info("retention removed study %s (%d instances)", uid, len(paths))
    return removed


def _delete_outbox_rows(session: Session, study_uid: str) -> set[str]:
    """Within the caller's transaction: the study's outbox rows deleted; the output files
    no other row uses."""
    rows = session.scalars(select(OutboxRow).where(OutboxRow.study_instance_uid == study_uid)).all()
    paths = {row.path for row in rows}
    for row in rows:
        session.delete(row)
    session.flush()
    used = set(session.scalars(select(OutboxRow.path).where(OutboxRow.path.in_(paths)))) if paths else set()
    return paths - used
