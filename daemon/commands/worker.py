"""`nadir worker [--config FILE] [--queues Q1,Q2] [--concurrency N]`: run jobs sent by the node.

For `jobs.executor: celery`: the node puts each due job on RabbitMQ
(`jobs.broker_url`); this command runs them, on any machine that reaches the
broker, the database and the spool (see daemon.runtime.celery_worker).
"""

from __future__ import annotations

import argparse
import logging
import sys

from daemon import logs
from daemon.commands._store import add_config_argument, settings_or_exit

log = logging.getLogger(__name__)


def _queues(text: str) -> list[str]:
    names = [q.strip() for q in text.split(",") if q.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one queue")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--queues", type=_queues, default=["default"],
                        help="comma-separated queues to take jobs from (routes' `queue:`; default: default)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="worker processes, one job each at a time (default: jobs.workers)")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if settings is None:
        return 2
    logs.set_format(settings.logging.format)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for noisy in ("celery", "kombu", "amqp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if settings.jobs.executor != "celery":
        log.warning("jobs.executor is %s: the node runs its jobs itself and sends none to workers",
                    settings.jobs.executor)
    concurrency = args.concurrency or settings.jobs.workers
    if concurrency < 1:
        print("--concurrency must be at least 1", file=sys.stderr)
        return 2
    from daemon.runtime.celery_worker import WorkerProcesses

    log.info("nadir worker: %d process(es) on queue(s) %s", concurrency, ", ".join(args.queues))
    WorkerProcesses(settings, args.queues, concurrency).run()
    return 0
