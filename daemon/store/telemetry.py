"""What the node records only to report on itself (`/metrics`, daemon.web.metrics).

The database, not a process's memory, holds it: several receiving processes and remote
workers each add to the same rows, and a restart loses nothing.

- `rejection_counts`: one counter row per (calling AE, DIMSE status) of the C-STOREs the
  node refused (daemon.node.scp), incremented atomically (an upsert: concurrent
  processes never lose a count). A row is only ever incremented, so its total is a
  Prometheus counter as it stands; a row unused for the retention time is pruned.
- `inference_runs`: one row per model run of a job that finished (the seconds
  `daemon.segment` measured), written with the job's DONE transaction; pruned with the
  retention time like the studies they came from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy import DateTime, Engine, Float, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from daemon.store.db import Base

log = logging.getLogger(__name__)


class RejectionCount(Base):
    __tablename__ = "rejection_counts"
    __table_args__ = (UniqueConstraint("calling_ae", "status", name="uq_rejection_ae_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calling_ae: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)  # the DIMSE status answered, e.g. 0xA700
    count: Mapped[int] = mapped_column(Integer)
    first: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class InferenceRun(Base):
    __tablename__ = "inference_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    route: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Inference(Protocol):
    """One model run (daemon.segment.timing.Inference)."""

    @property
    def model(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def seconds(self) -> float: ...


def status_label(status: int) -> str:
    return f"0x{status:04X}"


def count_rejection(engine: Engine, calling_ae: str, status: int, now: datetime) -> None:
    """One more C-STORE refused with `status` to `calling_ae`, committed at once (an
    atomic upsert); a failure is logged, never raised: a count never changes an answer."""
    values = {"calling_ae": calling_ae[:64], "status": status, "count": 1, "first": now, "last": now}
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(RejectionCount).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["calling_ae", "status"],
        set_={"count": RejectionCount.count + 1, "last": now},
    )
    try:
        with engine.begin() as conn:
            conn.execute(stmt)
    except Exception as exc:  # noqa: BLE001 - the database may be why the instance was refused
        log.warning("could not count the refusal (0x%04X) of an instance from AE %s: %s", status, calling_ae, exc)


def rejection_totals(session: Session) -> list[tuple[str, int, int]]:
    """(calling AE, status, count) of every counter row."""
    rows = session.execute(select(RejectionCount.calling_ae, RejectionCount.status, RejectionCount.count)).all()
    return [(str(ae), int(status), int(count)) for ae, status, count in rows]


def add_inferences(session: Session, job_id: int | None, route: str, runs: Iterable[Inference],
                   now: datetime) -> None:
    """Within the caller's transaction (the job's DONE one): its model runs."""
    session.add_all(InferenceRun(job_id=job_id, route=route[:128], model=r.model[:128], model_version=r.version[:64],
                                 seconds=float(r.seconds), at=now) for r in runs)


def prune(session: Session, cutoff: datetime) -> int:
    """Remove counter rows unused since `cutoff` and inference runs older; commits."""
    removed = session.execute(delete(RejectionCount).where(RejectionCount.last < cutoff)).rowcount  # type: ignore[attr-defined]
    removed += session.execute(delete(InferenceRun).where(InferenceRun.at < cutoff)).rowcount  # type: ignore[attr-defined]
    session.commit()
    return int(removed)
