"""Recording received instances in the database, with group commit.

Every association thread hands its instance to `Recorder.record` and blocks until
the row is committed. Group commit without a thread hop (leader/follower): a
caller that finds no commit in progress becomes the leader, takes everything
queued (its own instance and those of concurrent associations), commits it in one
transaction and wakes the others; a caller that finds a commit in progress waits,
and the first whose instance is still queued when it ends leads the next one. An
association alone thus commits its own row directly, concurrent associations
share a commit (one fsync of the database log for many instances), and an
instance is still acknowledged only after its own row is committed. Whatever a
commit raises is answered to the instances of that commit; it never stops the
recorder (before, an exception on the error path killed the writer thread and
every later instance waited for an answer that never came).

The study rows are kept current with atomic increments (several receiving
processes may record into the same study): a new study is RECEIVING at revision
1; an instance arriving for a study that is no longer RECEIVING opens the next
revision. On SQLite each commit takes the write lock at its start (BEGIN
IMMEDIATE, waiting up to the busy timeout), so the duplicate check and the
inserts are one atomic step even with several writer processes; on PostgreSQL a
commit that loses a race (the same new study or instance inserted meanwhile by
another process) is retried once.

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
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from daemon.store.header import Header
from daemon.store.models import Instance, Study, StudyState
from daemon.store.telemetry import count_rejection

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

    @classmethod
    def from_header(cls, header: Header, path: str, size: int, calling_ae: str) -> InstanceRecord:
        """The row of a spool file whose header was read (on receive, or adopted at start)."""
        return cls(
            sop_instance_uid=header.sop_instance_uid,
            study_instance_uid=header.study_instance_uid,
            series_instance_uid=header.series_instance_uid,
            sop_class_uid=header.sop_class_uid,
            transfer_syntax_uid=header.transfer_syntax_uid,
            modality=header.modality,
            patient_id=header.patient_id,
            accession_number=header.accession_number,
            path=path,
            size=size,
            calling_ae=calling_ae,
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


class NotRecorded(Exception):
    """The instance was not recorded, and this call will not record it."""


class NotDurable(Exception):
    """The instance's file could not be made durable: its row was not committed."""


