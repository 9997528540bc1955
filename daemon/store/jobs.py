"""Durable jobs: one per (study revision, route), leased by a worker while it runs.

States: QUEUED -> RUNNING -> DONE | FAILED | RETRYING (-> RUNNING again when due).
A worker claims a job with a conditional update (works the same on SQLite and
PostgreSQL: of two workers racing for a row, one update matches), holds a lease it
extends by heartbeat, and completes it only while it still owns the lease. A job
whose worker died (kill -9) has a lease that expires; any worker then claims it
again, counting the attempt. Past the job's maximum attempts it is FAILED.

Nothing here assumes the worker is in this process: a remote worker (Celery)
calls the same `claim`/`heartbeat`/`mark_done`/`fail` against the same database.
With the Celery executor, `dispatchable` lists the due jobs whose message is still
to be sent (never sent, sent before the job became due again, or sent too long ago)
and `mark_dispatched` records the sending; a message is only a wake-up, the row
decides whether a worker runs the job.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
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

from daemon.store.db import Base

UID_LENGTH = 64
DEFAULT_QUEUE = "default"


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"  # failed, runs again after `not_before`
    DONE = "DONE"
    FAILED = "FAILED"  # failed for good (max attempts); `nadir job retry` queues it again


PENDING_STATES = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.RETRYING})


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("study_instance_uid", "revision", "route", name="uq_job_study_revision_route"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), nullable=True, index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(128))
    pipeline: Mapped[str] = mapped_column(String(256))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destinations: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), index=True, default=JobState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outputs: Mapped[int] = mapped_column(Integer, default=0)
    # the route's queue (Celery executor: only workers consuming it take the job)
    queue: Mapped[str] = mapped_column(String(64), default=DEFAULT_QUEUE, server_default=DEFAULT_QUEUE)
    # when its message was last put on the broker (Celery executor); None: never
    dispatched: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the route's `report_failure`: FAILED for good sends an SR saying so to the destinations
    report_failure: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


def utc(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; they are stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class NewJob:
    study_instance_uid: str
    revision: int
    route: str
    pipeline: str
    parameters: Mapping[str, Any]
    destinations: Sequence[str]
    max_attempts: int
    study_id: int | None = None
    queue: str = DEFAULT_QUEUE
    report_failure: bool = True


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run a job; plain data, picklable, sendable to a remote worker."""

    id: int
    study_instance_uid: str
    revision: int
    route: str
    pipeline: str
    parameters: Mapping[str, Any]
    destinations: tuple[str, ...]
    attempt: int
    owner: str
    report_failure: bool = True
    max_attempts: int = 0  # 0: unknown (every attempt may be the last)

    @property
    def last_attempt(self) -> bool:
        """No attempt follows this one if it fails."""
        return self.attempt >= self.max_attempts


def enqueue(session: Session, job: NewJob, now: datetime) -> bool:
    """Add a job unless (study, revision, route) already has one; True when added."""
    exists = session.scalar(
        select(Job.id).where(
            Job.study_instance_uid == job.study_instance_uid,
            Job.revision == job.revision,
            Job.route == job.route,
        )
    )
    if exists is not None:
        return False
    session.add(
        Job(
            study_id=job.study_id,
            study_instance_uid=job.study_instance_uid,
            revision=job.revision,
            route=job.route,
            pipeline=job.pipeline,
            parameters=dict(job.parameters),
            destinations=list(job.destinations),
            state=JobState.QUEUED,
            attempts=0,
            max_attempts=job.max_attempts,
            queue=job.queue,
            report_failure=job.report_failure,
            created=now,
            updated=now,
            not_before=now,
        )
    )
    return True


def _claimable(now: datetime) -> Any:
    return or_(
        and_(Job.state.in_([JobState.QUEUED, JobState.RETRYING]), Job.not_before <= now),
        and_(Job.state == JobState.RUNNING, Job.lease_expires < now),
    )


def claim(session: Session, owner: str, now: datetime, lease_seconds: float, limit: int = 5,
          job_id: int | None = None, gave_up: list[ClaimedJob] | None = None) -> ClaimedJob | None:
    """Take the oldest due job (or one whose lease expired), or only `job_id`; commits.
    None when none is due. A job past its maximum attempts (its last worker died) is
    FAILED instead, and appended to `gave_up`."""
    query = select(Job.id).where(_claimable(now))
    if job_id is not None:
        query = query.where(Job.id == job_id)
    candidates = session.scalars(query.order_by(Job.not_before, Job.id).limit(limit)).all()
    for candidate in candidates:
        result = session.execute(
            update(Job)
            .where(Job.id == candidate, _claimable(now))
            .values(
                state=JobState.RUNNING,
                attempts=Job.attempts + 1,
                lease_owner=owner,
                lease_expires=now + timedelta(seconds=lease_seconds),
                started=now,
                updated=now,
            )
        )
        session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker took it
        job = session.get(Job, candidate, populate_existing=True)
        assert job is not None
        if job.attempts > job.max_attempts:
            why = f"gave up after {job.max_attempts} attempt(s); the last worker stopped without finishing (lease expired)"
            if _finish_failed(session, job, owner, now, why) and gave_up is not None:
                gave_up.append(claimed(job, owner))
            continue
        return claimed(job, owner)
    return None


