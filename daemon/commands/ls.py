"""`nadir study ls [--state S] [--since DATE] [--until DATE] [--route R] [--json]`: the
received studies, last received first, with accession number, patient ID, the routes
of the current revision and, for a FAILED study, why.

Dates are UTC, `YYYY-MM-DD` or an ISO 8601 time; `--until DAY` includes that day.
The database is only read: without one, nothing was received yet.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from daemon.commands._store import add_config_argument, load, open_session
from daemon.store.models import StudyState
from daemon.store.studies import StudyFilter, failure_of, list_studies, routes_of, study_as_dict


def _moment(text: str, *, end_of_day: bool = False) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    if end_of_day and len(text) == 10:  # a day: up to its end
        moment += timedelta(days=1)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _until(text: str) -> datetime:
    return _moment(text, end_of_day=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--state", type=str.upper, choices=[s.value for s in StudyState], help="only studies in this state")
    parser.add_argument("--since", type=_moment, metavar="DATE", help="last received on or after (UTC)")
    parser.add_argument("--until", type=_until, metavar="DATE", help="last received before, or on that day (UTC)")
    parser.add_argument("--route", help="only studies that have a job of this route")
    parser.add_argument("--limit", type=int, default=200)


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    flt = StudyFilter(args.state, args.since, args.until, args.route, args.limit)
    with open_session(settings) as session:
        studies = list_studies(session, flt)
        routes = routes_of(session, studies)
        found = [study_as_dict(s, routes[s.study_instance_uid], failure_of(session, s)) for s in studies]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        filtered = any(v is not None for v in (args.state, args.since, args.until, args.route))
        print("no study matches" if filtered else "no study received yet")
        return 0
    print(f"{'STATE':<10} {'REV':>3} {'INST':>5}  {'LAST RECEIVED (UTC)':<19}  {'ACCESSION':<16} "
          f"{'PATIENT ID':<16} {'ROUTES':<20} STUDY INSTANCE UID")
    for s in found:
        last = str(s["last_received"])[:19].replace("T", " ")
        print(f"{s['state']:<10} {s['revision']:>3} {s['instances']:>5}  {last:<19}  "
              f"{s['accession_number'] or '-':<16} {s['patient_id'] or '-':<16} "
              f"{','.join(s['routes']) or '-':<20} {s['study_instance_uid']}")
        if s["failure"]:
            print(f"{'':>10} why: {s['failure']}")
        if s["conflicting_duplicates"]:
            print(f"{'':>10} refused: {s['conflicting_duplicates']} copy(ies) with other content than an instance "
                  "already stored under the same SOP Instance UID (0x0111; the first copies are kept)")
    return 0
