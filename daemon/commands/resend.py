"""`nadir outbox resend [ID...]`: put dead letters (all, or the given outbox ids) back in the outbox.

An id that is not in the outbox, or not a dead letter, is refused (exit status 1)
and nothing is resent.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from daemon.commands._store import add_config_argument, load, open_session
from daemon.commands.errors import NOT_FOUND, CommandError
from daemon.store.outbox import OutboxState, resend, states_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("ids", type=int, nargs="*", help="outbox ids (see `nadir outbox ls`); none: every dead letter")


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with open_session(settings) as session:
        if args.ids:
            states = states_of(session, args.ids)
            unknown = [str(i) for i in args.ids if i not in states]
            if unknown:
                raise CommandError(f"no outbox row {', '.join(unknown)} (`nadir outbox ls` lists them)", NOT_FOUND)
            alive = [f"{i} is {s}" for i, s in states.items() if s != OutboxState.DEAD]
            if alive:
                raise CommandError(f"outbox row {'; '.join(alive)}: only dead letters are resent", NOT_FOUND)
        count = resend(session, datetime.now(UTC), args.ids)
    print(f"{count} dead letter(s) put back in the outbox")
    return 0