class _Pending:
    __slots__ = ("durable", "error", "outcome", "rec")

    def __init__(self, rec: InstanceRecord, durable: Callable[[], None] | None) -> None:
        self.rec = rec
        self.durable = durable
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.error is not None

    def result(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


class Recorder:
    """The writer of instance rows; `record` is safe from any thread."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._writer = writer_engine(engine)
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._committing = False
        self._running = False

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            self._running = True

    def stop(self) -> None:
        with self._cond:
            if not self._running:
                return
            self._running = False
            while self._committing:
                self._cond.wait()
            for item in self._pending:  # queued after the last commit: a failure, not a hang
                item.error = RuntimeError("the recorder is stopping")
            self._pending.clear()
            self._cond.notify_all()
        if self._writer is not self._engine:
            self._writer.dispose()

    # -- API -----------------------------------------------------------------------
    def record(
        self, rec: InstanceRecord, timeout: float = 120.0, durable: Callable[[], None] | None = None
    ) -> Outcome:
        """Commit the row of `rec`; return once committed (raises if it could not be;
        `NotRecorded` when no commit took it up within `timeout` seconds).

        `durable`, when given, blocks until the instance's file is durable in the spool
        (raising `NotDurable` if it cannot be): the commit's statements run meanwhile,
        and the commit itself only after it returned."""
        item = _Pending(rec, durable)
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._running:
                raise RuntimeError("the recorder is not running")
            self._pending.append(item)
        while True:
            with self._cond:
                batch = self._await_turn(item, deadline)
            if batch is None:
                return item.result()
            self._lead(batch)

    def exists(self, sop_instance_uid: str) -> bool:
        return self.recorded_path(sop_instance_uid) is not None

    def recorded_path(self, sop_instance_uid: str) -> str | None:
        """The spool path recorded for `sop_instance_uid`, if any."""
        with self._engine.connect() as conn:
            found = conn.scalar(
                select(Instance.path).where(Instance.sop_instance_uid == sop_instance_uid)
            )
            return None if found is None else str(found)

    def count_conflicting_duplicate(self, sop_instance_uid: str) -> None:
        """One more copy refused of `sop_instance_uid` with other content than the stored
        one, counted on the stored one's study (`nadir study ls`); a failure is logged."""
        owner = select(Instance.study_id).where(Instance.sop_instance_uid == sop_instance_uid).scalar_subquery()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(Study).where(Study.id == owner)
                    .values(conflicting_duplicates=Study.conflicting_duplicates + 1)
                )
        except Exception as exc:  # noqa: BLE001 - a count, never a reason to fail the answer
            log.warning("could not count the refused copy of instance %s: %s", sop_instance_uid, exc)

    def count_rejection(self, calling_ae: str, status: int) -> None:
        """One more instance refused with `status` to `calling_ae` (daemon.store.telemetry);
        a failure is logged."""
        count_rejection(self._engine, calling_ae, status, self._clock())

    # -- group commit -------------------------------------------------------------------
    def _await_turn(self, item: _Pending, deadline: float) -> list[_Pending] | None:
        """With the lock held: wait until `item` is answered (None) or this caller is
        to lead the next commit (the batch to commit)."""
        while not item.done:
            if not self._committing:
                self._committing = True
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0 and item in self._pending:
                self._pending.remove(item)
                raise NotRecorded("the database did not take the instance up in time")
            # once in a commit, its end is bounded by the database's own timeouts
            self._cond.wait(remaining if remaining > 0 else 1.0)
        return None

    def _lead(self, batch: list[_Pending]) -> None:
        try:
            self._commit_batch(batch)
        finally:
            for one in batch:
                if not one.done:  # only after a BaseException (e.g. interpreter exit)
                    one.error = RuntimeError("the recorder was interrupted")
            with self._cond:
                self._committing = False
                self._cond.notify_all()

    def _commit_batch(self, batch: list[_Pending]) -> None:
        def all_durable() -> None:
            for one in batch:
                if one.durable is not None:
                    one.durable()

        try:
            outcomes = self._write_retrying([one.rec for one in batch], all_durable)
        except Exception as exc:  # noqa: BLE001 - each instance then gets its own answer
            if len(batch) == 1:
                self._answer_failure(batch[0], exc)
                return
            for one in batch:
                self._commit_batch([one])
            return
        for one, outcome in zip(batch, outcomes, strict=True):
            one.outcome = outcome

    def _answer_failure(self, item: _Pending, exc: Exception) -> None:
        if isinstance(exc, NotDurable):  # the file, not the database: the caller reports it
            item.error = exc
            return
        duplicate = False
        if isinstance(exc, IntegrityError):
            try:
                duplicate = self.exists(item.rec.sop_instance_uid)  # written by another process
            except Exception as again:  # noqa: BLE001 - the database is away: a failure
                log.warning("could not check instance %s: %s", item.rec.sop_instance_uid, again)
        if duplicate:
            item.outcome = Outcome.DUPLICATE
        else:
            log.error("could not record instance %s: %s", item.rec.sop_instance_uid, exc)
            item.error = exc

    def _write_retrying(
        self, records: Sequence[InstanceRecord], before_commit: Callable[[], None]
    ) -> list[Outcome]:
        try:
            return self._write(records, before_commit)
        except IntegrityError:  # a race lost to another process (PostgreSQL): once more
            return self._write(records, before_commit)

    def _write(self, records: Sequence[InstanceRecord], before_commit: Callable[[], None]) -> list[Outcome]:
        # SQLAlchemy Core, not the ORM: this runs once per commit on the receive path
        now = self._clock()
        with self._writer.begin() as conn:
            seen = set(conn.scalars(_SEEN, {"p_uids": [r.sop_instance_uid for r in records]}))
            outcomes, fresh = [], []
            for rec in records:
                if rec.sop_instance_uid in seen:
                    outcomes.append(Outcome.DUPLICATE)
                    continue
                seen.add(rec.sop_instance_uid)
                fresh.append(rec)
                outcomes.append(Outcome.STORED)
            counts = Counter(rec.study_instance_uid for rec in fresh)
            firsts = {rec.study_instance_uid: rec for rec in reversed(fresh)}
            studies = {
                uid: _touch_study(conn, firsts[uid], added, now) for uid, added in counts.items()
            }
            if fresh:
                conn.execute(
                    _INSERT_INSTANCES,
                    [_instance_row(rec, studies[rec.study_instance_uid], now) for rec in fresh],
                )
            before_commit()  # raising here rolls the transaction back
        return outcomes


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
        dbapi_conn.isolation_level = None  # pysqlite's own BEGIN off: see _begin

    @event.listens_for(writer, "begin")
    def _begin(conn: Connection) -> None:
        # the write lock from the start: the duplicate check and the inserts are atomic
        # across processes, and a busy database is waited for (busy timeout), never a
        # "database is locked" failure on upgrading a read to a write
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return writer