def claimed(job: Job, owner: str) -> ClaimedJob:
    return ClaimedJob(
        job.id, job.study_instance_uid, job.revision, job.route, job.pipeline,
        dict(job.parameters), tuple(job.destinations), job.attempts, owner, job.report_failure,
        job.max_attempts,
    )


def dispatchable(session: Session, now: datetime, redispatch_seconds: float, limit: int = 100) -> list[tuple[int, str]]:
    """(id, queue) of the due jobs whose message is to be sent, oldest first."""
    stale = now - timedelta(seconds=redispatch_seconds)
    unsent = or_(
        Job.dispatched.is_(None),
        Job.dispatched < stale,
        and_(Job.state.in_([JobState.QUEUED, JobState.RETRYING]), Job.dispatched < Job.not_before),
        and_(Job.state == JobState.RUNNING, Job.dispatched < Job.lease_expires),
    )
    rows = session.execute(
        select(Job.id, Job.queue).where(_claimable(now), unsent).order_by(Job.not_before, Job.id).limit(limit)
    ).all()
    return [(row[0], row[1]) for row in rows]


def mark_dispatched(session: Session, job_id: int, now: datetime) -> None:
    """Record that the job's message was sent; commits."""
    session.execute(update(Job).where(Job.id == job_id).values(dispatched=now))
    session.commit()


def _finish_failed(session: Session, job: Job, owner: str, now: datetime, error: str) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_owner == owner, Job.state == JobState.RUNNING)
        .values(state=JobState.FAILED, error=error, finished=now, updated=now, lease_owner=None, lease_expires=None)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _owned(job_id: int, owner: str) -> Any:
    return and_(Job.id == job_id, Job.lease_owner == owner, Job.state == JobState.RUNNING)


def heartbeat(session: Session, job_id: int, owner: str, now: datetime, lease_seconds: float) -> bool:
    """Extend the lease; False when the job is no longer ours (expired and taken)."""
    result = session.execute(
        update(Job).where(_owned(job_id, owner)).values(lease_expires=now + timedelta(seconds=lease_seconds), updated=now)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def mark_done(session: Session, job_id: int, owner: str, now: datetime, outputs: int) -> bool:
    """Within the caller's transaction: DONE if we still own the lease."""
    result = session.execute(
        update(Job)
        .where(_owned(job_id, owner))
        .values(state=JobState.DONE, finished=now, updated=now, lease_owner=None, lease_expires=None, error=None, outputs=outputs)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def fail(session: Session, job_id: int, owner: str, now: datetime, error: str, retry_delay_seconds: float) -> JobState | None:
    """Record a failed attempt: RETRYING while attempts remain, else FAILED; commits."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.lease_owner != owner or job.state != JobState.RUNNING:
        return None
    final = job.attempts >= job.max_attempts
    state = JobState.FAILED if final else JobState.RETRYING
    delay = retry_delay_seconds * (2 ** max(job.attempts - 1, 0))
    session.execute(
        update(Job)
        .where(_owned(job_id, owner))
        .values(
            state=state,
            error=error[:4000],
            updated=now,
            finished=now if final else None,
            not_before=now + timedelta(seconds=delay),
            lease_owner=None,
            lease_expires=None,
        )
    )
    session.commit()
    return state


def retry(session: Session, job_id: int, now: datetime) -> bool:
    """Queue a FAILED (or DONE) job again with a fresh attempt count; commits."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_([JobState.FAILED, JobState.DONE]))
        .values(state=JobState.QUEUED, attempts=0, not_before=now, updated=now, error=None, finished=None)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def expire_leases_of(session: Session, owners_dead: Callable[[str], bool], now: datetime) -> int:
    """End now the leases of RUNNING jobs whose owner `owners_dead` says is gone; commits.

    Used at start for this host's workers of a previous run (killed with the node):
    their jobs run again at once instead of after the lease time.
    """
    rows = session.execute(select(Job.id, Job.lease_owner).where(Job.state == JobState.RUNNING)).all()
    expired = 0
    for job_id, owner in rows:
        if owner is not None and owners_dead(owner):
            result = session.execute(
                update(Job).where(Job.id == job_id, Job.lease_owner == owner, Job.state == JobState.RUNNING).values(lease_expires=now)
            )
            expired += int(result.rowcount)  # type: ignore[attr-defined]
    session.commit()
    return expired


def list_jobs(session: Session, limit: int = 200) -> list[Job]:
    return list(session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def job_as_dict(job: Job) -> dict[str, Any]:
    def iso(d: datetime | None) -> str | None:
        return utc(d).isoformat() if d is not None else None

    return {
        "id": job.id,
        "study_instance_uid": job.study_instance_uid,
        "revision": job.revision,
        "route": job.route,
        "pipeline": job.pipeline,
        "state": job.state,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created": iso(job.created),
        "started": iso(job.started),
        "finished": iso(job.finished),
        "not_before": iso(job.not_before),
        "lease_owner": job.lease_owner,
        "lease_expires": iso(job.lease_expires),
        "outputs": job.outputs,
        "error": job.error,
        "destinations": list(job.destinations),
        "queue": job.queue,
    }
