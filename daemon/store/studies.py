"""Read queries about received studies, for `nadir study ls` and `nadir study show`.

Filters run in SQL before the limit. A FAILED study says why: the error of the
current revision's failed job, else the error of its dead-lettered delivery.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from daemon.store.jobs import Job, JobState, utc
from daemon.store.models import Instance, Study, StudyState
from daemon.store.outbox import OutboxRow, OutboxState


@dataclass(frozen=True)
class StudyFilter:
    state: str | None = None
    since: datetime | None = None  # last instance received at or after
    until: datetime | None = None  # last instance received before
    route: str | None = None  # a job of this route, any revision
    limit: int = 200


def _filtered(flt: StudyFilter) -> Select[Study]:
    query = select(Study)
    if flt.state is not None:
        query = query.where(Study.state == flt.state)
    if flt.since is not None:
        query = query.where(Study.last_received >= flt.since)
    if flt.until is not None:
        query = query.where(Study.last_received < flt.until)
    if flt.route is not None:
        query = query.where(select(Job.id).where(Job.study_instance_uid == Study.study_instance_uid,
                                                 Job.route == flt.route).exists())
    return query


def list_studies(session: Session, flt: StudyFilter) -> list[Study]:
    """The studies that pass `flt`, last received first, at most `flt.limit`."""
    query = _filtered(flt).order_by(Study.last_received.desc(), Study.id.desc()).limit(flt.limit)
    return list(session.scalars(query))


def study_by_uid(session: Session, uid: str) -> Study | None:
    return session.scalar(select(Study).where(Study.study_instance_uid == uid))


def routes_of(session: Session, studies: list[Study]) -> dict[str, list[str]]:
    """Study Instance UID -> the routes of its current revision's jobs, in job order."""
    current = {s.study_instance_uid: s.revision for s in studies}
    out: dict[str, list[str]] = defaultdict(list)
    if not current:
        return out
    rows = session.execute(
        select(Job.study_instance_uid, Job.revision, Job.route)
        .where(Job.study_instance_uid.in_(list(current))).order_by(Job.id)
    )
    for uid, revision, route in rows:
        if current[uid] == revision and route not in out[uid]:
            out[uid].append(route)
    return out


def failure_of(session: Session, study: Study) -> str | None:
    """Why a FAILED study failed (its revision's failed job, else a dead letter); None otherwise."""
    if study.state != StudyState.FAILED:
        return None
    job = session.scalar(
        select(Job).where(Job.study_instance_uid == study.study_instance_uid, Job.revision == study.revision,
                          Job.state == JobState.FAILED).order_by(Job.id.desc()).limit(1)
    )
    if job is not None:
        return f"job {job.id} (route {job.route}) failed: {job.error or 'no error recorded'}"
    dead = session.scalar(
        select(OutboxRow).where(OutboxRow.study_instance_uid == study.study_instance_uid,
                                OutboxRow.state == OutboxState.DEAD).order_by(OutboxRow.id.desc()).limit(1)
    )
    if dead is not None:
        return (f"delivery {dead.id} to {dead.destination} is a dead letter: "
                f"{dead.last_error or 'no error recorded'}")
    return "no failed job or dead letter recorded (retried or resent since?)"


def study_as_dict(study: Study, routes: list[str], failure: str | None) -> dict[str, Any]:
    return {
        "study_instance_uid": study.study_instance_uid,
        "state": study.state,
        "instances": study.instance_count,
        # copies refused: another dataset under a SOP Instance UID already stored
        "conflicting_duplicates": study.conflicting_duplicates or 0,
        "accession_number": study.accession_number,
        "patient_id": study.patient_id,
        "first_received": utc(study.first_received).isoformat(),
        "last_received": utc(study.last_received).isoformat(),
        "revision": study.revision,
        "routes": routes,
        "failure": failure,
    }


def series_of(session: Session, study: Study) -> list[dict[str, Any]]:
    """The study's series as the database has them: modality, instances, revisions, senders."""
    rows = session.execute(
        select(Instance.series_instance_uid, func.min(Instance.modality), func.count(Instance.id),
               func.min(Instance.revision), func.max(Instance.revision), func.min(Instance.received))
        .where(Instance.study_id == study.id)
        .group_by(Instance.series_instance_uid)
        .order_by(func.min(Instance.received), Instance.series_instance_uid)
    ).all()
    return [
        {"series_instance_uid": uid, "modality": modality, "instances": int(count),
         "revisions": list(range(int(first), int(last) + 1)), "first_received": utc(received).isoformat()}
        for uid, modality, count, first, last, received in rows
    ]


def jobs_of(session: Session, study: Study) -> list[Job]:
    """Every job of the study, every revision, oldest first."""
    return list(session.scalars(
        select(Job).where(Job.study_instance_uid == study.study_instance_uid).order_by(Job.id)
    ))


def deliveries_of(session: Session, study: Study) -> list[OutboxRow]:
    """Every outbox row of the study's outputs, by output then destination."""
    return list(session.scalars(
        select(OutboxRow).where(OutboxRow.study_instance_uid == study.study_instance_uid)
        .order_by(OutboxRow.job_id, OutboxRow.sop_instance_uid, OutboxRow.destination)
    ))
