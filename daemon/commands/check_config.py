"""`nadir check-config FILE`: validate a settings file and print the effective settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from daemon.config import ConfigError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="YAML settings file")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    effective = settings.model_dump(mode="json")
    effective["store"]["effective_database_url"] = settings.store.effective_database_url
    print(f"# {args.file}: valid; effective settings (file + NADIR_* environment):")
    print(yaml.safe_dump(effective, sort_keys=False), end="")
    return 0
