"""`nadir job retry JOB_ID`: queue a failed (or finished) job again with fresh attempts."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from daemon.commands._store import add_config_argument, load, open_session
from daemon.commands.errors import NOT_FOUND, CommandError
from daemon.store.jobs import Job
from daemon.store.jobs import retry as retry_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("job_id", type=int, help="the job's id (see `nadir job ls`)")


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with open_session(settings) as session:
        job = session.get(Job, args.job_id)
        if job is None:
            raise CommandError(f"no job {args.job_id} (`nadir job ls` lists them)", NOT_FOUND)
        state = job.state
        if not retry_job(session, args.job_id, datetime.now(UTC)):
            raise CommandError(f"job {args.job_id} is {state}: only FAILED or DONE jobs can be retried", NOT_FOUND)
    print(f"job {args.job_id} queued again")
    return 0
