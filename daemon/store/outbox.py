"""The outbox: every output instance that must reach every destination.

A row is keyed by (output SOP Instance UID, destination), never by a job id: two
routes or revisions can never hide each other's results, and a re-run that
derives the same UID replaces the row's file and sends it again (the PACS stores
the same instance again, not a duplicate).

States: PENDING (due at `next_attempt`) -> SENT, or DEAD (a dead letter: still
failing past the maximum age; `nadir outbox resend` makes it PENDING again). Every
attempt is recorded in `outbox_attempts` with its DICOM status or error.

Output files live under `<data_dir>/outputs/`, written atomically (temporary
file, fsync, rename, fsync of the directory) before the row is committed.
"""

from __future__ import annotations

import enum
import os
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from daemon.config import OutboxSettings, OutputKind
from daemon.report.kinds import taken_by
from daemon.report.reissue import Issue
from daemon.store.db import Base
from daemon.store.jobs import ClaimedJob, Job, JobState, claimed, utc
from daemon.store.spool import fsync_dir, path_component

UID_LENGTH = 64
OUTPUTS_DIR = "outputs"


class OutboxState(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    DEAD = "DEAD"


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("sop_instance_uid", "destination", name="uq_outbox_sop_destination"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    destination: Mapped[str] = mapped_column(String(128), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True)
    path: Mapped[str] = mapped_column(String(512))  # relative to <data_dir>/outputs
    state: Mapped[str] = mapped_column(String(16), index=True, default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    age_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # max age counts from here
    next_attempt: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_attempt: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    times_sent: Mapped[int] = mapped_column(Integer, default=0)
    # the UID the pipeline derived (this row's own for a first issue, daemon.report.reissue)
    # and the digest of its run's content: a re-run compares with the latest issue
    issue_of: Mapped[str | None] = mapped_column(String(UID_LENGTH), nullable=True, index=True)
    content_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)


class OutboxAttempt(Base):
    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # DICOM status, None: no response
    ok: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


# --- files ---------------------------------------------------------------------------


def outputs_root(data_dir: Path) -> Path:
    return data_dir / OUTPUTS_DIR


def write_output(data_dir: Path, ds: Dataset) -> str:
    """Write `ds` (with file meta) atomically; return its path relative to the outputs root."""
    study = path_component(str(ds.StudyInstanceUID))
    relative = f"{study}/{path_component(str(ds.SOPInstanceUID))}.dcm"
    root = outputs_root(data_dir)
    final = root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{uuid.uuid4().hex}.tmp"
    try:
        ds.save_as(temp, enforce_file_format=True)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(final.parent)
    return relative


# --- rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    path: str  # relative to the outputs root
    issue_of: str | None = None  # the UID the pipeline derived, when sent under another
    content_digest: str | None = None
    kind: OutputKind | None = None  # daemon.report.kinds; None: a class of no kind, sent everywhere


def add(session: Session, outputs: Sequence[Output], destinations: Sequence[str], job_id: int | None, now: datetime,
        outputs_of: Callable[[str], frozenset[OutputKind]] | None = None) -> int:
    """Within the caller's transaction: one PENDING row per (output, destination), for
    each destination that takes the output's kind (`outputs_of(destination)`, the
    settings' `destinations.<name>.outputs`; None: every destination takes everything).

    An existing row with the same key (a re-run) is made PENDING again with the new file.
    """
    count = 0
    for out in outputs:
        for dest in destinations:
            if outputs_of is not None and not taken_by(out.kind, outputs_of(dest)):
                continue
            row = session.scalar(
                select(OutboxRow).where(OutboxRow.sop_instance_uid == out.sop_instance_uid, OutboxRow.destination == dest)
            )
            if row is None:
                row = OutboxRow(sop_instance_uid=out.sop_instance_uid, destination=dest, created=now, attempts=0, times_sent=0)
                session.add(row)
            row.sop_class_uid = out.sop_class_uid
            row.study_instance_uid = out.study_instance_uid
            row.job_id = job_id
            row.path = out.path
            row.issue_of = out.issue_of or out.sop_instance_uid
            row.content_digest = out.content_digest
            row.state = OutboxState.PENDING
            row.age_from = now
            row.next_attempt = now
            row.last_error = None
            count += 1
    return count


def latest_issues(session: Session, data_dir: Path, base_uids: Sequence[str]) -> dict[str, Issue]:
    """For each UID a pipeline derived: how its output was last issued (the row added
    last, any destination), with the Instance Number of its file; absent if never."""
    out: dict[str, Issue] = {}
    root = outputs_root(data_dir)
    for base in base_uids:
        row = session.scalars(
            select(OutboxRow)
            .where(or_(OutboxRow.issue_of == base, and_(OutboxRow.sop_instance_uid == base, OutboxRow.issue_of.is_(None))))
            .order_by(OutboxRow.age_from.desc(), OutboxRow.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            out[base] = Issue(row.sop_instance_uid, row.content_digest, _instance_number(root / row.path))
    return out


def _instance_number(path: Path) -> int | None:
    try:
        value = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["InstanceNumber"]).get("InstanceNumber")
        return int(value) if value not in (None, "") else None
    except Exception:  # noqa: BLE001 - a file gone or unreadable: the number is unknown
        return None


def due(session: Session, now: datetime, limit: int) -> list[OutboxRow]:
    return list(
        session.scalars(
            select(OutboxRow)
            .where(OutboxRow.state == OutboxState.PENDING, OutboxRow.next_attempt <= now)
            .order_by(OutboxRow.destination, OutboxRow.next_attempt, OutboxRow.id)
            .limit(limit)
        )
    )


def due_among(session: Session, ids: Sequence[int], now: datetime) -> set[int]:
    """Those of `ids` that are PENDING and due at `now`."""
    rows = session.scalars(select(OutboxRow.id).where(
        OutboxRow.id.in_(list(ids)), OutboxRow.state == OutboxState.PENDING, OutboxRow.next_attempt <= now))
    return set(rows)


def backoff_seconds(attempts: int, cfg: OutboxSettings, rnd: random.Random | None = None) -> float:
    """Delay before the next attempt after `attempts` failures: exponential, capped, jittered."""
    base = min(cfg.max_delay_seconds, cfg.first_retry_seconds * cfg.backoff_factor ** max(attempts - 1, 0))
    r = (rnd or random).uniform(-cfg.jitter, cfg.jitter)
    return max(0.0, base * (1.0 + r))


def record_success(session: Session, row_id: int, now: datetime, status: int) -> None:
    """Commit: SENT, with the attempt and its status."""
    session.add(OutboxAttempt(outbox_id=row_id, at=now, status=status, ok=True))
    session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id)
        .values(
            state=OutboxState.SENT, attempts=OutboxRow.attempts + 1, last_attempt=now, last_status=status,
            last_error=None, sent=now, times_sent=OutboxRow.times_sent + 1,
        )
    )
    session.commit()


def record_failure(session: Session, row_id: int, now: datetime, status: int | None, error: str, cfg: OutboxSettings,
                   permanent: bool = False) -> OutboxState:
    """Commit: PENDING again after a backoff, or DEAD past the maximum age, or DEAD at
    once when the failure is `permanent` (sending the same file again cannot succeed)."""
    row = session.get(OutboxRow, row_id, populate_existing=True)
    if row is None:
        return OutboxState.DEAD
    attempts = row.attempts + 1
    age = (now - utc(row.age_from)).total_seconds()
    delay = backoff_seconds(attempts, cfg)
    dead = permanent or age + delay > cfg.max_age_seconds
    state = OutboxState.DEAD if dead else OutboxState.PENDING
    if permanent:
        reason = f"dead letter at once (not retried): {error}"
    elif dead:
        reason = f"dead letter after {attempts} attempt(s) over {age:.0f} s (max age {cfg.max_age_seconds:g} s); last error: {error}"
    else:
        reason = error
    session.add(OutboxAttempt(outbox_id=row_id, at=now, status=status, ok=False, error=error[:2000]))
    row.attempts = attempts
    row.last_attempt = now
    row.last_status = status
    row.last_error = reason[:4000]
    row.state = state
    row.next_attempt = now + timedelta(seconds=delay)
    session.commit()
    return state


def resend(session: Session, now: datetime, ids: Sequence[int] = ()) -> int:
    """Put dead letters (all, or those of `ids`) back as PENDING; commits."""
    stmt = update(OutboxRow).where(OutboxRow.state == OutboxState.DEAD)
    if ids:
        stmt = stmt.where(OutboxRow.id.in_(list(ids)))
    result = session.execute(stmt.values(state=OutboxState.PENDING, age_from=now, next_attempt=now))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def attempts_of(session: Session, row_id: int) -> list[dict[str, Any]]:
    """Every attempt of one row, oldest first, with its DICOM status or error."""
    rows = session.scalars(select(OutboxAttempt).where(OutboxAttempt.outbox_id == row_id).order_by(OutboxAttempt.id))
    return [
        {
            "at": utc(a.at).isoformat(),
            "ok": a.ok,
            "status": None if a.status is None else f"0x{a.status:04X}",
            "error": a.error,
        }
        for a in rows
    ]


def purge_sent(session: Session, data_dir: Path, cutoff: datetime) -> int:
    """Remove SENT rows sent before `cutoff`, and their files once no row uses them; commits."""
    old = session.scalars(select(OutboxRow).where(OutboxRow.state == OutboxState.SENT, OutboxRow.sent < cutoff)).all()
    paths = {row.path for row in old}
    for row in old:
        session.delete(row)
    session.flush()
    still_used = set(session.scalars(select(OutboxRow.path).where(OutboxRow.path.in_(paths)))) if paths else set()
    session.commit()
    root = outputs_root(data_dir)
    for path in paths - still_used:
        (root / path).unlink(missing_ok=True)
    return len(old)


def list_rows(session: Session, limit: int = 500, state: str | None = None) -> list[OutboxRow]:
    """The newest rows (only those in `state` when given: filtered before the limit)."""
    query = select(OutboxRow)
    if state is not None:
        query = query.where(OutboxRow.state == state)
    return list(session.scalars(query.order_by(OutboxRow.id.desc()).limit(limit)))


def states_of(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Outbox id -> state, for those of `ids` that exist."""
    rows = session.execute(select(OutboxRow.id, OutboxRow.state).where(OutboxRow.id.in_(list(ids))))
    return {int(row_id): str(state) for row_id, state in rows}


def row_as_dict(row: OutboxRow) -> dict[str, Any]:
    def iso(d: datetime | None) -> str | None:
        return utc(d).isoformat() if d is not None else None

    return {
        "id": row.id,
        "sop_instance_uid": row.sop_instance_uid,
        "destination": row.destination,
        "study_instance_uid": row.study_instance_uid,
        "sop_class_uid": row.sop_class_uid,
        "job_id": row.job_id,
        "state": row.state,
        "dead_letter": row.state == OutboxState.DEAD,
        "attempts": row.attempts,
        "times_sent": row.times_sent,
        "created": iso(row.created),
        "next_attempt": iso(row.next_attempt) if row.state == OutboxState.PENDING else None,
        "last_attempt": iso(row.last_attempt),
        "last_status": None if row.last_status is None else f"0x{row.last_status:04X}",
        "error": row.last_error,
        "sent": iso(row.sent),
    }


def unreported_failures(session: Session, finished_after: datetime, finished_before: datetime,
                        limit: int = 100) -> list[ClaimedJob]:
    """FAILED jobs of routes that report failures, with destinations, and no outbox row at all:
    their failure SR was lost (the process died between the FAILED commit and the SR)."""
    has_row = select(OutboxRow.id).where(OutboxRow.job_id == Job.id).exists()
    jobs = session.scalars(
        select(Job)
        .where(Job.state == JobState.FAILED, Job.report_failure.is_(True), ~has_row,
               Job.finished > finished_after, Job.finished <= finished_before)
        .order_by(Job.id)
        .limit(limit)
    )
    return [claimed(job, "") for job in jobs if job.destinations]
