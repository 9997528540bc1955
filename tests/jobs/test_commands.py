"""`nadir jobs`, `nadir retry`, `nadir outbox`, `nadir resend` on a database with a
failed job and a dead letter (SQLite; the store itself is tested on both databases)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config import OutboxSettings
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store.db import create_schema, make_engine, make_sessionmaker

NOW = datetime.now(UTC)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NADIR_STORE__DATA_DIR", str(tmp_path))
    engine = make_engine(f"sqlite:///{tmp_path / 'nadir.db'}")
    create_schema(engine)
    with make_sessionmaker(engine)() as s:
        js.enqueue(s, js.NewJob("1.2.3", 1, "qa", "qa_report", {}, ("pacs",), 1), NOW)
        s.commit()
        claimed = js.claim(s, "w", NOW, 30)
        assert claimed is not None
        js.fail(s, claimed.id, "w", NOW, "PipelineError: no readable instance", 1)
        ob.add(s, [ob.Output("1.2.3.4", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.3", "a.dcm")], ["pacs"], None, NOW)
        s.commit()
        cfg = OutboxSettings(max_age_seconds=1)
        ob.record_failure(s, 1, NOW, 0xA700, "C-STORE failed with status 0xA700", cfg)
    engine.dispose()
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_jobs_and_retry(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "jobs", "--json")
    jobs = json.loads(out)
    assert rc == 0 and [(j["id"], j["state"], j["attempts"]) for j in jobs] == [(1, "FAILED", 1)]
    assert jobs[0]["error"] == "PipelineError: no readable instance"
    rc, out = run(capsys, "jobs")
    assert rc == 0 and "FAILED" in out and "error: PipelineError" in out
    rc, out = run(capsys, "retry", "1")
    assert rc == 0 and "job 1 queued again" in out
    rc, out = run(capsys, "retry", "1")
    assert rc == 1 and "only FAILED or DONE" in out
    assert run(capsys, "retry", "99")[0] == 1
    assert json.loads(run(capsys, "jobs", "--json")[1])[0]["state"] == "QUEUED"


def test_outbox_and_resend(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "outbox", "--json")
    rows = json.loads(out)
    assert rc == 0 and len(rows) == 1
    assert rows[0]["dead_letter"] is True and rows[0]["last_status"] == "0xA700"
    assert "dead letter after 1 attempt(s)" in rows[0]["error"]
    history = json.loads(run(capsys, "outbox", "--json", "--history")[1])[0]["history"]
    assert [(a["ok"], a["status"]) for a in history] == [(False, "0xA700")]
    rc, out = run(capsys, "outbox", "--state", "DEAD")
    assert rc == 0 and "DEAD" in out and "0xA700" in out
    rc, out = run(capsys, "resend")
    assert rc == 0 and "1 dead letter(s) put back" in out
    assert json.loads(run(capsys, "outbox", "--json")[1])[0]["state"] == "PENDING"
