"""In process, on SQLite and PostgreSQL: a job that fails for good puts the failure SR in
the outbox for its destinations (attached to the job, so the study stays PROCESSING
until the PACS has it, then is FAILED); also when its last worker died (the lease
expired past the maximum attempts); never for a route with `report_failure: false`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import delete, select, update

from daemon.config import Settings
from daemon.routing_rules import RulesHolder
from daemon.runtime.context import build_context
from daemon.runtime.execution import FAILURE_SWEEP_GRACE, claim_one, report_lost_failures, work_loop
from daemon.runtime.router import finish_studies, route_study
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store.models import Study, StudyState
from jobs.studies import make_series, write_study
from jobs.test_pipeline_flow import store_ready_study

RULES = """\
version: 1
routes:
  - name: liver-failing
    pipeline: 'jobs.extra_pipelines:failing'
    destinations: [pacs]
    max_attempts: 2
  - name: silent
    pipeline: 'jobs.extra_pipelines:failing'
    destinations: [pacs]
    max_attempts: 1
    report_failure: false
"""


@pytest.mark.timeout(120)
def test_failed_job_puts_the_failure_sr_in_the_outbox(tmp_path: Path, database_url: str) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    settings = Settings(
        store={"data_dir": tmp_path / "data", "database_url": database_url},
        routing={"rules_file": rules},
        destinations={"pacs": {"ae_title": "PACS", "host": "127.0.0.1", "port": 4242}},
        jobs={"retry_delay_seconds": 0},
    )
    ctx = build_context(settings)
    now = datetime.now(UTC)
    study_uid = "1.2.826.0.1.3680043.10.1442.99.7"
    files = write_study(tmp_path / "in", [make_series(study_uid, positions=[0, 1, 2])])
    study_id = store_ready_study(ctx, settings.store.spool_dir, files, now)
    route_study(ctx, RulesHolder(rules, settings.destinations.keys()), study_id, now)

    assert work_loop(settings, "test-worker", lambda: False, burst=True, engine=ctx.engine) == 3
    with ctx.sessions() as s:
        jobs = {j.route: j for j in s.scalars(select(js.Job))}
        assert {r: (j.state, j.attempts, j.report_failure) for r, j in jobs.items()} == {
            "liver-failing": (js.JobState.FAILED, 2, True), "silent": (js.JobState.FAILED, 1, False)}
        row = s.scalars(select(ob.OutboxRow)).one()  # none for the silent route
        assert (row.destination, row.state, row.job_id) == ("pacs", ob.OutboxState.PENDING, jobs["liver-failing"].id)
    sr = pydicom.dcmread(ob.outputs_root(settings.store.data_dir) / row.path)
    assert (sr.SOPInstanceUID, sr.StudyInstanceUID) == (row.sop_instance_uid, study_uid)
    finish_studies(ctx, now)
    with ctx.sessions() as s:
        assert s.get(Study, study_id).state == StudyState.PROCESSING  # type: ignore[union-attr]
        ob.record_success(s, row.id, now, 0)
    finish_studies(ctx, now)
    with ctx.sessions() as s:
        assert s.get(Study, study_id).state == StudyState.FAILED  # type: ignore[union-attr]

    # the last worker died: its lease expires past the maximum attempts, and the next claim
    # fails the job for good and reports it (the same SR: the same study, route and revision)
    with ctx.sessions() as s:
        liver = jobs["liver-failing"].id
        s.execute(update(js.Job).where(js.Job.id == liver).values(
            state=js.JobState.RUNNING, lease_owner="gone:1:w0", lease_expires=now - timedelta(seconds=1)))
        s.execute(update(ob.OutboxRow).values(state=ob.OutboxState.SENT))
        s.commit()
    assert claim_one(settings, ctx.sessions, "test-worker") is None
    with ctx.sessions() as s:
        assert s.get(js.Job, liver).state == js.JobState.FAILED  # type: ignore[union-attr]
        again = s.scalars(select(ob.OutboxRow)).one()
        assert (again.sop_instance_uid, again.state) == (row.sop_instance_uid, ob.OutboxState.PENDING)
    ctx.engine.dispose()


@pytest.mark.timeout(120)
def test_a_failure_sr_lost_with_a_crash_is_queued_by_the_sweep(tmp_path: Path, database_url: str) -> None:
    """The process died between the FAILED commit and the SR (kill -9 there): the node's
    periodic sweep finds the failed job with no outbox row and queues its SR, once."""
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    settings = Settings(
        store={"data_dir": tmp_path / "data", "database_url": database_url},
        routing={"rules_file": rules},
        destinations={"pacs": {"ae_title": "PACS", "host": "127.0.0.1", "port": 4242}},
    )
    ctx = build_context(settings)
    now = datetime.now(UTC)
    study_uid = "1.2.826.0.1.3680043.10.1442.99.8"
    files = write_study(tmp_path / "in", [make_series(study_uid, positions=[0, 1, 2])])
    study_id = store_ready_study(ctx, settings.store.spool_dir, files, now)
    route_study(ctx, RulesHolder(rules, settings.destinations.keys()), study_id, now)
    with ctx.sessions() as s:  # what a crash leaves: both jobs FAILED, no outbox row
        s.execute(update(js.Job).values(state=js.JobState.FAILED, attempts=2, finished=now, error="killed"))
        s.commit()

    assert report_lost_failures(settings, ctx.sessions, now) == 0  # within the grace: execute() may still report
    later = now + FAILURE_SWEEP_GRACE + timedelta(seconds=1)
    assert report_lost_failures(settings, ctx.sessions, later) == 1  # the silent route: none
    assert report_lost_failures(settings, ctx.sessions, later) == 0  # queued once
    with ctx.sessions() as s:
        row = s.scalars(select(ob.OutboxRow)).one()
        liver = s.scalars(select(js.Job).where(js.Job.route == "liver-failing")).one()
        assert (row.job_id, row.state, row.study_instance_uid) == (liver.id, ob.OutboxState.PENDING, study_uid)
    with ctx.sessions() as s:
        s.execute(delete(ob.OutboxRow))
        s.commit()
    assert report_lost_failures(settings, ctx.sessions, now + timedelta(days=2)) == 0  # too old: left to the admin
    ctx.engine.dispose()