# built once: statements are the costly part of a commit on this path
_SEEN = select(Instance.sop_instance_uid).where(
    Instance.sop_instance_uid.in_(bindparam("p_uids", expanding=True))
)
_COUNT_IN = (
    update(Study)
    .where(Study.study_instance_uid == bindparam("p_uid"), Study.state == StudyState.RECEIVING)
    .values(last_received=bindparam("p_now"), instance_count=Study.instance_count + bindparam("p_added"))
    .returning(Study.id, Study.revision)
)
_REOPEN = (
    update(Study)
    .where(Study.study_instance_uid == bindparam("p_uid"), Study.state != StudyState.RECEIVING)
    .values(
        state=StudyState.RECEIVING,
        revision=Study.revision + 1,
        revision_started=bindparam("p_now"),
        state_changed=bindparam("p_now"),
        last_received=bindparam("p_now"),
        instance_count=Study.instance_count + bindparam("p_added"),
    )
    .returning(Study.id, Study.revision)
)
_INSERT_INSTANCES = insert(Instance)


def _touch_study(conn: Connection, rec: InstanceRecord, added: int, now: datetime) -> tuple[int, int]:
    """Count `added` new instances into the study of `rec` (opening its next revision
    if it is no longer RECEIVING, or creating it); return its (id, revision)."""
    uid = rec.study_instance_uid
    params = {"p_uid": uid, "p_now": now, "p_added": added}
    row = conn.execute(_COUNT_IN, params).first()
    if row is None:
        row = conn.execute(_REOPEN, params).first()
        if row is not None:
            log.info("late instance for study %s: revision %d opened", uid, row[1])
    if row is not None:
        return int(row[0]), int(row[1])
    result = conn.execute(
        insert(Study).values(
            study_instance_uid=uid,
            state=StudyState.RECEIVING,
            revision=1,
            patient_id=rec.patient_id,
            accession_number=rec.accession_number,
            first_received=now,
            last_received=now,
            revision_started=now,
            state_changed=now,
            instance_count=added,
        )
    )
    study_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    assert study_id is not None
    return int(study_id), 1


def _instance_row(rec: InstanceRecord, study: tuple[int, int], now: datetime) -> dict[str, object]:
    return {
        "sop_instance_uid": rec.sop_instance_uid,
        "study_id": study[0],
        "series_instance_uid": rec.series_instance_uid,
        "sop_class_uid": rec.sop_class_uid,
        "transfer_syntax_uid": rec.transfer_syntax_uid,
        "modality": rec.modality,
        "path": rec.path,
        "size": rec.size,
        "revision": study[1],
        "calling_ae": rec.calling_ae,
        "received": now,
    }
