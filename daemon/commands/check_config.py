"""`nadir check-config FILE`: validate a settings file and print the effective settings.

It also loads what the settings point at, as `nadir serve` would at start: the routing
rules (`routing.rules_file`, checked against the named destinations) and the
criteria's parameter files under `rules/`; any error names file, key and line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from daemon.config import ConfigError, load_settings
from daemon.criteria.rules import load_rules as load_criteria_rules
from daemon.routing_rules import load_rules as load_routing_rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="YAML settings file")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
        routes = load_routing_rules(settings.routing.rules_file, settings.destinations.keys())
        load_criteria_rules()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    effective = settings.model_dump(mode="json")
    effective["store"]["effective_database_url"] = settings.store.effective_database_url
    print(f"# {args.file}: valid; effective settings (file + NADIR_* environment):")
    print(yaml.safe_dump(effective, sort_keys=False), end="")
    print(f"# {settings.routing.rules_file}: valid; {len(routes.routes)} route(s)")
    return 0
