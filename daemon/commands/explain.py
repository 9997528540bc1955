"""`nadir explain DIR_OR_STUDY_UID`: which routes match a study, condition by condition.

DIR is a folder of DICOM files (searched recursively; every study in it is
explained); otherwise the argument is the Study Instance UID of a stored study.
The rules are the settings' routing file, or `--rules FILE`. For each route that
runs and names a `series:` spec, the series its pipeline would take (or why none
fits, series by series) follows.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select

from daemon.commands._store import add_config_argument, open_session, settings_or_exit
from daemon.config import ConfigError
from daemon.imaging.loader import scan
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.routing import Decision, StudySummary, decide, explain
from daemon.routing_rules import load_rules
from daemon.store.models import Instance, Study
from daemon.store.spool import Spool
from daemon.store.summary import summaries_of_folder, summary_of_stored


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("target", help="a folder of DICOM files, or a stored study's Study Instance UID")
    parser.add_argument("--rules", type=Path, help="routing file to use instead of the settings' one")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if settings is None:
        return 2
    rules_file = args.rules or settings.routing.rules_file
    try:
        rules = load_rules(rules_file, settings.destinations.keys())
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    target = Path(args.target)
    summaries: list[StudySummary]
    files: dict[str, list[Path]]
    if target.is_dir():
        summaries, files = summaries_of_folder(target)
        if not summaries:
            print(f"{target}: no DICOM study found", file=sys.stderr)
            return 1
    else:
        with open_session(settings) as session:
            study = session.scalar(select(Study).where(Study.study_instance_uid == args.target))
            if study is None:
                print(f"{args.target}: neither a folder nor a stored study", file=sys.stderr)
                return 1
            spool = Spool(settings.store.spool_dir)
            summaries = [summary_of_stored(session, spool, study)]
            paths = session.scalars(select(Instance.path).where(Instance.study_id == study.id))
            files = {study.study_instance_uid: [spool.absolute(p) for p in paths]}
    print(f"Rules: {rules_file} ({len(rules.routes)} route(s), evaluated by priority, then in file order)")
    now = datetime.now(UTC)
    for summary in summaries:
        calling = f", sent by {', '.join(summary.calling_aes)}" if summary.calling_aes else ""
        print(f"\n{len(summary.series)} series, {summary.instances} instance(s){calling}")
        decision = decide(summary, rules, now)
        for line in explain(decision):
            print(line)
        for line in series_choices(decision, files.get(summary.study_instance_uid, [])):
            print(line)
    return 0


def series_choices(decision: Decision, files: list[Path]) -> list[str]:
    """For each route that runs with a `series:` spec: the series its pipeline would take, and why."""
    routes = [r.route for r in decision.matching if "series" in r.route.parameters]
    if not routes:
        return []
    found = scan(files).series
    series = {uid: s for uid, s in found.items() if s.study_instance_uid == decision.study_instance_uid}
    out = []
    for route in routes:
        try:
            spec = SeriesSpec.model_validate(route.parameters["series"])
        except ValidationError as exc:
            out.append(f"\nseries for route {route.name}: its series spec is invalid: {exc}")
            continue
        out.append(f"\nseries for route {route.name}:")
        out += [f"  {line}" for line in select_series(spec, series).explain().splitlines()]
    return out
