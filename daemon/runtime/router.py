"""The router: READY studies -> one job per matching route; finished work -> DONE/FAILED.

On each tick (and on a study-ready wake-up) the router takes every READY study,
asks the pure `routing.decide` with the rules in force, and in one transaction
adds the jobs of the matching routes and moves the study to PROCESSING (or DONE
when nothing matches), on the condition that it is still READY at the same
revision. A study whose route waits for a study-level condition stays READY and
is decided again on later ticks. PROCESSING studies become DONE when every job
of their revision is DONE and every output is sent, FAILED when a job failed for
good or an output became a dead letter.

The rules are reloaded on SIGHUP and when the file changes; an invalid file is
refused (logged) and the old rules stay in force.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.routing import Decision, Outcome, decide
from daemon.routing_rules import RulesHolder
from daemon.runtime.bus import JobsQueued, StudyReady, Topic
from daemon.runtime.context import Context
from daemon.runtime.execution import report_lost_failures
from daemon.store import jobs as jobstore
from daemon.store.models import Study, StudyState
from daemon.store.outbox import OutboxRow, OutboxState, purge_sent
from daemon.store.rerun import job_for_route
from daemon.store.summary import summary_of_stored

log = logging.getLogger(__name__)

FAILURE_SWEEP_SECONDS = 60


def utcnow() -> datetime:
    return datetime.now(UTC)


def route_study(ctx: Context, holder: RulesHolder, study_id: int, now: datetime) -> Decision | None:
    """Decide one READY study and record the outcome; None when it is not READY any more."""
    with ctx.sessions() as session:
        study = session.get(Study, study_id)
        if study is None or study.state != StudyState.READY:
            return None
        summary = summary_of_stored(session, ctx.spool, study)
        decision = decide(summary, holder.rules, now)
        if decision.waiting:
            return decision
        matching = decision.matching
        moved = session.execute(
            update(Study)
            .where(Study.id == study.id, Study.state == StudyState.READY, Study.revision == study.revision)
            .values(state=StudyState.PROCESSING if matching else StudyState.DONE, state_changed=now)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        for result in matching:
            jobstore.enqueue(session, job_for_route(result.route, study, ctx.settings.jobs.max_attempts), now)
        session.commit()
    if matching:
        ctx.bus.publish(Topic.JOBS_QUEUED, JobsQueued(summary.study_instance_uid))
    for result in decision.results:
        if result.outcome in (Outcome.RUN_AFTER_TIMEOUT, Outcome.SKIPPED_AFTER_TIMEOUT):
            log.info("study %s route %s: %s", summary.study_instance_uid, result.route.name, result.reason)
    names = ", ".join(r.route.name for r in matching) or "none"
    log.info("study %s rev %d routed: %s", summary.study_instance_uid, summary.revision, names)
    return decision


def _revision_outcome(session: Session, study: Study) -> StudyState | None:
    states = set(
        session.scalars(
            select(jobstore.Job.state).where(
                jobstore.Job.study_instance_uid == study.study_instance_uid, jobstore.Job.revision == study.revision
            )
        )
    )
    if states & set(jobstore.PENDING_STATES):
        return None
    job_ids = select(jobstore.Job.id).where(
        jobstore.Job.study_instance_uid == study.study_instance_uid, jobstore.Job.revision == study.revision
    )
    sending = set(session.scalars(select(OutboxRow.state).where(OutboxRow.job_id.in_(job_ids))))
    if OutboxState.PENDING in sending:
        return None
    if jobstore.JobState.FAILED in states or OutboxState.DEAD in sending:
        return StudyState.FAILED
    return StudyState.DONE


def finish_studies(ctx: Context, now: datetime) -> int:
    """Move PROCESSING (and FAILED, after a retry or resend) studies to DONE or FAILED."""
    changed = 0
    with ctx.sessions() as session:
        studies = session.scalars(
            select(Study).where(Study.state.in_([StudyState.PROCESSING, StudyState.FAILED]))
        ).all()
        for study in studies:
            outcome = _revision_outcome(session, study)
            if outcome is None:
                outcome = StudyState.PROCESSING
            if outcome == study.state:
                continue
            result = session.execute(
                update(Study)
                .where(Study.id == study.id, Study.state == study.state, Study.revision == study.revision)
                .values(state=outcome, state_changed=now)
            )
            changed += int(result.rowcount)  # type: ignore[attr-defined]
            log.info("study %s rev %d %s", study.study_instance_uid, study.revision, outcome)
        session.commit()
    return changed


class RouterService:
    name = "router"

    def __init__(self, ctx: Context, clock: Callable[[], datetime] = utcnow) -> None:
        self._ctx = ctx
        self._clock = clock
        settings = ctx.settings
        # an invalid routing file at start raises ConfigError: the node does not start
        self.holder = RulesHolder(settings.routing.rules_file, settings.destinations.keys(),
                                  site_dir=settings.criteria.site_dir)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._thread = threading.Thread(target=self._run, name="router", daemon=True)
        self._previous_hup: Any = None
        log.info("routing rules from %s: %d route(s)", self.holder.path, len(self.holder.rules.routes))

    def on_study_ready(self, _ready: StudyReady) -> None:
        self._wake.set()

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_hup = signal.signal(signal.SIGHUP, self._on_hup)
        self._thread.start()
        self._ctx.every("outbox-purge", 3600, self.purge)
        self._ctx.every("failure-reports", FAILURE_SWEEP_SECONDS, self.report_lost_failures)

    def report_lost_failures(self) -> None:
        try:
            report_lost_failures(self._ctx.settings, self._ctx.sessions, self._clock())
        except Exception:
            log.exception("the sweep for lost failure reports failed")

    def purge(self) -> None:
        """Sent outputs older than the retention time: rows and files removed."""
        cutoff = self._clock() - timedelta(days=self._ctx.settings.store.retention_days)
        try:
            with self._ctx.sessions() as session:
                removed = purge_sent(session, self._ctx.settings.store.data_dir, cutoff)
        except Exception:
            log.exception("outbox purge failed")
            return
        if removed:
            log.info("removed %d sent output(s) older than %g day(s)", removed, self._ctx.settings.store.retention_days)

    def stop(self) -> None:
        self._ctx.cancel("outbox-purge")
        self._ctx.cancel("failure-reports")
        self._stop.set()
        self._wake.set()
        self._thread.join()
        if self._previous_hup is not None:
            signal.signal(signal.SIGHUP, self._previous_hup)

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()
        self._wake.set()

    def _run(self) -> None:
        interval = min(self._ctx.settings.routing.watch_interval_seconds, self._ctx.settings.assembly.sweep_interval_seconds)
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.tick()
            except Exception:
                log.exception("router tick failed")

    def tick(self) -> None:
        if self._reload.is_set():
            self._reload.clear()
            log.info("SIGHUP: reloading the routing rules")
            self.holder.reload()
        else:
            self.holder.reload_if_changed()
        now = self._clock()
        with self._ctx.sessions() as session:
            ready = session.scalars(select(Study.id).where(Study.state == StudyState.READY).order_by(Study.id)).all()
        for study_id in ready:
            route_study(self._ctx, self.holder, study_id, now)
        finish_studies(self._ctx, now)
