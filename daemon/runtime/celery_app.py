"""The Celery application both sides share: the node sends `TASK` messages, workers run them.

A message carries only a job id: the database row decides whether it runs (a job
done, or held by a live worker, is not run again), so a duplicate or redelivered
message does nothing. Late acknowledgement: a worker acknowledges a message only
when the job is finished, so a worker killed mid-job leaves its message to the
broker, which gives it to another worker; the job's lease, ended when its owner is
known dead or expired otherwise, then lets that worker claim it.

`app` is configured with the default broker for the `celery` command line
(`celery -A daemon.runtime.celery_app inspect ping`); `nadir serve` and `nadir
worker` build their own with `make_app(settings.jobs.broker_url)`.
"""

from __future__ import annotations

from celery import Celery

from daemon.config import JobSettings

TASK = "nadir.run_job"


def make_app(broker_url: str) -> Celery:
    app = Celery("nadir", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="default",
        worker_prefetch_multiplier=1,  # a worker holds only the message it runs
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # no AMQP heartbeats: a solo-pool worker sends none while it runs a job, and the
        # broker would close its connection mid-job (celery#3430) and redeliver the message;
        # a dead worker's connection is closed by its kernel (kill -9 included) or by TCP
        # keepalive, and its job's lease ends the same
        broker_heartbeat=0,
    )
    return app


app = make_app(JobSettings().broker_url)
