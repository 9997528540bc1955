"""The delivery log is quiet: a destination that refuses connections gives one WARNING
per attempt, naming the destination and what happened, and no ERROR (pynetdicom's own
lines for a failed association request become DEBUG). Files are synthetic."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jobs.studies import make_series
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.node.scu import Sender
from daemon.store import outbox as ob
from daemon.store.db import create_schema, make_engine, make_sessionmaker

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    settings = Settings(
        store={"data_dir": tmp_path / "data"},
        destinations={"pacs": {"ae_title": "PACS", "host": "127.0.0.1", "port": closed_port()}},
        outbox={"batch_size": 2},  # 3 rows: a batch tried, the rest not attempted in the pass
        node={"network_timeout_s": 5},
    )
    settings.store.data_dir.mkdir(parents=True)
    engine = make_engine(settings.store.effective_database_url)
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        outputs = []
        for ds in make_series("1.2.826.0.1.3680043.10.1442.77", positions=[0, 1, 2]):
            path = ob.write_output(settings.store.data_dir, ds)
            outputs.append(ob.Output(str(ds.SOPInstanceUID), str(ds.SOPClassUID), str(ds.StudyInstanceUID), path))
        ob.add(s, outputs, ["pacs"], None, T0)
        s.commit()
    yield settings, sessions
    engine.dispose()


def test_one_warning_per_failed_attempt_and_no_error(
    outbox: tuple[Settings, sessionmaker[Session]], caplog: pytest.LogCaptureFixture
) -> None:
    settings, sessions = outbox
    clock = [T0]
    sender = Sender(settings, sessions, lambda: clock[0])
    caplog.set_level(logging.INFO)
    for attempt in range(1, 3):
        caplog.clear()
        assert sender.send_due() == 0
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.levelname for r in loud] == ["WARNING"], [(r.name, r.levelname, r.getMessage()) for r in loud]
        message = loud[0].getMessage()
        assert "to pacs" in message and f"PACS@127.0.0.1:{settings.destinations['pacs'].port}" in message
        assert "not sent" in message and "unreachable" in message
        with sessions() as s:
            rows = ob.list_rows(s)
        assert {(r.state, r.attempts) for r in rows} == {(ob.OutboxState.PENDING, attempt)}
        clock[0] += timedelta(hours=1)  # past the backoff: all due again


def test_pynetdicom_lines_are_kept_at_debug(
    outbox: tuple[Settings, sessionmaker[Session]], caplog: pytest.LogCaptureFixture
) -> None:
    settings, sessions = outbox
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pynetdicom")  # an earlier `logs.configure` may have set it to WARNING
    Sender(settings, sessions, lambda: T0).send_due()
    pynetdicom = [r for r in caplog.records if r.name.startswith("pynetdicom")]
    assert any("TCP Initialisation Error" in r.getMessage() for r in pynetdicom)
    assert all(r.levelno < logging.WARNING for r in pynetdicom)
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]
