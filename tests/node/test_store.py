"""The store in process, on a real SQLite file: recorder, sweeper, retention, spool,
orphan adoption. Instances are synthetic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from node_harness import write_series
from pydicom.uid import generate_uid
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.header import read_header
from daemon.store.models import Instance, Study, StudyState
from daemon.store.reconcile import adopt_orphans, mark_running, mark_stopped
from daemon.store.recorder import InstanceRecord, Outcome, Recorder
from daemon.store.retention import purge
from daemon.store.spool import Spool
from daemon.store.sweeper import sweep

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Engine, sessionmaker[Session], Spool, Recorder, Clock]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'nadir.db'}")
    create_schema(engine)
    spool = Spool(tmp_path / "spool")
    spool.prepare()
    clock = Clock()
    recorder = Recorder(engine, clock)
    recorder.start()
    yield engine, make_sessionmaker(engine), spool, recorder, clock
    recorder.stop()
    engine.dispose()


def put(spool: Spool, recorder: Recorder, path: Path, timeout: float = 120.0) -> Outcome:
    header = read_header(path)
    relative = spool.relative_path(header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid)
    spool.write_bytes(relative, path.read_bytes())
    return recorder.record(
        InstanceRecord(
            header.sop_instance_uid, header.study_instance_uid, header.series_instance_uid,
            header.sop_class_uid, header.transfer_syntax_uid, header.modality, header.patient_id,
            header.accession_number, relative, path.stat().st_size, "TESTSCU",
        ),
        timeout=timeout,
    )


def study_row(sessions: sessionmaker[Session], uid: str) -> Study:
    with sessions() as s:
        return s.scalars(select(Study).where(Study.study_instance_uid == uid)).one()


def test_record_settle_late_revision_and_duplicates(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _engine, sessions, spool, recorder, clock = store
    uid = generate_uid()
    files = write_series(tmp_path / "ct", "CT", 4, 16, 16, uid)
    for f in files[:3]:
        assert put(spool, recorder, f) is Outcome.STORED
    assert put(spool, recorder, files[0]) is Outcome.DUPLICATE
    assert study_row(sessions, uid).instance_count == 3

    assert sweep(sessions, T0 + timedelta(seconds=29), 30) == []
    moved = sweep(sessions, T0 + timedelta(seconds=30), 30)
    assert [m.study_instance_uid for m in moved] == [uid]
    row = study_row(sessions, uid)
    assert (row.state, row.revision) == (StudyState.READY, 1)

    clock.now = T0 + timedelta(minutes=5)
    assert put(spool, recorder, files[0]) is Outcome.DUPLICATE  # no new revision for a duplicate
    assert study_row(sessions, uid).state == StudyState.READY
    assert put(spool, recorder, files[3]) is Outcome.STORED  # late: revision 2
    row = study_row(sessions, uid)
    assert (row.state, row.revision, row.instance_count) == (StudyState.RECEIVING, 2, 4)
    with sessions() as s:
        revisions = sorted(s.scalars(select(Instance.revision)))
    assert revisions == [1, 1, 1, 2]


def test_retention_removes_only_finished_studies(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _engine, sessions, spool, recorder, _clock = store
    done_uid, ready_uid = generate_uid(), generate_uid()
    for uid, name in ((done_uid, "a"), (ready_uid, "b")):
        for f in write_series(tmp_path / name, "CT", 2, 16, 16, uid):
            put(spool, recorder, f)
    sweep(sessions, T0 + timedelta(seconds=60), 30)
    with sessions.begin() as s:
        s.execute(update(Study).where(Study.study_instance_uid == done_uid).values(state=StudyState.DONE))

    assert purge(sessions, spool, T0 + timedelta(days=29), 30) == 0
    assert purge(sessions, spool, T0 + timedelta(days=31), 30) == 1
    with sessions() as s:
        assert list(s.scalars(select(Study.study_instance_uid))) == [ready_uid]
        kept = set(s.scalars(select(Instance.path)))
    assert set(spool.iter_files()) == kept and len(kept) == 2


def test_unrecorded_complete_files_are_adopted_and_tmp_cleared(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _engine, sessions, spool, recorder, _clock = store
    uid = generate_uid()
    f = write_series(tmp_path / "ct", "CT", 1, 16, 16, uid)[0]
    h = read_header(f)
    # a crash after the rename and before the commit
    spool.write_bytes(spool.relative_path(uid, h.series_instance_uid, h.sop_instance_uid), f.read_bytes())
    (spool.tmp / "partial.part").write_bytes(b"incomplete")  # a crash mid-transfer
    (spool.root / "junk").mkdir()
    (spool.root / "junk" / "x.dcm").write_bytes(b"not dicom")  # unreadable, never acknowledged

    assert mark_running(spool) is False
    assert mark_running(spool) is True  # the "previous run" never called mark_stopped
    assert adopt_orphans(spool, recorder, sessions) == 1
    assert spool.prepare() == 1
    assert study_row(sessions, uid).instance_count == 1
    assert list(spool.iter_files()) == [spool.relative_path(uid, h.series_instance_uid, h.sop_instance_uid)]
    mark_stopped(spool)
    assert mark_running(spool) is False


def test_stale_tmp_files_of_aborted_transfers_are_removed(tmp_path: Path) -> None:
    import os

    spool = Spool(tmp_path / "spool")
    spool.prepare()
    old, live = spool.tmp / "old.dcm", spool.tmp / "live.dcm"
    old.write_bytes(b"x")
    live.write_bytes(b"y")
    os.utime(old, (0, 0))
    assert spool.clear_stale_tmp(3600) == 1
    assert [p.name for p in spool.tmp.iterdir()] == ["live.dcm"]


def test_unsafe_uids_never_escape_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.prepare()
    rel = spool.relative_path("../../etc", "1.2/3", "..")
    assert ".." not in rel.split("/") and rel.count("/") == 2
    assert spool.write_bytes(rel, b"x").resolve().is_relative_to(spool.root.resolve())




def test_a_failing_error_path_never_stops_the_recorder(store, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The lost response: an exception while the recorder handles a failed commit (here
    the database still locked when it checks for a duplicate) used to kill the writer
    thread, and every later instance then waited for an answer that never came."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    _engine, sessions, spool, recorder, _clock = store
    files = write_series(tmp_path / "ct", "CT", 2, 16, 16, generate_uid())
    real_write, failed = recorder._write, []

    def write_once_failing(records, before_commit):  # type: ignore[no-untyped-def]
        if not failed:
            failed.append(True)
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return real_write(records, before_commit)

    def locked(_uid: str) -> bool:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(recorder, "_write", write_once_failing)
    monkeypatch.setattr(recorder, "exists", locked)
    header = read_header(files[0])
    rec = InstanceRecord(
        header.sop_instance_uid, header.study_instance_uid, header.series_instance_uid,
        header.sop_class_uid, header.transfer_syntax_uid, None, None, None, "a/b/c.dcm", 1, "X",
    )
    try:
        first = recorder.record(rec, timeout=5)
    except Exception as exc:  # noqa: BLE001 - failing it is fine; hanging is not
        assert not isinstance(exc, TimeoutError), "the first instance got no answer"
    else:
        assert first is Outcome.STORED
    monkeypatch.setattr(recorder, "exists", Recorder.exists.__get__(recorder))
    assert put(spool, recorder, files[1], timeout=5) is Outcome.STORED



def test_concurrent_recorders_share_studies_exactly(tmp_path: Path, database_url: str | None) -> None:
    """Several receiving processes record into the same new study at once (two
    recorders with their own connections, as two processes have): every instance
    is stored once, the study is created once and counts every instance."""
    import threading

    url = database_url or f"sqlite:///{tmp_path / 'nadir.db'}"
    engine = make_engine(url)
    create_schema(engine)
    recorders = [Recorder(make_engine(url)) for _ in range(3)]
    for r in recorders:
        r.start()
    uid = generate_uid()
    records = [
        InstanceRecord(generate_uid(), uid, "1.2.3", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1",
                       "CT", None, None, f"s/{i}.dcm", 1, "X")
        for i in range(60)
    ]
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def send(chunk: list[InstanceRecord], recorder: Recorder) -> None:
        for rec in chunk:
            try:
                outcomes.append(recorder.record(rec, timeout=60))
                outcomes.append(recorder.record(rec, timeout=60))  # the same again: a duplicate
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(records[i::6], recorders[i % 3])) for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in recorders:
        r.stop()
    assert errors == []
    assert outcomes.count(Outcome.STORED) == 60 and outcomes.count(Outcome.DUPLICATE) == 60
    sessions = make_sessionmaker(engine)
    row = study_row(sessions, uid)
    assert (row.instance_count, row.revision) == (60, 1)
    with sessions() as s:
        assert len(list(s.scalars(select(Instance.id)))) == 60
    engine.dispose()


def test_a_file_that_cannot_be_placed_is_0xA700_and_never_recorded(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The file is made durable on another thread while the row's statements run: when
    it cannot be (here a plain file where the study's directory must go, a real
    file-system error), the row is rolled back and the instance answered 0xA700; when
    the database fails instead, 0xA701. Then a good instance is still stored."""
    from daemon.node.scp import OUT_OF_RESOURCES, OUT_OF_RESOURCES_DATABASE, SUCCESS, StoreHandler

    _engine, sessions, spool, recorder, _clock = store
    handler = StoreHandler(spool, recorder, 0, associations=2)
    try:
        blocked, good = generate_uid(), generate_uid()
        (spool.root / blocked).write_bytes(b"not a directory")

        def temp_copy(f: Path) -> Path:
            temp = spool.tmp / f"{f.name}.part"
            temp.write_bytes(f.read_bytes())
            return temp

        bad = write_series(tmp_path / "bad", "CT", 1, 16, 16, blocked)[0]
        assert handler.store(temp_copy(bad), read_header(bad).sop_instance_uid, "X") == OUT_OF_RESOURCES
        with sessions() as s:
            assert s.scalars(select(Instance)).all() == []
        ok = write_series(tmp_path / "ok", "CT", 2, 16, 16, good)
        assert handler.store(temp_copy(ok[0]), read_header(ok[0]).sop_instance_uid, "X") == SUCCESS
        assert study_row(sessions, good).instance_count == 1
        recorder.stop()  # the database side fails from here on
        assert handler.store(temp_copy(ok[1]), read_header(ok[1]).sop_instance_uid, "X") == OUT_OF_RESOURCES_DATABASE
    finally:
        handler.close()
