"""`nadir ls [--json]`: the received studies, newest first."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daemon.config import ConfigError, load_settings
from daemon.store.assembly import as_utc
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.models import Study


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (NADIR_* variables override it)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")


def studies(database_url: str) -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    try:
        create_schema(engine)
        with make_sessionmaker(engine)() as session:
            rows = session.scalars(select(Study).order_by(Study.last_received.desc())).all()
            return [
                {
                    "study_instance_uid": s.study_instance_uid,
                    "state": s.state,
                    "instances": s.instance_count,
                    "first_received": as_utc(s.first_received).isoformat(),
                    "last_received": as_utc(s.last_received).isoformat(),
                    "revision": s.revision,
                }
                for s in rows
            ]
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    found = studies(settings.store.effective_database_url)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{'STATE':<11} {'REV':>3} {'INSTANCES':>9}  {'LAST RECEIVED (UTC)':<19}  STUDY INSTANCE UID")
    for s in found:
        last = str(s["last_received"])[:19].replace("T", " ")
        print(
            f"{s['state']:<11} {s['revision']:>3} {s['instances']:>9}  {last:<19}  {s['study_instance_uid']}"
        )
    return 0
