"""`nadir resend [ID...]`: put dead letters (all, or the given outbox ids) back in the outbox."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from daemon.commands._store import add_config_argument, open_session, settings_or_exit
from daemon.store.outbox import resend


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("ids", type=int, nargs="*", help="outbox ids (see `nadir outbox`); none: every dead letter")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if settings is None:
        return 2
    with open_session(settings) as session:
        count = resend(session, datetime.now(UTC), args.ids)
    print(f"{count} dead letter(s) put back in the outbox")
    return 0
