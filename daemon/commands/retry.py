"""`nadir retry JOB_ID`: queue a failed (or finished) job again with fresh attempts."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from daemon.commands._store import add_config_argument, open_session, settings_or_exit
from daemon.store.jobs import Job
from daemon.store.jobs import retry as retry_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("job_id", type=int, help="the job's id (see `nadir jobs`)")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if settings is None:
        return 2
    with open_session(settings) as session:
        job = session.get(Job, args.job_id)
        if job is None:
            print(f"no job {args.job_id}", file=sys.stderr)
            return 1
        state = job.state
        if not retry_job(session, args.job_id, datetime.now(UTC)):
            print(f"job {args.job_id} is {state}: only FAILED or DONE jobs can be retried", file=sys.stderr)
            return 1
    print(f"job {args.job_id} queued again")
    return 0
