"""`nadir serve [--config FILE]`: run the DICOM node until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys

from daemon import logs
from daemon.commands._store import add_config_argument, settings_or_exit
from daemon.config import ConfigError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if settings is None:
        return 2
    logs.set_format(settings.logging.format)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.ERROR)  # not "job skipped" notes
    from daemon.runtime.daemon import build_daemon

    try:
        node = build_daemon(settings)
    except ConfigError as exc:  # e.g. an invalid routing file
        print(exc, file=sys.stderr)
        return 2
    try:
        node.run()
    except OSError as exc:  # e.g. the port is taken, the data folder is not writable
        log.error("nadir cannot run: %s", exc)
        return 1
    return 0
