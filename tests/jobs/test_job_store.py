"""Jobs and outbox rows in the database, on SQLite and PostgreSQL: claim, lease
expiry after a dead worker, retries, outputs recorded with the job, backoff and
dead letters. The clock is an argument, so nothing here sleeps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from daemon.config import OutboxSettings
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store.db import make_sessionmaker

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(route: str = "qa", revision: int = 1, max_attempts: int = 2) -> js.NewJob:
    return js.NewJob("1.2.3", revision, route, "qa_report", {"gap_factor": 2}, ("pacs", "viewer"), max_attempts)


def test_one_job_per_study_revision_and_route(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        assert js.enqueue(s, new_job(), T0)
        assert not js.enqueue(s, new_job(), T0)
        assert js.enqueue(s, new_job(revision=2), T0)
        assert js.enqueue(s, new_job(route="other"), T0)
        s.commit()
        assert s.scalar(select(func.count(js.Job.id))) == 3


def test_claim_once_then_lease_expiry_runs_it_again(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        js.enqueue(s, new_job(max_attempts=2), T0)
        s.commit()
    with sessions() as a, sessions() as b:
        first = js.claim(a, "worker-a", T0, lease_seconds=30)
        assert first is not None and first.attempt == 1 and first.parameters == {"gap_factor": 2}
        assert js.claim(b, "worker-b", T0 + timedelta(seconds=5), 30) is None  # leased
        assert js.heartbeat(a, first.id, "worker-a", T0 + timedelta(seconds=20), 30)
        assert js.claim(b, "worker-b", T0 + timedelta(seconds=45), 30) is None  # heartbeat extended it
        # worker-a dies (no more heartbeats): the lease expires, worker-b takes the job
        again = js.claim(b, "worker-b", T0 + timedelta(seconds=51), 30)
        assert again is not None and again.id == first.id and again.attempt == 2
        assert not js.heartbeat(a, first.id, "worker-a", T0 + timedelta(seconds=52), 30)
        assert not js.mark_done(a, first.id, "worker-a", T0 + timedelta(seconds=52), 1)  # a's result is refused
        a.rollback()
        # worker-b dies too: past max attempts the job fails instead of looping
        assert js.claim(a, "worker-c", T0 + timedelta(seconds=90), 30) is None
        job = a.get(js.Job, first.id, populate_existing=True)
        assert job is not None and job.state == js.JobState.FAILED and "lease expired" in (job.error or "")


def test_failures_retry_then_fail_and_admin_retry(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        js.enqueue(s, new_job(max_attempts=2), T0)
        s.commit()
        c = js.claim(s, "w", T0, 30)
        assert c is not None
        assert js.fail(s, c.id, "w", T0, "ValueError: boom", retry_delay_seconds=10) is js.JobState.RETRYING
        assert js.claim(s, "w", T0 + timedelta(seconds=5), 30) is None  # not due yet
        c2 = js.claim(s, "w", T0 + timedelta(seconds=11), 30)
        assert c2 is not None and c2.attempt == 2
        assert js.fail(s, c2.id, "w", T0, "ValueError: boom", 10) is js.JobState.FAILED
        assert js.claim(s, "w", T0 + timedelta(days=1), 30) is None
        assert js.retry(s, c.id, T0)
        c3 = js.claim(s, "w", T0 + timedelta(seconds=1), 30)
        assert c3 is not None and c3.attempt == 1


def test_outputs_are_recorded_with_the_job_keyed_by_uid_and_destination(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    out = ob.Output("1.2.3.4.5", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.3", "1.2.3/1.2.3.4.5.dcm")
    with sessions() as s:
        js.enqueue(s, new_job(), T0)
        js.enqueue(s, new_job(route="second"), T0)
        s.commit()
        c = js.claim(s, "w", T0, 30)
        assert c is not None
        assert js.mark_done(s, c.id, "w", T0, 1)
        assert ob.add(s, [out], c.destinations, c.id, T0) == 2
        s.commit()
        c2 = js.claim(s, "w", T0, 30)
        assert c2 is not None
        # a second job producing the same UID for the same destination shares the row
        assert js.mark_done(s, c2.id, "w", T0, 1)
        ob.add(s, [out], ("pacs",), c2.id, T0)
        s.commit()
        rows = s.scalars(select(ob.OutboxRow).order_by(ob.OutboxRow.destination)).all()
        assert [(r.destination, r.state) for r in rows] == [("pacs", "PENDING"), ("viewer", "PENDING")]


def test_backoff_dead_letter_and_resend(engine: Engine) -> None:
    cfg = OutboxSettings(first_retry_seconds=10, backoff_factor=2, max_delay_seconds=60, max_age_seconds=100, jitter=0.2)
    rnd = random.Random(1)
    delays = [ob.backoff_seconds(n, cfg, rnd) for n in range(1, 7)]
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24 and all(d <= 72 for d in delays)
    assert 48 <= delays[-1] <= 72  # capped
    sessions = make_sessionmaker(engine)
    out = ob.Output("1.2.3.9", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.3", "x.dcm")
    with sessions() as s:
        ob.add(s, [out], ["pacs"], None, T0)
        s.commit()
        row_id = s.scalars(select(ob.OutboxRow.id)).one()
        now = T0
        states = []
        for _ in range(10):
            due = ob.due(s, now, 10)
            if not due:
                break
            states.append(ob.record_failure(s, row_id, now, None, "association rejected", cfg))
            now = now + timedelta(seconds=61)
        assert states[-1] is ob.OutboxState.DEAD and states[0] is ob.OutboxState.PENDING
        row = s.get(ob.OutboxRow, row_id, populate_existing=True)
        assert row is not None and "dead letter after" in (row.last_error or "")
        attempts = s.scalars(select(ob.OutboxAttempt).where(ob.OutboxAttempt.outbox_id == row_id)).all()
        assert len(attempts) == row.attempts == len(states)
        assert ob.row_as_dict(row)["dead_letter"] is True
        assert ob.resend(s, now) == 1
        assert [r.id for r in ob.due(s, now, 10)] == [row_id]
        ob.record_success(s, row_id, now, 0x0000)
        row = s.get(ob.OutboxRow, row_id, populate_existing=True)
        assert row is not None and row.state == ob.OutboxState.SENT and row.times_sent == 1


def test_purge_sent_outputs(engine: Engine, tmp_path: Path) -> None:
    sessions = make_sessionmaker(engine)
    root = ob.outputs_root(tmp_path)
    (root / "s").mkdir(parents=True)
    for name in ("old.dcm", "new.dcm"):
        (root / "s" / name).write_bytes(b"x")
    with sessions() as s:
        ob.add(s, [ob.Output("1.9.1", "1.2", "1.9", "s/old.dcm")], ["pacs", "viewer"], None, T0)
        ob.add(s, [ob.Output("1.9.2", "1.2", "1.9", "s/new.dcm")], ["pacs"], None, T0)
        s.commit()
        ids = {(r.sop_instance_uid, r.destination): r.id for r in s.scalars(select(ob.OutboxRow))}
        ob.record_success(s, ids[("1.9.1", "pacs")], T0, 0)
        ob.record_success(s, ids[("1.9.2", "pacs")], T0 + timedelta(days=40), 0)
        assert ob.purge_sent(s, tmp_path, T0 + timedelta(days=30)) == 1
        assert (root / "s" / "old.dcm").exists()  # still to be sent to the viewer
        ob.record_success(s, ids[("1.9.1", "viewer")], T0, 0)
        assert ob.purge_sent(s, tmp_path, T0 + timedelta(days=30)) == 1
        assert not (root / "s" / "old.dcm").exists() and (root / "s" / "new.dcm").exists()


def test_dispatch_sends_each_due_job_once_until_it_is_due_again(engine: Engine) -> None:
    """Celery executor: a job's message is sent when it becomes due, again only when it is
    due again (a failed attempt's retry, an expired lease) or after `redispatch_seconds`."""
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        js.enqueue(s, new_job(max_attempts=3), T0)
        js.enqueue(s, js.NewJob("1.2.4", 1, "gpu-route", "qa_report", {}, ("pacs",), 3, queue="gpu"), T0)
        s.commit()
        due = js.dispatchable(s, T0, redispatch_seconds=600)
        assert [q for _, q in due] == ["default", "gpu"]
        first = due[0][0]
        for job_id, _ in due:
            js.mark_dispatched(s, job_id, T0)
        assert js.dispatchable(s, T0 + timedelta(seconds=1), 600) == []
        # a worker takes the job named by the message, and only that one
        claimed = js.claim(s, "w1", T0 + timedelta(seconds=2), lease_seconds=60, job_id=first)
        assert claimed is not None and claimed.id == first
        assert js.claim(s, "w2", T0 + timedelta(seconds=2), 60, job_id=first) is None  # held
        assert js.fail(s, first, "w1", T0 + timedelta(seconds=3), "boom", retry_delay_seconds=10) is js.JobState.RETRYING
        assert js.dispatchable(s, T0 + timedelta(seconds=5), 600) == []  # not due yet
        assert [i for i, _ in js.dispatchable(s, T0 + timedelta(seconds=14), 600)] == [first]
        js.mark_dispatched(s, first, T0 + timedelta(seconds=14))
        assert js.claim(s, "w1", T0 + timedelta(seconds=15), 60, job_id=first) is not None
        # its worker dies: due again when the lease expires, not before
        assert js.dispatchable(s, T0 + timedelta(seconds=60), 600) == []
        assert [i for i, _ in js.dispatchable(s, T0 + timedelta(seconds=76), 600)] == [first]
        # a message lost by the broker: sent again after redispatch_seconds
        assert sorted(i for i, _ in js.dispatchable(s, T0 + timedelta(seconds=700), 600)) == [first, due[1][0]]


def test_a_column_added_by_a_later_version_is_added_to_an_existing_table(tmp_path: Path) -> None:
    from sqlalchemy import inspect, text

    from daemon.store.db import create_schema, make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_schema(eng)
    with eng.begin() as conn:  # as a database of the previous version: no queue, no dispatched
        conn.execute(text("ALTER TABLE jobs DROP COLUMN queue"))
        conn.execute(text("ALTER TABLE jobs DROP COLUMN dispatched"))
        conn.execute(text("INSERT INTO jobs (study_instance_uid, revision, route, pipeline, parameters, destinations,"
                          " state, attempts, max_attempts, created, updated, not_before, outputs)"
                          " VALUES ('1.2', 1, 'r', 'qa_report', '{}', '[]', 'QUEUED', 0, 3,"
                          " '2026-01-01', '2026-01-01', '2026-01-01', 0)"))
    create_schema(eng)
    assert {"queue", "dispatched"} <= {c["name"] for c in inspect(eng).get_columns("jobs")}
    with make_sessionmaker(eng)() as s:
        assert s.scalar(select(js.Job.queue)) == "default"
    eng.dispose()
