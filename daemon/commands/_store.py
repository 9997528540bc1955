"""Helpers shared by the commands: the settings file, and a database session.

The settings file is `--config FILE`, else the file named by `NADIR_CONFIG`, else
`/etc/nadir/nadir.yaml` when it exists, else none (the embedded default); `NADIR_*`
variables override any of them.

The commands that read the node's database never create it: without the database
file they see an empty one (nothing received yet), and without the data folder
they stop with one line saying where they looked and what to do.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from daemon.commands.errors import CommandError
from daemon.config import ConfigError, Settings, load_settings
from daemon.store.db import create_schema, make_engine, make_sessionmaker

CONFIG_ENV = "NADIR_CONFIG"
SYSTEM_CONFIG = Path("/etc/nadir/nadir.yaml")
WHERE = "run it where the node runs, or name the node's settings with --config or NADIR_CONFIG"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help=f"YAML settings file (default: ${CONFIG_ENV}, else {SYSTEM_CONFIG} when it exists; "
             "NADIR_* variables override it)",
    )


def config_file(explicit: Path | None, environ: Mapping[str, str] = os.environ,
                system: Path = SYSTEM_CONFIG) -> Path | None:
    """The settings file a command reads: --config, $NADIR_CONFIG, the system file, or none."""
    if explicit is not None:
        return explicit
    named = environ.get(CONFIG_ENV, "").strip()
    if named:
        return Path(named)
    return system if system.is_file() else None


def load(args: argparse.Namespace) -> Settings:
    """The settings of `args.config` (or the default file); ConfigError when invalid."""
    return load_settings(config_file(getattr(args, "config", None)))


def settings_or_exit(args: argparse.Namespace) -> Settings | None:
    """For commands that print a ConfigError themselves: the settings, or None after printing it."""
    try:
        return load(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _existing_engine(settings: Settings) -> Engine | None:
    """An engine on the node's database when it exists; None when nothing was received yet."""
    url = settings.store.effective_database_url
    db_file = _sqlite_file(url)
    if db_file is not None and not db_file.is_file():
        folder = settings.store.data_dir if settings.store.database_url is None else db_file.parent
        if not folder.is_dir():
            raise CommandError(f"no data folder {folder.resolve()} (the node's database would be there): {WHERE}")
        return None  # connecting would create the file
    engine = make_engine(url)
    if not inspect(engine).has_table("studies"):
        engine.dispose()
        return None
    create_schema(engine)  # columns a later version added, as the node does at start
    return engine


def safe_url(settings: Settings) -> str:
    return make_url(settings.store.effective_database_url).render_as_string(hide_password=True)


@contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    """A session on the node's database, never creating it: without one, an empty database
    (in memory) answers. A database that cannot be reached is a CommandError."""
    engine: Engine | None = None
    try:
        engine = _existing_engine(settings)
        if engine is None:
            engine = make_engine("sqlite://")
            create_schema(engine)
        with make_sessionmaker(engine)() as session:
            yield session
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise CommandError(f"cannot use the database {safe_url(settings)}: {reason}; {WHERE}") from exc
    finally:
        if engine is not None:
            engine.dispose()
