"""Logging (daemon/logs.py): text or JSON lines, timestamps in UTC with their offset,
configured by the CLI and re-applied by `serve` from the settings' `logging.format`."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import logs
from daemon.config import ConfigError, load_settings
from daemon.demo.peers import NadirNode, free_port, wait_until

UTC_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    noisy = {name: logging.getLogger(name).level for name in logs.NOISY}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for name, was in noisy.items():
        logging.getLogger(name).setLevel(was)


def test_text_lines_carry_utc_timestamps_with_offset(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "text", stream=out)
    logging.getLogger("daemon.test").info("study %s routed", "1.2.3")
    logging.getLogger("daemon.test").debug("not shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(UTC_TS + r" INFO daemon\.test: study 1\.2\.3 routed", lines[0]), lines[0]


def test_json_lines_for_log_collectors(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "json", stream=out)
    log = logging.getLogger("daemon.test")
    log.warning("outbox: 1 instance(s) to %s not sent", "pacs")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("job %d failed", 7)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(first) == {"ts", "level", "logger", "message"}
    assert re.fullmatch(UTC_TS, first["ts"]), first["ts"]
    assert (first["level"], first["logger"], first["message"]) == ("WARNING", "daemon.test", "outbox: 1 instance(s) to pacs not sent")
    assert second["message"] == "job 7 failed" and second["level"] == "ERROR"
    assert "Traceback" in second["exc"] and "RuntimeError: boom" in second["exc"]


def test_configure_again_replaces_its_handler_and_keeps_others(restore_logging: None) -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    logs.configure(logging.INFO, "text", stream=io.StringIO())
    out = io.StringIO()
    logs.configure(logging.INFO, "json", stream=out)
    assert other in root.handlers
    assert logs.current_format() == "json"
    logging.getLogger("daemon.test").info("once")
    assert len(out.getvalue().splitlines()) == 1  # one handler of ours, not two
    assert logging.getLogger("pynetdicom").level == logging.WARNING  # chatty libraries quiet at INFO
    with pytest.raises(ValueError, match="unknown log format"):
        logs.configure(logging.INFO, "xml")  # type: ignore[arg-type]


def test_logging_format_setting(tmp_path: Path) -> None:
    path = tmp_path / "nadir.yaml"
    path.write_text("logging:\n  format: json\n")
    assert load_settings(path).logging.format == "json"
    path.write_text("logging:\n  format: xml\n")
    with pytest.raises(ConfigError, match=r"nadir\.yaml:2: logging\.format"):
        load_settings(path)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_serve_logs_json_lines_when_the_settings_say_so(tmp_path: Path) -> None:
    node = NadirNode(tmp_path / "nadir", free_port(), workers=1, extra_env={"NADIR_LOGGING__FORMAT": "json"})
    node.start()
    try:
        wait_until("a log line", lambda: "routing rules from" in node.log_text(), 30)
    finally:
        node.stop()
    lines = [line for line in node.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r["message"].startswith("routing rules from") for r in records)
    assert all(re.fullmatch(UTC_TS, r["ts"]) for r in records)
