"""How Nadir logs: the one place that configures logging (the CLI calls `configure`).

Two formats, both with UTC timestamps carrying their offset
(`2026-12-04T21:40:35.123+00:00`): `text`, one line per record
(`<ts> <LEVEL> <logger>: <message>`), and `json` for log collectors, one JSON object
per line with `ts`, `level`, `logger`, `message`, and `exc` when the record carries an
exception (`process` in a child process). Patient data is never logged above DEBUG:
UIDs only. pydicom's own warnings (its logger, and the Python warnings it issues)
quote dataset values (a birth date, a too-long patient name): they are DEBUG records
here. A value that comes from a dataset or a peer goes into a message through
`escape`, and the text format escapes any control character left in a message, so a
value cannot forge a log line.

`configure` replaces the handler it installed before and leaves any other one alone
(a test's capture handler, say), so `serve` and `worker` can re-apply the format of
the settings once they have read them, and spawned children apply the parent's.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

Format = Literal["text", "json"]
FORMATS: tuple[Format, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHILD_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(processName)s]: %(message)s"
# third-party loggers that are chatty at INFO (highdicom: one line per copied module)
NOISY = ("pynetdicom", "highdicom", "apscheduler", "celery", "kombu", "amqp")
_MAIN = "MainProcess"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPED = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029]")
ESCAPE_LIMIT = 200


def _code(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape(value: object, limit: int = ESCAPE_LIMIT) -> str:
    """`value` (from a dataset or a peer) as it goes into a log message: backslashes and
    control characters written as escapes, cut to `limit` characters (`...` marks a cut).
    Reversible and on one line whatever the value holds."""
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    cut = len(text) > limit
    out = _ESCAPED.sub(_code, text[:limit])
    return out + "..." if cut else out


def one_line(message: str) -> str:
    """A formatted message with its control characters escaped (tabs kept)."""
    return _CONTROL.sub(lambda m: m.group() if m.group() == "\t" else _code(m), message)


class DemoteToDebug(logging.Filter):
    """On a logger whose records may quote dataset values: every record below ERROR
    becomes DEBUG, kept only when that logger logs DEBUG."""

    def __init__(self, only_from: str | None = None) -> None:
        super().__init__()
        self._only_from = only_from  # py.warnings: only the warnings issued from this package

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or record.levelno <= logging.DEBUG:
            return True
        if self._only_from is not None and self._only_from not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


# loggers whose records quote dataset values (logger, the package whose warnings they are)
DATASET_QUOTING = (("pydicom", None), ("py.warnings", f"{os.sep}pydicom{os.sep}"))


def quiet_dataset_quoting() -> None:
    """pydicom's warnings (its logger's and its Python warnings, routed to logging) as
    DEBUG records. Idempotent."""
    logging.captureWarnings(True)
    for name, only_from in DATASET_QUOTING:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DemoteToDebug) for f in logger.filters):
            logger.addFilter(DemoteToDebug(only_from))


def iso_utc(created: float) -> str:
    """A record's time as ISO 8601 in UTC with milliseconds and the offset."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """`logging.Formatter` with UTC ISO 8601 timestamps."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return iso_utc(record.created)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = one_line(record.message)  # a traceback, added after, keeps its lines
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, str] = {
            "ts": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.processName and record.processName != _MAIN:
            out["process"] = record.processName
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


class _NadirHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs (and replaces on the next call)."""

    def __init__(self, stream: TextIO, fmt: Format) -> None:
        super().__init__(stream)
        self.nadir_format: Format = fmt


def formatter(fmt: Format) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    child = multiprocessing.current_process().name != _MAIN
    return TextFormatter(CHILD_TEXT_FORMAT if child else TEXT_FORMAT)


def configure(level: int | str = logging.INFO, fmt: Format = "text", stream: TextIO | None = None) -> None:
    """Log records of `level` and above to `stream` (stderr) in `fmt`; chatty libraries at
    WARNING unless `level` is DEBUG."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _NadirHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _NadirHandler(stream or sys.stderr, fmt)
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    quiet_dataset_quoting()
    quiet = root.getEffectiveLevel() > logging.DEBUG
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)


def set_format(fmt: Format) -> None:
    """Keep the level, change the format (e.g. to the settings' `logging.format`)."""
    configure(logging.getLogger().level, fmt)


def current_format() -> Format:
    """The format `configure` last installed in this process (text if none)."""
    for h in logging.getLogger().handlers:
        if isinstance(h, _NadirHandler):
            return h.nadir_format
    return "text"
