"""`nadir outbox ls [--json] [--state STATE] [--history]`: outputs to send, sent, and dead letters.

`--state` is applied by the database before `--limit`, so `--state DEAD` lists the
dead letters however many rows were sent since.
"""

from __future__ import annotations

import argparse
import json

from daemon.commands._store import add_config_argument, load, open_session
from daemon.store.outbox import OutboxState, attempts_of, list_rows, row_as_dict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument("--state", type=str.upper, choices=[s.value for s in OutboxState], help="only rows in this state")
    parser.add_argument("--limit", type=int, default=500, help="at most this many rows, newest first (default 500)")
    parser.add_argument("--history", action="store_true", help="with every attempt and its DICOM status")


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with open_session(settings) as session:
        rows = list_rows(session, args.limit, args.state)
        found = [row_as_dict(r) for r in rows]
        if args.history:
            for row, item in zip(rows, found, strict=True):
                item["history"] = attempts_of(session, row.id)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(f"no {args.state} row in the outbox" if args.state else "the outbox is empty")
        return 0
    print(f"{'ID':>6} {'STATE':<8} {'TRIES':>5} {'STATUS':<7} {'DESTINATION':<20} SOP INSTANCE UID")
    for r in found:
        print(
            f"{r['id']:>6} {r['state']:<8} {r['attempts']:>5} {r['last_status'] or '-':<7} "
            f"{r['destination'][:20]:<20} {r['sop_instance_uid']}"
        )
        if r["state"] != OutboxState.SENT and r["error"]:
            when = f" (next attempt {r['next_attempt']})" if r["next_attempt"] else ""
            print(f"{'':>6} {r['error']}{when}")
        for a in r.get("history", []):
            print(f"{'':>6} {a['at']} {'ok ' if a['ok'] else 'err'} {a['status'] or '-':<7} {a['error'] or ''}")
    return 0
