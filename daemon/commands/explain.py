"""`nadir explain DIR_OR_STUDY_UID`: which routes match a study, condition by condition.

DIR is a folder of DICOM files (searched recursively; every study in it is
explained); otherwise the argument is the Study Instance UID of a stored study.
The rules are the settings' routing file, or `--rules FILE`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from daemon.commands._store import add_config_argument, open_session, settings_or_exit
from daemon.config import ConfigError
from daemon.routing import StudySummary, decide, explain
from daemon.routing_rules import load_rules
from daemon.store.models import Study
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
    if target.is_dir():
        summaries, _files = summaries_of_folder(target)
        if not summaries:
            print(f"{target}: no DICOM study found", file=sys.stderr)
            return 1
    else:
        with open_session(settings) as session:
            study = session.scalar(select(Study).where(Study.study_instance_uid == args.target))
            if study is None:
                print(f"{args.target}: neither a folder nor a stored study", file=sys.stderr)
                return 1
            summaries = [summary_of_stored(session, Spool(settings.store.spool_dir), study)]
    print(f"Rules: {rules_file} ({len(rules.routes)} route(s), evaluated by priority, then in file order)")
    now = datetime.now(UTC)
    for summary in summaries:
        calling = f", sent by {', '.join(summary.calling_aes)}" if summary.calling_aes else ""
        print(f"\n{len(summary.series)} series, {summary.instances} instance(s){calling}")
        for line in explain(decide(summary, rules, now)):
            print(line)
    return 0
