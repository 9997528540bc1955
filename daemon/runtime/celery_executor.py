"""The Celery executor, node side: each due job's id put on RabbitMQ, on its route's queue.

Every `jobs.poll_seconds` (and at once when the router queued jobs) the node lists
the due jobs whose message is still to be sent (`store.jobs.dispatchable`: never
sent, due again after a failed attempt or an expired lease, or sent longer than
`jobs.redispatch_seconds` ago) and sends one message each. The database stays the
source of truth: a broker that is down delays the jobs, it loses none (they are
sent when it is back). The jobs run in `nadir worker` processes (`runtime.celery_worker`).
"""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError as BrokerError

from daemon.runtime.bus import JobsQueued
from daemon.runtime.celery_app import TASK, make_app
from daemon.runtime.context import Context
from daemon.runtime.execution import utcnow
from daemon.runtime.loop import WakeableLoop
from daemon.store import jobs as jobstore

log = logging.getLogger(__name__)

SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


class CeleryExecutor:
    name = "celery-executor"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._app = make_app(ctx.settings.jobs.broker_url)
        self._loop = WakeableLoop("celery-dispatch", ctx.settings.jobs.poll_seconds, self._dispatch_pass)
        self._broker_down = False

    def start(self) -> None:
        self._loop.start()
        log.info("jobs go to the workers through %s", _redacted(self._ctx.settings.jobs.broker_url))

    def on_jobs_queued(self, _queued: JobsQueued) -> None:
        self._loop.wake()

    def stop(self) -> None:
        self._loop.stop()

    def _dispatch_pass(self) -> bool:
        self.dispatch_due()
        return False

    def dispatch_due(self) -> int:
        """Send the messages of the due jobs; returns how many were sent."""
        jobs = self._ctx.settings.jobs
        with self._ctx.sessions() as session:
            due = jobstore.dispatchable(session, utcnow(), jobs.redispatch_seconds)
        sent = 0
        for job_id, queue in due:
            if self._loop.stopping:
                break
            try:
                self._app.send_task(TASK, args=[job_id], queue=queue, retry=True, retry_policy=SEND_RETRY_POLICY)
            except (BrokerError, OSError) as exc:
                if not self._broker_down:
                    log.error("broker %s unreachable (%s): %d job(s) wait", _redacted(jobs.broker_url), exc, len(due) - sent)
                self._broker_down = True
                break
            if self._broker_down:
                log.info("broker reachable again")
                self._broker_down = False
            with self._ctx.sessions() as session:
                jobstore.mark_dispatched(session, job_id, utcnow())
            log.debug("job %d sent to queue %s", job_id, queue)
            sent += 1
        return sent


def _redacted(url: str) -> str:
    """The broker URL without its password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
