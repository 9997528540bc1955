"""Study assembly: when is a study complete enough to process? (pure)

A study is settled when no instance has arrived for its settle time: the node's
default (`assembly.settle_seconds`) or a longer one a route asked for. The
decision depends only on the database timestamps and `now`, both passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ReceivingStudy:
    """What the decision needs to know about one RECEIVING study."""

    study_id: int
    study_instance_uid: str
    revision: int
    instance_count: int
    last_received: datetime
    settle_seconds: float | None = None  # None: the node's default


@dataclass(frozen=True)
class SettleDecision:
    study: ReceivingStudy
    settled: bool
    due: datetime  # when the study settles if nothing else arrives


def as_utc(moment: datetime) -> datetime:
    """Timestamps from SQLite come back naive; they are stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def settle_time(study: ReceivingStudy, default_seconds: float) -> float:
    if study.settle_seconds is None:
        return default_seconds
    return max(study.settle_seconds, default_seconds)


def decide(study: ReceivingStudy, now: datetime, default_seconds: float) -> SettleDecision:
    due = as_utc(study.last_received) + timedelta(seconds=settle_time(study, default_seconds))
    return SettleDecision(study=study, settled=as_utc(now) >= due, due=due)


def settled(
    studies: Iterable[ReceivingStudy], now: datetime, default_seconds: float
) -> list[ReceivingStudy]:
    """The studies that are READY at `now`."""
    return [s for s in studies if decide(s, now, default_seconds).settled]
