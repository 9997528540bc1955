"""The `nadir` command.

Each command lives in its own module under `daemon/commands/` exposing
`add_arguments(parser)` and `run(args) -> int`; this module only dispatches,
configures logging (the one place that does) and turns an expected error
(`CommandError`, an invalid settings file) into one line on stderr and its exit
status. Commands that act on the node's records come in groups, git-style
(`nadir study ls`, `nadir job retry 3`, `nadir outbox resend`); the global options
(`--config`, `--log-level`, `-v`, `-q`) go before or after the command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from daemon import __version__, logs
from daemon.commands.errors import USAGE, CommandError
from daemon.config import ConfigError

# name -> (module, one-line help). Modules are imported only when their command runs,
# so `nadir assess` never pays for the network stack and vice versa.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("daemon.commands.serve", "run the DICOM node"),
    "worker": ("daemon.commands.worker", "run jobs the node sends (jobs.executor: celery)"),
    "check-config": ("daemon.commands.check_config", "validate a settings file and print the effective settings"),
    "explain": ("daemon.commands.explain", "which routes match a study, condition by condition"),
    "assess": ("daemon.commands.assess", "run response criteria on a file of cases"),
    "measure": ("daemon.commands.measure", "measure each segment of a DICOM SEG on its source series"),
    "evaluate-model": ("daemon.commands.evaluate_model",
                       "judge a segmentation model against readers' SEG/RTSTRUCT: Dice, HD95, lesions, RANO-BM"),
    "perfusion": ("daemon.commands.perfusion", "liver CT perfusion (maximum slope) and ratios of each lesion of a SEG"),
    "radiomics": ("daemon.commands.radiomics", "PyRadiomics features of each segment of a DICOM SEG, for research"),
    "demo-data": ("daemon.commands.demo_data", "write a demo patient with known ground truth"),
    "export-nifti": ("daemon.commands.export_nifti", "export a DICOM series to NIfTI"),
    "user": ("daemon.commands.user", "web console accounts: user add NAME --role admin|viewer, user ls, user remove NAME"),
}

# group -> action -> (module, one-line help)
GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "study": {
        "ls": ("daemon.commands.ls", "list received studies (state, accession, patient ID, routes, why FAILED)"),
        "show": ("daemon.commands.study_show", "one study: series, route decisions, jobs, outputs, deliveries"),
    },
    "job": {
        "ls": ("daemon.commands.jobs", "list jobs"),
        "retry": ("daemon.commands.retry", "queue a failed job again"),
    },
    "outbox": {
        "ls": ("daemon.commands.outbox", "list outbox rows (pending, sent, dead letters)"),
        "resend": ("daemon.commands.resend", "put dead letters back in the outbox"),
    },
}

# the names before the groups, kept for one release: old name -> (group, action)
ALIASES: dict[str, tuple[str, str]] = {
    "ls": ("study", "ls"),
    "jobs": ("job", "ls"),
    "retry": ("job", "retry"),
    "resend": ("outbox", "resend"),
}

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _command_list() -> str:
    rows = [(name, help_text) for name, (_m, help_text) in COMMANDS.items()]
    for group, actions in GROUPS.items():
        rows += [(f"{group} {action}", help_text) for action, (_m, help_text) in actions.items()]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"  {name:<{width}}{help_text}" for name, help_text in rows]
    old = ", ".join(f"{name} ({' '.join(new)})" for name, new in ALIASES.items())
    return "commands:\n" + "\n".join(lines) + f"\n\nold names, kept for one release: {old}, outbox (outbox ls)"


def build_parser() -> argparse.ArgumentParser:
    """The global options; they are accepted anywhere on the line (before or after the command)."""
    parser = argparse.ArgumentParser(
        prog="nadir", description="Nadir: a DICOM node that turns follow-up studies into tumour-response reports.",
        epilog=_command_list(), add_help=False, allow_abbrev=False,
        usage="nadir [--config FILE] [--log-level LEVEL | -v | -q] COMMAND [ACTION] [ARGS]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help (or the command's) and exit")
    parser.add_argument("--version", action="version", version=f"nadir {__version__}")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML settings file (default: $NADIR_CONFIG, else /etc/nadir/nadir.yaml when it exists)")
    parser.add_argument("--log-level", choices=LEVELS, default=None, help="default INFO")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log (DEBUG)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log (-q WARNING, -qq ERROR)")
    parser.add_argument("command", nargs="?", help=argparse.SUPPRESS)
    return parser


def log_level(ns: argparse.Namespace) -> int:
    """--log-level when given, else INFO moved by -v (down) and -q (up)."""
    if ns.log_level is not None:
        return int(getattr(logging, ns.log_level))
    index = LEVELS.index("INFO") - ns.verbose + ns.quiet
    return int(getattr(logging, LEVELS[max(0, min(index, len(LEVELS) - 1))]))


def _resolve(command: str, rest: list[str]) -> tuple[str, str, list[str]] | None:
    """(program name, module, the command's own arguments); None when unknown.
    A group without a known action is a CommandError naming the actions."""
    if command in COMMANDS:
        return f"nadir {command}", COMMANDS[command][0], rest
    if command in ALIASES:
        group, action = ALIASES[command]
        print(f"nadir: `nadir {command}` is deprecated and goes in the next release; "
              f"use `nadir {group} {action}`", file=sys.stderr)
        return f"nadir {group} {action}", GROUPS[group][action][0], rest
    if command not in GROUPS:
        return None
    actions = GROUPS[command]
    if rest and rest[0] in actions:
        return f"nadir {command} {rest[0]}", actions[rest[0]][0], rest[1:]
    if command == "outbox" and (not rest or rest[0].startswith("-")):  # the old `nadir outbox [--state ...]`
        print("nadir: `nadir outbox` without an action is deprecated and goes in the next release; "
              "use `nadir outbox ls`", file=sys.stderr)
        return "nadir outbox ls", actions["ls"][0], rest
    named = f" {rest[0]!r}" if rest else ""
    raise CommandError(f"unknown action{named}: `nadir {command}` takes one of {', '.join(actions)}")


def _parse(prog: str, module: ModuleType, rest: list[str], ns: argparse.Namespace) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args([*rest, "--help"] if ns.help else rest)
    if ns.config is not None:  # a global option: read before or after the command
        args.config = ns.config
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    ns, rest = top.parse_known_args(args_list)
    if ns.command is None:
        top.print_help()
        return 0 if ns.help else USAGE
    prog = f"nadir {ns.command}"
    if ns.help and ns.command in GROUPS and not (rest and rest[0] in GROUPS[ns.command]):
        print(f"usage: nadir {ns.command} {{{','.join(GROUPS[ns.command])}}} ...\n")
        for action, (_m, help_text) in GROUPS[ns.command].items():
            print(f"  {ns.command} {action:<8} {help_text}")
        return 0
    try:
        resolved = _resolve(ns.command, rest)
        if resolved is None:
            top.print_usage(sys.stderr)
            raise CommandError(f"unknown command {ns.command!r} (`nadir --help` lists them)")
        prog, module_name, own = resolved
        module = importlib.import_module(module_name)
        args = _parse(prog, module, own, ns)
        logs.configure(log_level(ns))  # serve/worker re-apply the settings' format
        result: int = module.run(args)
    except CommandError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:  # settings or rules invalid: the message names file, key and line
        print(exc, file=sys.stderr)
        return USAGE
    return result


if __name__ == "__main__":
    sys.exit(main())
