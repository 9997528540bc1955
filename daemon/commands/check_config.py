"""`nadir check-config [FILE] [--json]`: validate the settings and what they point at.

It loads what the node would load at start, and what a job would hit later: the
settings (FILE, else `--config`, `$NADIR_CONFIG`, `/etc/nadir/nadir.yaml`; `NADIR_*`
variables override), the routing file (`routing.rules_file`) with each route's
destinations, pipeline parameters, model (manifest and sha256 of the model file) and
criteria rules files, and the criteria's rules files themselves: the shipped ones with
the site's overrides (`criteria.site_dir`). Every problem is one line naming the file,
the line and, in the routing file, the route by its name; exit status 2 when there is
any. The effective settings are printed with every password masked (`user:***@host`):
the systemd unit runs this command before the node, and its output goes to the journal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from daemon.commands._store import config_file
from daemon.config import ConfigError, Settings, load_settings, printable_settings
from daemon.criteria.rules import RULES_DIR, criterion_files, load_rules
from daemon.pipelines.params import CRITERIA_FILES
from daemon.routing import Rules
from daemon.routing_rules import load_rules as load_routing_rules

INVALID = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, nargs="?", default=None,
                        help="YAML settings file (default: --config, $NADIR_CONFIG, /etc/nadir/nadir.yaml)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: the effective settings (masked) and the problems")


def site_problems(site_dir: Path | None) -> list[str]:
    """The site folder exists and holds only criteria rules files (a misspelt name would
    silently leave the shipped thresholds in force)."""
    if site_dir is None:
        return []
    if not site_dir.is_dir():
        return [f"{site_dir}: criteria.site_dir: the site rules folder does not exist"]
    known = sorted({*criterion_files(), *(name for names in CRITERIA_FILES.values() for name in names)})
    return [f"{path}: not a criterion's rules file, so it overrides nothing (the files: "
            f"{', '.join(f'{n}.yaml' for n in known)})"
            for path in sorted(site_dir.glob("*.y*ml")) if path.stem not in known or path.suffix != ".yaml"]


def check(settings: Settings) -> tuple[Rules | None, list[str]]:
    """The routing rules (None when invalid) and every problem found, one line each."""
    problems: list[str] = []
    site_dir = settings.criteria.site_dir
    rules = None
    try:
        rules = load_routing_rules(settings.routing.rules_file, settings.destinations.keys(), site_dir)
    except ConfigError as exc:
        problems += str(exc).splitlines()
    problems += site_problems(site_dir)
    try:
        load_rules(RULES_DIR, site_dir if site_dir is not None and site_dir.is_dir() else None)
    except ConfigError as exc:
        problems += str(exc).splitlines()
    return rules, list(dict.fromkeys(problems))  # in order, each once


def run(args: argparse.Namespace) -> int:
    path = config_file(args.file or getattr(args, "config", None))
    settings: Settings | None = None
    rules: Rules | None = None
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        problems = str(exc).splitlines()
    else:
        rules, problems = check(settings)
    shown = printable_settings(settings) if settings is not None else None
    if args.json:
        print(json.dumps(_report(path, shown, rules, problems), indent=2))
    else:
        _print_text(path, shown, settings, rules, problems)
    return INVALID if problems else 0


def _report(path: Path | None, shown: dict[str, Any] | None, rules: Rules | None,
            problems: list[str]) -> dict[str, Any]:
    return {
        "file": str(path) if path is not None else None,
        "valid": not problems,
        "settings": shown,
        "routes": [route.name for route in rules.routes] if rules is not None else None,
        "problems": problems,
    }


def _print_text(path: Path | None, shown: dict[str, Any] | None, settings: Settings | None,
                rules: Rules | None, problems: list[str]) -> None:
    if problems or shown is None or settings is None:  # one line per problem, nothing else
        for problem in problems:
            print(problem, file=sys.stderr)
        return
    source = f"{path} + NADIR_* environment" if path is not None else "embedded defaults + NADIR_* environment"
    print(f"# settings ({source}): valid; effective settings, passwords masked:")
    print(yaml.safe_dump(shown, sort_keys=False), end="")
    if rules is not None:
        print(f"# {settings.routing.rules_file}: valid; {len(rules.routes)} route(s): "
              f"{', '.join(route.name for route in rules.routes)}")
    site = settings.criteria.site_dir
    print(f"# criteria rules: {RULES_DIR}" + (f", overridden key by key by {site}" if site is not None else ""))
