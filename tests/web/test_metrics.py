"""/metrics read by Prometheus's own text parser, every value checked against what the
database was given: instances by calling AE (still counted after retention removes them),
studies by state, jobs by state and route, run times of jobs finished by other processes
(started/finished columns) in the histogram, outbox pending and dead letters by destination.
Also /health and /ready (503 naming the failing part)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from segment.tiny_models import conv_model, write_model
from sqlalchemy import Engine, delete, select, update

from daemon.runtime.execution import work_loop
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store import telemetry
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.models import Study
from daemon.store.telemetry import InferenceRun
from web.conftest import NOW, Console, store_study


def scrape(c: Console) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = c.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def _job(c: Console, uid: str, route: str, seconds: float, fail: bool = False) -> None:
    with c.sessions() as s:
        js.enqueue(s, js.NewJob(uid, 1, route, "qa_report", {}, ("pacs",), 1), NOW)
        s.commit()
        claimed = js.claim(s, f"worker-elsewhere-{route}", NOW, 600)
        assert claimed is not None
        end = NOW + timedelta(seconds=seconds)
        if fail:
            js.fail(s, claimed.id, claimed.owner, end, "boom", 1)
        else:
            js.mark_done(s, claimed.id, claimed.owner, end, 0)
            s.commit()


def test_metrics_count_what_was_stored(console: Console) -> None:
    spool = console.settings.store.spool_dir
    other = store_study(console.sessions, spool, calling_ae="MR_SCANNER", count=5)
    _job(console, console.study_uid, "qa", 3.0)
    _job(console, other, "qa", 40.0)
    _job(console, other, "brain", 0.2, fail=True)
    with console.sessions() as s:
        ob.add(s, [ob.Output(f"1.2.3.{i}", "1.2.840.10008.5.1.4.1.1.88.33", other, "a.dcm") for i in range(3)],
               ["pacs", "archive"], None, NOW)
        s.commit()
        s.execute(update(ob.OutboxRow).where(ob.OutboxRow.destination == "archive",
                                              ob.OutboxRow.sop_instance_uid != "1.2.3.0").values(state="DEAD"))
        s.commit()

    m = scrape(console)
    assert m[("nadir_instances_received_total", (("calling_ae", "CT_SCANNER"),))] == 3
    assert m[("nadir_instances_received_total", (("calling_ae", "MR_SCANNER"),))] == 5
    assert m[("nadir_studies", (("state", "DONE"),))] == 2
    assert m[("nadir_studies", (("state", "FAILED"),))] == 0
    assert m[("nadir_jobs", (("route", "qa"), ("state", "DONE")))] == 2
    assert m[("nadir_jobs", (("route", "brain"), ("state", "FAILED")))] == 1
    assert m[("nadir_outbox_pending", (("destination", "pacs"),))] == 3
    assert m[("nadir_outbox_pending", (("destination", "archive"),))] == 1
    assert m[("nadir_outbox_dead", (("destination", "archive"),))] == 2
    assert m[("nadir_outbox_dead", (("destination", "pacs"),))] == 0
    assert m[("nadir_job_seconds_count", (("route", "qa"),))] == 2
    assert m[("nadir_job_seconds_sum", (("route", "qa"),))] == 43.0
    assert m[("nadir_job_seconds_bucket", (("le", "5.0"), ("route", "qa")))] == 1
    assert m[("nadir_job_seconds_bucket", (("le", "60.0"), ("route", "qa")))] == 2
    assert m[("nadir_job_seconds_bucket", (("le", "0.5"), ("route", "brain")))] == 1

    # retention removes a study: the counter and the histogram do not go down; new ones add
    with console.sessions() as s:
        s.execute(delete(Study).where(Study.study_instance_uid == other))
        s.commit()
    store_study(console.sessions, spool, calling_ae="MR_SCANNER", count=2)
    m = scrape(console)
    assert m[("nadir_instances_received_total", (("calling_ae", "MR_SCANNER"),))] == 7
    assert m[("nadir_job_seconds_count", (("route", "qa"),))] == 2
    assert m[("nadir_studies", (("state", "DONE"),))] == 2


def test_health_and_ready_name_the_failing_part(console: Console) -> None:
    assert console.client.get("/health").json() == {"status": "ok"}
    assert console.client.get("/ready").status_code == 200
    console.deps.checks = {"database": lambda: None, "listener": lambda: "the DICOM listener is not listening",
                           "spool": lambda: 1 / 0}  # type: ignore[dict-item, return-value]
    r = console.client.get("/ready")
    assert r.status_code == 503
    assert r.json()["failing"] == {"listener": "the DICOM listener is not listening",
                                   "spool": "ZeroDivisionError: division by zero"}


def test_inference_seconds_by_model_come_from_the_jobs_done_transaction(console: Console, tmp_path: Path) -> None:
    """A job whose pipeline runs a (tiny, synthetic) ONNX model twice through segment(), run
    by the real worker loop: its two runs are rows written with the job's DONE, and the
    histogram by model counts them; a job that failed records none."""
    model = write_model(tmp_path / "tiny", conv_model(kernel=1, scale=1.0, bias=-5.0))
    with console.sessions() as s:
        js.enqueue(s, js.NewJob(console.study_uid, 1, "brain", "web.model_pipeline:segmenting",
                                {"model_dir": str(model), "runs": 2}, (), 1), NOW)
        js.enqueue(s, js.NewJob(console.study_uid, 1, "broken", "web.model_pipeline:segmenting",
                                {"model_dir": str(tmp_path / "missing"), "runs": 1}, (), 1), NOW)
        s.commit()
    engine = console.sessions.kw["bind"]
    assert work_loop(console.settings, "test-worker", lambda: False, burst=True, engine=engine) == 2
    with console.sessions() as s:
        runs = s.scalars(select(InferenceRun)).all()
        assert {j.route: j.state for j in s.scalars(select(js.Job))} == {"brain": "DONE", "broken": "FAILED"}
    assert [(r.route, r.model, r.model_version) for r in runs] == [("brain", "tiny", "1")] * 2
    assert all(0 < r.seconds < 60 for r in runs)

    m = scrape(console)
    assert m[("nadir_inference_seconds_count", (("model", "tiny"),))] == 2
    assert m[("nadir_inference_seconds_sum", (("model", "tiny"),))] == pytest.approx(sum(r.seconds for r in runs))
    assert m[("nadir_inference_seconds_bucket", (("le", "+Inf"), ("model", "tiny")))] == 2
    # retention prunes the rows: the histogram of this process keeps its counts
    with console.sessions() as s:
        assert telemetry.prune(s, NOW + timedelta(days=3650)) == 2
    assert scrape(console)[("nadir_inference_seconds_count", (("model", "tiny"),))] == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rejection_counters_add_up_across_writers(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two engines (as two receiving processes), four threads each, counting refusals at
    once into the same rows: the upsert loses none, on SQLite and on PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'nadir.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engines = [make_engine(url) for _ in range(2)]
    create_schema(engines[0])

    def count(engine: Engine, ae: str) -> None:
        for i in range(25):
            telemetry.count_rejection(engine, ae, 0xA700 if i % 5 else 0xC002, NOW + timedelta(seconds=i))

    threads = [threading.Thread(target=count, args=(engines[k % 2], f"AE{k % 2}")) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with make_sessionmaker(engines[0])() as s:
        assert sorted(telemetry.rejection_totals(s)) == [
            ("AE0", 0xA700, 80), ("AE0", 0xC002, 20), ("AE1", 0xA700, 80), ("AE1", 0xC002, 20)]
        assert telemetry.prune(s, NOW + timedelta(seconds=30)) == 4  # unused since: pruned
        assert telemetry.rejection_totals(s) == []
    for engine in engines:
        engine.dispose()
