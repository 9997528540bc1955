"""`nadir explain DIR_OR_STUDY_UID [--json]`: which routes match a study, condition by condition.

DIR is a folder of DICOM files (searched recursively; every study in it is
explained); otherwise the argument is the Study Instance UID of a stored study.
The rules are the settings' routing file, or `--rules FILE`. For each route that
runs and names a `series:` spec, the series its pipeline would take (or why none
fits, series by series) follows. `--json` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from daemon.commands._store import add_config_argument, load, open_session
from daemon.commands.errors import CommandError
from daemon.config import Settings
from daemon.imaging.loader import scan
from daemon.imaging.selection import SeriesSpec, select_series
from daemon.routing import ConditionResult, Decision, StudySummary, decide, explain
from daemon.routing_rules import load_rules
from daemon.store.spool import Spool
from daemon.store.studies import study_by_uid
from daemon.store.summary import stored_files, summaries_of_folder, summary_of_stored

UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("target", help="a folder of DICOM files, or a stored study's Study Instance UID")
    parser.add_argument("--rules", type=Path, help="routing file to use instead of the settings' one")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _check_target(text: str) -> None:
    """A CommandError when the target is neither a folder nor what a Study Instance UID looks like."""
    target = Path(text)
    if target.is_dir():
        return
    if target.exists():
        raise CommandError(f"{target}: a file; give the folder that holds the study's DICOM files")
    if not UID.fullmatch(text):
        raise CommandError(f"{target}: no such folder (and not a Study Instance UID)")


def _studies(args: argparse.Namespace, settings: Settings) -> tuple[list[StudySummary], dict[str, list[Path]]]:
    """The summaries and files of the target: a folder, else a stored study's UID."""
    target = Path(args.target)
    if target.is_dir():
        summaries, files = summaries_of_folder(target)
        if not summaries:
            raise CommandError(f"{target}: no DICOM study in this folder", 1)
        return summaries, files
    with open_session(settings) as session:
        study = study_by_uid(session, args.target)
        if study is None:
            raise CommandError(f"no study {args.target} in the node's database (`nadir study ls` lists them)")
        spool = Spool(settings.store.spool_dir)
        return [summary_of_stored(session, spool, study)], {
            study.study_instance_uid: stored_files(session, spool, study.id)
        }


def run(args: argparse.Namespace) -> int:
    _check_target(args.target)
    settings = load(args)
    rules_file = args.rules or settings.routing.rules_file
    rules = load_rules(rules_file, settings.destinations.keys())  # a ConfigError names file and line
    summaries, files = _studies(args, settings)
    now = datetime.now(UTC)
    decided = [(s, decide(s, rules, now)) for s in summaries]
    if args.json:
        out = {
            "rules_file": str(rules_file),
            "routes": len(rules.routes),
            "studies": [
                {**summary_as_dict(s), **decision_as_dict(d),
                 "series_choices": series_choices(d, files.get(s.study_instance_uid, []))}
                for s, d in decided
            ],
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"Rules: {rules_file} ({len(rules.routes)} route(s), evaluated by priority, then in file order)")
    for summary, decision in decided:
        calling = f", sent by {', '.join(summary.calling_aes)}" if summary.calling_aes else ""
        print(f"\n{len(summary.series)} series, {summary.instances} instance(s){calling}")
        for line in explain(decision):
            print(line)
        for route, lines in series_choices(decision, files.get(summary.study_instance_uid, [])).items():
            print(f"\nseries for route {route}:")
            for line in lines:
                print(f"  {line}")
    return 0


def summary_as_dict(summary: StudySummary) -> dict[str, Any]:
    return {
        "study_instance_uid": summary.study_instance_uid,
        "series": len(summary.series),
        "instances": summary.instances,
        "calling_aes": list(summary.calling_aes),
    }


def condition_as_dict(result: ConditionResult) -> dict[str, Any]:
    return {
        "description": result.description,
        "matched": result.matched,
        "scope": result.scope,
        "keyword": result.keyword,
        "values": list(result.values),
        "children": [condition_as_dict(c) for c in result.children],
    }


def decision_as_dict(decision: Decision) -> dict[str, Any]:
    """The decision as data: every route's outcome, and every condition with the values it read."""
    return {
        "runs": [r.route.name for r in decision.matching],
        "wait_until": decision.wait_until.isoformat() if decision.wait_until else None,
        "results": [
            {
                "route": r.route.name,
                "pipeline": r.route.pipeline,
                "destinations": list(r.route.destinations),
                "fallback": r.route.fallback,
                "outcome": r.outcome.value,
                "runs": r.runs,
                "reason": r.reason,
                "match": condition_as_dict(r.match) if r.match is not None else None,
                "wait": condition_as_dict(r.wait) if r.wait is not None else None,
            }
            for r in decision.results
        ],
    }


def series_choices(decision: Decision, files: list[Path]) -> dict[str, list[str]]:
    """For each route that runs with a `series:` spec: the series its pipeline would take, and why."""
    routes = [r.route for r in decision.matching if "series" in r.route.parameters]
    if not routes:
        return {}
    found = scan(files).series
    series = {uid: s for uid, s in found.items() if s.study_instance_uid == decision.study_instance_uid}
    out: dict[str, list[str]] = {}
    for route in routes:
        try:
            spec = SeriesSpec.model_validate(route.parameters["series"])
        except ValidationError as exc:
            out[route.name] = [f"its series spec is invalid: {exc}"]
            continue
        out[route.name] = select_series(spec, series).explain().splitlines()
    return out
