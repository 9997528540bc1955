"""An admin's "re-run this route on this study": the route's job for the study's current
revision queued again, whatever the routing decided.

The route is taken as it is defined now (the rules in force): its job is added when the
revision has none (the route did not match, or was added since), or its DONE or FAILED
job is queued again with the route's current pipeline, parameters and destinations and
fresh attempts. A DONE or FAILED study goes back to PROCESSING, so the router's
`finish_studies` moves it on again when the job ends. Refused: a study whose current
revision is still arriving or not routed yet (RECEIVING, READY: the router will decide
it), and a job already queued or running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.routing import Route
from daemon.store.jobs import PENDING_STATES, Job, JobState, NewJob, enqueue
from daemon.store.models import Study, StudyState


class RerunRefused(Exception):
    """The route cannot be queued again for this study now (the message says why)."""


@dataclass(frozen=True)
class Rerun:
    job_id: int
    was: str | None  # the job's state before (None: a new job)
    study_was: str


def job_for_route(route: Route, study: Study, default_max_attempts: int) -> NewJob:
    """The job of `route` on the study's current revision."""
    return NewJob(
        study.study_instance_uid, study.revision, route.name, route.pipeline, dict(route.parameters),
        route.destinations, route.max_attempts or default_max_attempts, study.id, route.queue,
        report_failure=route.report_failure,
    )


def rerun_route(session: Session, study: Study, route: Route, default_max_attempts: int, now: datetime) -> Rerun:
    """Queue `route` for the study's current revision; commits. RerunRefused when it cannot be."""
    if study.state in (StudyState.RECEIVING, StudyState.READY):
        raise RerunRefused(f"study {study.study_instance_uid} is {study.state}: its revision {study.revision} "
                           "is not routed yet (the router decides it once it has settled)")
    new = job_for_route(route, study, default_max_attempts)
    job = session.scalar(select(Job).where(Job.study_instance_uid == study.study_instance_uid,
                                           Job.revision == study.revision, Job.route == route.name))
    was: str | None = None
    if job is None:
        enqueue(session, new, now)
        session.flush()
        job = session.scalar(select(Job).where(Job.study_instance_uid == study.study_instance_uid,
                                               Job.revision == study.revision, Job.route == route.name))
        assert job is not None
    else:
        was = str(job.state)
        queued = session.execute(
            update(Job).where(Job.id == job.id, Job.state.in_([JobState.DONE, JobState.FAILED])).values(
                state=JobState.QUEUED, attempts=0, not_before=now, updated=now, error=None, finished=None,
                pipeline=new.pipeline, parameters=dict(new.parameters), destinations=list(new.destinations),
                max_attempts=new.max_attempts, queue=new.queue, report_failure=new.report_failure))
        if queued.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            state = was if was in PENDING_STATES else "changed meanwhile"
            raise RerunRefused(f"job {job.id} of route {route.name} is {state}: it runs already")
    study_was = str(study.state)
    if study.state in (StudyState.DONE, StudyState.FAILED):
        moved = session.execute(update(Study).where(
            Study.id == study.id, Study.state == study.state, Study.revision == study.revision,
        ).values(state=StudyState.PROCESSING, state_changed=now))
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            raise RerunRefused(f"study {study.study_instance_uid} changed meanwhile: reload and try again")
    job_id = job.id
    session.commit()
    return Rerun(job_id, was, study_was)
