"""The `nadir` command.

Each subcommand lives in its own module under `daemon/commands/` exposing
`add_arguments(parser)` and `run(args) -> int`; this module only dispatches and
configures logging (the one place that does).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from daemon import __version__

# name -> (module, one-line help). Modules are imported only when their command runs,
# so `nadir assess` never pays for the network stack and vice versa.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("daemon.commands.serve", "run the DICOM node"),
    "worker": ("daemon.commands.worker", "run jobs the node sends (jobs.executor: celery)"),
    "check-config": ("daemon.commands.check_config", "validate a settings file and print the effective settings"),
    "ls": ("daemon.commands.ls", "list received studies"),
    "explain": ("daemon.commands.explain", "which routes match a study, condition by condition"),
    "jobs": ("daemon.commands.jobs", "list jobs"),
    "retry": ("daemon.commands.retry", "queue a failed job again"),
    "outbox": ("daemon.commands.outbox", "list outbox rows (pending, sent, dead letters)"),
    "resend": ("daemon.commands.resend", "put dead letters back in the outbox"),
    "assess": ("daemon.commands.assess", "run response criteria on a file of cases"),
    "measure": ("daemon.commands.measure", "measure each segment of a DICOM SEG on its source series"),
    "demo-data": ("daemon.commands.demo_data", "write a demo patient with known ground truth"),
    "export-nifti": ("daemon.commands.export_nifti", "export a DICOM series to NIfTI"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nadir", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nadir {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    ns, rest = top.parse_known_args(args_list)
    if ns.command is None:
        top.print_help()
        return 2
    module_name, help_text = COMMANDS[ns.command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"nadir {ns.command}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(
        level=getattr(logging, ns.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
