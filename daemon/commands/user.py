"""`nadir user add NAME --role admin|viewer`, `nadir user ls`, `nadir user remove NAME`: the
local accounts of the admins' console (web.auth: local).

`add` reads the password from the terminal (asked twice), or one line of standard input
when it is not a terminal (`printf '%s\\n' "$PW" | nadir user add ops --role viewer`).
Adding a user that exists sets their role and password and ends their sessions. The
node's database is created when it does not exist yet, as `nadir serve` would.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from datetime import UTC, datetime

from daemon.commands._store import add_config_argument, load
from daemon.commands.errors import NOT_FOUND, CommandError
from daemon.config import Settings
from daemon.store.console import Role, list_users, put_user, remove_user
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.web.passwords import hash_password

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("action", choices=["add", "ls", "remove"])
    parser.add_argument("name", nargs="?", help="the user name (add, remove)")
    parser.add_argument("--role", choices=[r.value for r in Role], help="add: what the user may do")


def _password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CommandError("no password on standard input")
        return line
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CommandError("the two passwords differ")
    return first


def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    settings.store.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.store.effective_database_url)
    create_schema(engine)
    return engine, make_sessionmaker(engine)


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    if args.action in ("add", "remove") and not args.name:
        raise CommandError(f"`nadir user {args.action}` needs a NAME")
    if args.name is not None and not NAME.fullmatch(args.name):
        raise CommandError(f"{args.name!r}: a user name is 1-64 letters, digits, or . _ @ -, not first")
    if args.action == "add" and args.role is None:
        raise CommandError("`nadir user add` needs --role admin|viewer")
    engine, sessions = _sessions(settings)
    try:
        with sessions() as session:
            if args.action == "ls":
                for user in list_users(session):
                    print(f"{user.name:<24} {user.role}")
                return 0
            if args.action == "remove":
                if not remove_user(session, args.name):
                    raise CommandError(f"no user {args.name!r} (`nadir user ls` lists them)", NOT_FOUND)
                print(f"user {args.name} removed")
                return 0
            try:
                hashed = hash_password(_password())
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            added = put_user(session, args.name, Role(args.role), hashed, datetime.now(UTC))
        print(f"user {args.name} {'added' if added else 'updated'} ({args.role})")
    finally:
        engine.dispose()
    if settings.web.auth != "local":
        print("note: web.auth is 'header': local accounts are not used until it is 'local'", file=sys.stderr)
    return 0
