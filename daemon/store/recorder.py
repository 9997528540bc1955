"""Recording received instances in the database, with group commit.

Every association thread hands its instance to `Recorder.record` and blocks until
the row is committed. One writer thread takes what is queued, commits it in one
transaction and then releases each waiting thread: concurrent associations share
a commit (one fsync of the database log for many instances), and an instance is
still acknowledged only after its own row is committed.

The writer also keeps the study rows current: a new study is RECEIVING at
revision 1; an instance arriving for a study that is no longer RECEIVING opens
the next revision.

Durability: the instance file is fsync'd into the spool before its row is
written, so the spool is the journal. On PostgreSQL every commit is durable.
On the embedded SQLite the writer's own connection commits with WAL
`synchronous=NORMAL`: a commit survives a crash of the process (kill -9), and
after a crash of the machine the rows of the last instants, if lost, are rebuilt
from the spool at the next start (`daemon.store.reconcile`: a run that did not
stop cleanly adopts every spool file without a row). Every other connection keeps
`synchronous=FULL`.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from daemon.store.models import Instance, Study, StudyState

log = logging.getLogger(__name__)

MAX_BATCH = 256


class Outcome(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class InstanceRecord:
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str | None
    patient_id: str | None
    accession_number: str | None
    path: str
    size: int
    calling_ae: str


def utcnow() -> datetime:
    return datetime.now(UTC)


_Item = tuple[InstanceRecord, "Future[Outcome]"]


class Recorder:
    """The single writer of instance rows; `record` is safe from any thread."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._writer = writer_engine(engine)
        self._clock = clock
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            thread, self._thread = self._thread, None
            self._queue.put(None)
            thread.join()
            if self._writer is not self._engine:
                self._writer.dispose()
        while True:  # whatever was queued after the stop gets a failure, not a hang
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(RuntimeError("the recorder is stopping"))

    # -- API -----------------------------------------------------------------------
    def record(self, rec: InstanceRecord, timeout: float = 120.0) -> Outcome:
        """Commit the row of `rec`; return once committed (raises if it could not be)."""
        if self._thread is None:
            raise RuntimeError("the recorder is not running")
        fut: Future[Outcome] = Future()
        self._queue.put((rec, fut))
        return fut.result(timeout=timeout)

    def exists(self, sop_instance_uid: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.scalar(
                select(Instance.id).where(Instance.sop_instance_uid == sop_instance_uid)
            )
            return found is not None

    # -- writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit_batch(batch)
            if stop:
                return

    def _commit_batch(self, batch: list[_Item]) -> None:
        try:
            outcomes = self._write([rec for rec, _ in batch])
        except Exception as exc:  # noqa: BLE001 - each instance then gets its own answer
            if len(batch) == 1:
                rec, fut = batch[0]
                if isinstance(exc, IntegrityError) and self.exists(rec.sop_instance_uid):
                    fut.set_result(Outcome.DUPLICATE)  # written meanwhile by another process
                else:
                    log.error("could not record instance %s: %s", rec.sop_instance_uid, exc)
                    fut.set_exception(exc)
                return
            for one in batch:
                self._commit_batch([one])
            return
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            fut.set_result(outcome)

    def _write(self, records: Sequence[InstanceRecord]) -> list[Outcome]:
        # SQLAlchemy Core, not the ORM: this runs once per commit on the receive path
        now = self._clock()
        with self._writer.begin() as conn:
            seen = set(
                conn.scalars(
                    select(Instance.sop_instance_uid).where(
                        Instance.sop_instance_uid.in_([r.sop_instance_uid for r in records])
                    )
                )
            )
            studies = {
                row.study_instance_uid: _StudyRow(row.id, row.state, row.revision, row.instance_count)
                for row in conn.execute(
                    select(Study.id, Study.study_instance_uid, Study.state, Study.revision, Study.instance_count)
                    .where(Study.study_instance_uid.in_({r.study_instance_uid for r in records}))
                )
            }
            outcomes, rows = [], []
            for rec in records:
                if rec.sop_instance_uid in seen:
                    outcomes.append(Outcome.DUPLICATE)
                    continue
                seen.add(rec.sop_instance_uid)
                study = studies.get(rec.study_instance_uid)
                if study is None:
                    study = _insert_study(conn, rec, now)
                    studies[rec.study_instance_uid] = study
                _open_revision_if_late(study, rec.study_instance_uid)
                study.added += 1
                rows.append(_instance_row(rec, study, now))
                outcomes.append(Outcome.STORED)
            for study in studies.values():
                if study.added:
                    conn.execute(
                        update(Study)
                        .where(Study.id == study.id)
                        .values(**study.changes(now))
                    )
            if rows:
                conn.execute(insert(Instance), rows)
        return outcomes


@dataclass
class _StudyRow:
    id: int
    state: str
    revision: int
    instance_count: int
    added: int = 0
    reopened: bool = False

    def changes(self, now: datetime) -> dict[str, object]:
        values: dict[str, object] = {
            "last_received": now,
            "instance_count": self.instance_count + self.added,
        }
        if self.reopened:
            values.update(
                state=StudyState.RECEIVING,
                revision=self.revision,
                revision_started=now,
                state_changed=now,
            )
        return values


def writer_engine(engine: Engine) -> Engine:
    """The engine the writer thread commits with (see the module's note on durability)."""
    if engine.dialect.name != "sqlite":
        return engine
    writer = create_engine(
        engine.url, poolclass=StaticPool, connect_args={"timeout": 30, "check_same_thread": False}
    )

    @event.listens_for(writer, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return writer


def _insert_study(conn: Connection, rec: InstanceRecord, now: datetime) -> _StudyRow:
    result = conn.execute(
        insert(Study).values(
            study_instance_uid=rec.study_instance_uid,
            state=StudyState.RECEIVING,
            revision=1,
            patient_id=rec.patient_id,
            accession_number=rec.accession_number,
            first_received=now,
            last_received=now,
            revision_started=now,
            state_changed=now,
            instance_count=0,
        )
    )
    study_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    assert study_id is not None
    return _StudyRow(int(study_id), StudyState.RECEIVING, 1, 0)


def _open_revision_if_late(study: _StudyRow, uid: str) -> None:
    if study.state != StudyState.RECEIVING:
        study.revision += 1
        study.state = StudyState.RECEIVING
        study.reopened = True
        log.info("late instance for study %s: revision %d opened", uid, study.revision)


def _instance_row(rec: InstanceRecord, study: _StudyRow, now: datetime) -> dict[str, object]:
    return {
        "sop_instance_uid": rec.sop_instance_uid,
        "study_id": study.id,
        "series_instance_uid": rec.series_instance_uid,
        "sop_class_uid": rec.sop_class_uid,
        "transfer_syntax_uid": rec.transfer_syntax_uid,
        "modality": rec.modality,
        "path": rec.path,
        "size": rec.size,
        "revision": study.revision,
        "calling_ae": rec.calling_ae,
        "received": now,
    }
