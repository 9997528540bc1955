"""`nadir job ls [--json]`: the jobs, newest first, with state, attempts and error."""

from __future__ import annotations

import argparse
import json

from daemon.commands._store import add_config_argument, load, open_session
from daemon.store.jobs import job_as_dict, list_jobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--limit", type=int, default=200)


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with open_session(settings) as session:
        found = [job_as_dict(j) for j in list_jobs(session, args.limit)]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no job yet")
        return 0
    print(f"{'ID':>6} {'STATE':<9} {'TRIES':>5}  {'ROUTE':<20} {'FINISHED':<25}  STUDY / ERROR")
    for j in found:
        print(
            f"{j['id']:>6} {j['state']:<9} {j['attempts']:>2}/{j['max_attempts']:<2}  {j['route'][:20]:<20} "
            f"{(j['finished'] or '')[:25]:<25}  {j['study_instance_uid']} rev {j['revision']}"
        )
        if j["error"]:
            print(f"{'':>6} error: {j['error']}")
    return 0
