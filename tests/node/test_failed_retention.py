"""Retention of FAILED studies: kept for `store.failed_retention_days` after they failed
(time for an admin to look), then removed with their jobs, outbox rows and output files,
by the node's retention service. Rows and files are synthetic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from daemon.config import Settings
from daemon.runtime.context import Context, build_context
from daemon.runtime.retention import RetentionService
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store.models import Instance, Study, StudyState

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def add_study(ctx: Context, uid: str, state: StudyState, output: bool = False,
              outbox_state: ob.OutboxState = ob.OutboxState.DEAD) -> None:
    """A study received and changed state at T0, one instance in the spool, one job, and
    (`output`) one outbox row with its file."""
    relative = ctx.spool.relative_path(uid, uid + ".1", uid + ".1.1")
    ctx.spool.write_bytes(relative, b"synthetic")
    with ctx.sessions() as s:
        study = Study(study_instance_uid=uid, state=state, revision=1, first_received=T0, last_received=T0,
                      revision_started=T0, state_changed=T0, instance_count=1)
        s.add(study)
        s.flush()
        s.add(Instance(sop_instance_uid=uid + ".1.1", study_id=study.id, series_instance_uid=uid + ".1",
                       sop_class_uid="1.2.840.10008.5.1.4.1.1.2", transfer_syntax_uid="1.2.840.10008.1.2.1",
                       modality="CT", path=relative, size=9, revision=1, calling_ae="TESTSCU", received=T0))
        js.enqueue(s, js.NewJob(uid, 1, "qa", "qa_report", {}, ("pacs",), 1, study.id), T0)
        if output:
            job_id = s.scalar(select(js.Job.id).where(js.Job.study_instance_uid == uid))
            path = f"{uid}/{uid}.9.dcm"
            (ob.outputs_root(ctx.settings.store.data_dir) / path).parent.mkdir(parents=True, exist_ok=True)
            (ob.outputs_root(ctx.settings.store.data_dir) / path).write_bytes(b"sr")
            ob.add(s, [ob.Output(uid + ".9", "1.2.840.10008.5.1.4.1.1.88.33", uid, path)], ["pacs"], job_id, T0)
            s.flush()
            s.execute(update(ob.OutboxRow).where(ob.OutboxRow.study_instance_uid == uid).values(state=outbox_state))
        s.commit()


def studies(ctx: Context) -> set[str]:
    with ctx.sessions() as s:
        return set(s.scalars(select(Study.study_instance_uid)))


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = Settings(store={"data_dir": tmp_path / "data", "retention_days": 7, "failed_retention_days": 30})
    context = build_context(settings)
    yield context
    context.engine.dispose()


def test_default_gives_admins_a_month() -> None:
    assert Settings().store.failed_retention_days == 30


def test_failed_studies_are_purged_after_their_own_retention(ctx: Context) -> None:
    add_study(ctx, "1.2.3.1", StudyState.DONE)
    add_study(ctx, "1.2.3.2", StudyState.FAILED, output=True)  # a dead letter and its file
    add_study(ctx, "1.2.3.3", StudyState.PROCESSING)
    add_study(ctx, "1.2.3.4", StudyState.FAILED, output=True, outbox_state=ob.OutboxState.PENDING)  # resent
    clock = [T0 + timedelta(days=8)]
    service = RetentionService(ctx, lambda: clock[0])

    service.tick()  # past retention_days: the DONE study only; FAILED ones are kept for an admin
    assert studies(ctx) == {"1.2.3.2", "1.2.3.3", "1.2.3.4"}
    clock[0] = T0 + timedelta(days=29, hours=23)
    service.tick()
    assert studies(ctx) == {"1.2.3.2", "1.2.3.3", "1.2.3.4"}

    clock[0] = T0 + timedelta(days=30, hours=1)
    service.tick()  # the FAILED study goes with its job, outbox row and output file
    assert studies(ctx) == {"1.2.3.3", "1.2.3.4"}  # a row still to send keeps its study
    with ctx.sessions() as s:
        assert set(s.scalars(select(js.Job.study_instance_uid))) == {"1.2.3.3", "1.2.3.4"}
        assert set(s.scalars(select(ob.OutboxRow.study_instance_uid))) == {"1.2.3.4"}
        kept = set(s.scalars(select(Instance.path)))
    assert set(ctx.spool.iter_files()) == kept and len(kept) == 2
    outputs = ob.outputs_root(ctx.settings.store.data_dir)
    assert not (outputs / "1.2.3.2").exists() or not any((outputs / "1.2.3.2").iterdir())
    assert (outputs / "1.2.3.4" / "1.2.3.4.9.dcm").exists()


def test_a_failed_study_retried_recently_is_kept(ctx: Context) -> None:
    add_study(ctx, "1.2.3.5", StudyState.FAILED)
    with ctx.sessions() as s:  # it failed again after a retry on day 20
        s.execute(update(Study).values(state_changed=T0 + timedelta(days=20)))
        s.commit()
    RetentionService(ctx, lambda: T0 + timedelta(days=31)).tick()
    assert studies(ctx) == {"1.2.3.5"}
    RetentionService(ctx, lambda: T0 + timedelta(days=51)).tick()
    assert studies(ctx) == set()
