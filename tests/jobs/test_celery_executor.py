"""The Celery executor end to end: `nadir serve` + two `nadir worker` processes on a private
RabbitMQ and PostgreSQL; dcmtk storescu sends 20 synthetic studies, one worker is killed
with -9 while it runs a job, and every study's SR reaches Orthanc exactly once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from daemon.store.jobs import Job
from jobs.harness import NadirNode, Orthanc, Worker, storescu, wait_until
from jobs.studies import make_series, write_study

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

STUDIES = 20


@pytest.fixture
def pacs(tmp_path: Path) -> Orthanc:
    orthanc = Orthanc(tmp_path / "orthanc").start()
    yield orthanc
    orthanc.stop()


def celery_node(tmp_path: Path, pacs: Orthanc, database_url: str, broker_url: str, sleep_s: float) -> NadirNode:
    rules = tmp_path / "routing.yaml"
    rules.write_text(
        "version: 1\nroutes:\n"
        "  - {name: slow, pipeline: 'jobs.extra_pipelines:slow', destinations: [pacs], "
        f"parameters: {{sleep_seconds: {sleep_s}}}}}\n"
    )
    return NadirNode(
        tmp_path / "nadir", pacs.dicom_port, database_url=database_url, rules_file=rules,
        extra_env={"NADIR_JOBS__EXECUTOR": "celery", "NADIR_JOBS__BROKER_URL": broker_url,
                   "NADIR_JOBS__LEASE_SECONDS": "20", "NADIR_JOBS__HEARTBEAT_SECONDS": "2"},
    )


def write_studies(folder: Path, count: int) -> list[Path]:
    files: list[Path] = []
    for i in range(count):
        uid = generate_uid()
        files += write_study(folder / f"s{i}", [make_series(uid, positions=[0, 1, 2])])
    return files


def running_on(node: NadirNode, pids: set[int]) -> int | None:
    """The id of a job RUNNING under one of `pids`, if any."""
    for job_id, owner in node.scalars(select(Job.id, Job.lease_owner).where(Job.state == "RUNNING")):
        pid = re.match(r"[^:]*:(\d+):", owner or "")
        if pid and int(pid.group(1)) in pids:
            return int(job_id)
    return None


def test_twenty_studies_two_workers_one_killed(
    tmp_path: Path, pacs: Orthanc, postgres_url: str, rabbitmq_url: str
) -> None:
    node = celery_node(tmp_path, pacs, postgres_url, rabbitmq_url, sleep_s=1.5).start()
    workers = [Worker(node.env(), tmp_path / f"worker{i}.log").start() for i in range(2)]
    try:
        storescu(write_studies(tmp_path / "studies", STUDIES), node.port, "NADIR")
        victim = workers[0]
        pids = wait_until("worker 0's process", victim.child_pids, 60)
        killed = wait_until("a job running on worker 0", lambda: running_on(node, pids), 120, 0.05)
        victim.kill9()
        srs = wait_until(f"{STUDIES} SRs in Orthanc", lambda: (u := pacs.sop_instance_uids("SR")) and
                         len(u) >= STUDIES and u, 240, 0.5)
        assert len(srs) == len(set(srs)) == STUDIES, "one SR per study, none twice"
        assert pacs.stored_new_instances() == STUDIES, "no SR stored a second time"
        states = dict(node.scalars(select(Job.id, Job.state)))
        assert sorted(set(states.values())) == ["DONE"] and len(states) == STUDIES
        attempts = dict(node.scalars(select(Job.id, Job.attempts)))
        assert attempts[killed] == 2, "the killed worker's job ran again, once"
        assert "lease lost" not in node.log_text() + workers[1].log_text()
    finally:
        for w in workers:
            w.stop()
        node.stop()
