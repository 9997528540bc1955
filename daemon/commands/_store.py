"""Helpers shared by the job and outbox commands: settings and a database session."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from daemon.config import ConfigError, Settings, load_settings
from daemon.store.db import create_schema, make_engine, make_sessionmaker


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (NADIR_* variables override it)")


def settings_or_exit(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


@contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.store.effective_database_url)
    try:
        create_schema(engine)
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()
