"""The settle decision is a pure function of the database timestamps and `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.store.assembly import ReceivingStudy, decide, settled

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def study(last: datetime, settle: float | None = None, uid: str = "1.2.3") -> ReceivingStudy:
    return ReceivingStudy(1, uid, 1, 10, last, settle)


def test_settles_exactly_at_settle_seconds() -> None:
    s = study(T0)
    assert not decide(s, T0 + timedelta(seconds=29.999), 30).settled
    assert decide(s, T0 + timedelta(seconds=30), 30).settled
    assert decide(s, T0, 30).due == T0 + timedelta(seconds=30)


def test_naive_database_timestamps_are_utc() -> None:
    naive = study(T0.replace(tzinfo=None))
    assert decide(naive, T0 + timedelta(seconds=31), 30).settled


def test_a_route_may_ask_for_longer_never_shorter() -> None:
    longer, shorter = study(T0, 120, "a"), study(T0, 5, "b")
    now = T0 + timedelta(seconds=60)
    assert [s.study_instance_uid for s in settled([longer, shorter], now, 30)] == ["b"]
    assert not decide(shorter, T0 + timedelta(seconds=10), 30).settled
