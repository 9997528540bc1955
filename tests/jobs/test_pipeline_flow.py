"""From a READY study to outbox rows, in process, on SQLite and PostgreSQL: the
router creates one job per matching route, a burst worker runs the QA report
pipeline, the job is DONE with its outputs in the outbox, and the study becomes
DONE once they are sent. The SR is written, read back and checked."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select

from daemon.config import Settings
from daemon.routing_rules import RulesHolder
from daemon.runtime.context import build_context
from daemon.runtime.execution import work_loop
from daemon.runtime.router import finish_studies, route_study
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store.models import Instance, Study, StudyState
from jobs.studies import make_series, write_study

RULES = """\
version: 1
routes:
  - name: qa
    pipeline: qa_report
    destinations: [pacs]
  - name: mr-only
    pipeline: qa_report
    destinations: [pacs]
    match: {attribute: Modality, equals: MR}
"""


def store_ready_study(ctx: object, spool_root: Path, files: list[Path], now: datetime) -> int:
    sessions = ctx.sessions  # type: ignore[attr-defined]
    with sessions() as s:
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        study = Study(
            study_instance_uid=str(first.StudyInstanceUID), state=StudyState.READY, revision=1,
            first_received=now, last_received=now, revision_started=now, state_changed=now,
            instance_count=len(files),
        )
        s.add(study)
        s.flush()
        for f in files:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            rel = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
            (spool_root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, spool_root / rel)
            s.add(Instance(
                sop_instance_uid=str(ds.SOPInstanceUID), study_id=study.id,
                series_instance_uid=str(ds.SeriesInstanceUID), sop_class_uid=str(ds.SOPClassUID),
                transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID), modality=str(ds.Modality),
                path=rel, size=f.stat().st_size, revision=1, calling_ae="STORESCU", received=now,
            ))
        s.commit()
        return int(study.id)


@pytest.mark.timeout(120)
def test_ready_study_to_outbox(tmp_path: Path, database_url: str) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    settings = Settings(
        store={"data_dir": tmp_path / "data", "database_url": database_url},
        routing={"rules_file": rules},
        destinations={"pacs": {"ae_title": "PACS", "host": "127.0.0.1", "port": 4242}},
    )
    ctx = build_context(settings)
    now = datetime.now(UTC)
    study_uid = "1.2.826.0.1.3680043.10.1442.99.1"
    files = write_study(tmp_path / "in", [make_series(study_uid, positions=[0, 1, 2, 4, 5])])
    study_id = store_ready_study(ctx, settings.store.spool_dir, files, now)
    holder = RulesHolder(rules, settings.destinations.keys())

    decision = route_study(ctx, holder, study_id, now)
    assert decision is not None and [r.route.name for r in decision.matching] == ["qa"]
    assert route_study(ctx, holder, study_id, now) is None  # routed once

    assert work_loop(settings, "test-worker", lambda: False, burst=True, engine=ctx.engine) == 1
    with ctx.sessions() as s:
        job = s.scalars(select(js.Job)).one()
        assert (job.state, job.attempts, job.outputs) == (js.JobState.DONE, 1, 1)
        row = s.scalars(select(ob.OutboxRow)).one()
        assert (row.destination, row.state, row.job_id) == ("pacs", ob.OutboxState.PENDING, job.id)
        assert s.get(Study, study_id).state == StudyState.PROCESSING  # type: ignore[union-attr]
    sr = pydicom.dcmread(ob.outputs_root(settings.store.data_dir) / row.path)
    assert sr.SOPInstanceUID == row.sop_instance_uid and sr.StudyInstanceUID == study_uid
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    texts = [c.TextValue for item in sr.ContentSequence for c in item.get("ContentSequence", [])]
    assert any("slice-spacing gaps: 1 gap(s)" in t for t in texts), texts

    # a re-run derives the same UIDs: the outbox keeps one row for the output
    with ctx.sessions() as s:
        assert js.retry(s, job.id, now)
    work_loop(settings, "test-worker", lambda: False, burst=True, engine=ctx.engine)
    with ctx.sessions() as s:
        assert s.scalars(select(ob.OutboxRow)).one().sop_instance_uid == sr.SOPInstanceUID
        ob.record_success(s, row.id, now, 0)
    finish_studies(ctx, now)
    with ctx.sessions() as s:
        assert s.get(Study, study_id).state == StudyState.DONE  # type: ignore[union-attr]
    ctx.engine.dispose()
