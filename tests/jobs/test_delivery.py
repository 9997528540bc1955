"""End to end with real peers: dcmtk storescu -> `nadir serve` -> QA report SR ->
Orthanc (the PACS, checked through its REST API). Every output arrives exactly
once: with the PACS down then up, past the maximum age (a dead letter, then
resent), and across kill -9 of the daemon while a job runs and while sending."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from daemon.store.jobs import Job
from daemon.store.models import Study
from daemon.store.outbox import OutboxRow
from jobs.harness import (
    NadirNode,
    Orthanc,
    free_port,
    job_states,
    outbox_states,
    storescu,
    wait_until,
)
from jobs.studies import make_series, write_study

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def send_study(tmp_path: Path, node: NadirNode, name: str = "study") -> str:
    uid = generate_uid()
    files = write_study(tmp_path / name, [make_series(uid, positions=[0, 1, 2, 3, 5, 6])])
    storescu(files, node.port, "NADIR")
    return uid


def sr_in_orthanc(pacs: Orthanc, expected: int) -> list[str] | None:
    uids = pacs.sop_instance_uids("SR")
    return uids if len(uids) >= expected else None


def expected_outputs(node: NadirNode) -> set[str]:
    return {row[0] for row in node.scalars(select(OutboxRow.sop_instance_uid))}


def assert_each_once(pacs: Orthanc, node: NadirNode, images: int) -> None:
    srs = pacs.sop_instance_uids("SR")
    assert sorted(srs) == sorted(expected_outputs(node)), "every output in Orthanc, each once"
    assert len(pacs.sop_instance_uids()) == len(srs) + images  # nothing else arrived
    assert pacs.stored_new_instances() == len(srs) + images  # never stored as a second instance


@pytest.fixture
def pacs(tmp_path: Path) -> Orthanc:
    orthanc = Orthanc(tmp_path / "orthanc").start()
    yield orthanc
    orthanc.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_qa_report_arrives_once_and_rules_reload(
    request: pytest.FixtureRequest, tmp_path: Path, pacs: Orthanc, backend: str
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    run_qa_report_and_reload(tmp_path, pacs, url)


def run_qa_report_and_reload(tmp_path: Path, pacs: Orthanc, url: str | None) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text((Path(__file__).parents[2] / "rules" / "routing.yaml").read_text())
    node = NadirNode(tmp_path / "nadir", pacs.dicom_port, database_url=url, rules_file=rules).start()
    try:
        # the images go to Nadir only; Orthanc gets the SR
        uid = send_study(tmp_path, node)
        srs = wait_until("the QA SR in Orthanc", lambda: sr_in_orthanc(pacs, 1), 60)
        assert len(srs) == 1
        wait_until("the study DONE", lambda: node.scalars(select(Study.state).where(Study.state == "DONE")), 20)
        explained = node.cli("explain", uid)
        assert explained.returncode == 0, explained.stderr
        assert "runs 1 route(s): qa-report" in explained.stdout and "sent by MODALITY" in explained.stdout
        jobs = node.cli_json("job", "ls")
        assert [(j["route"], j["state"], j["study_instance_uid"]) for j in jobs] == [("qa-report", "DONE", uid)]
        # an invalid file at reload is refused; the old rules stay in force
        rules.write_text(rules.read_text().replace("pipeline: qa_report", "pipeline: qa_report\n    colour: blue"))
        node.hup()
        wait_until("the refusal in the log", lambda: "routing file refused" in node.log_text(), 20)
        assert "colour: unknown key" in node.log_text()
        send_study(tmp_path, node, "second")
        wait_until("the second SR", lambda: sr_in_orthanc(pacs, 2), 60)
        assert_each_once(pacs, node, images=0)
    finally:
        node.stop()
        print(node.log_text()[-6000:])  # shown only when the test fails


def test_invalid_rules_at_start_exit_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text("version: 1\nroutes:\n  - name: x\n    pipeline: qa_report\n    destinations: [nowhere]\n")
    node = NadirNode(tmp_path / "nadir", free_port(), rules_file=bad)
    out = node.cli("serve")
    assert out.returncode == 2
    assert f"{bad}:5: route 'x': destinations.0: unknown destination 'nowhere'" in out.stderr
    assert "Traceback" not in out.stderr


def test_pacs_down_then_up_and_dead_letter(tmp_path: Path) -> None:
    pacs = Orthanc(tmp_path / "orthanc")  # not started: the PACS is down
    node = NadirNode(tmp_path / "nadir", pacs.dicom_port, extra_env={"NADIR_OUTBOX__MAX_AGE_SECONDS": "4"}).start()
    try:
        send_study(tmp_path, node)
        wait_until("a dead letter", lambda: "DEAD" in outbox_states(node), 40)
        rows = node.cli_json("outbox", "ls")
        assert len(rows) == 1 and rows[0]["dead_letter"] is True and rows[0]["attempts"] >= 2
        assert "dead letter after" in rows[0]["error"] and "association" in rows[0]["error"]
        assert "is a dead letter" in node.log_text()
        # the PACS comes back; `nadir outbox resend` puts the dead letter back, it arrives once
        pacs.start()
        out = node.cli("outbox", "resend")
        assert out.returncode == 0 and "1 dead letter(s)" in out.stdout
        wait_until("the SR in Orthanc", lambda: sr_in_orthanc(pacs, 1), 30)
        wait_until("the row SENT", lambda: outbox_states(node) == ["SENT"], 10)
        # a longer maximum age (the node restarted with it); the PACS down again for the
        # next study and up before that age: delivered by the retries alone
        node.stop()
        node.extra_env["NADIR_OUTBOX__MAX_AGE_SECONDS"] = "600"
        node.start()
        pacs.stop()
        send_study(tmp_path, node, "second")
        wait_until("a failed attempt", lambda: [r for r in node.cli_json("outbox", "ls") if r["state"] == "PENDING" and r["attempts"] >= 1], 30)
        pacs.start()
        wait_until("both SRs in Orthanc", lambda: sr_in_orthanc(pacs, 2), 30)
        assert_each_once(pacs, node, images=0)
    finally:
        node.stop()
        print(node.log_text()[-6000:])  # shown only when the test fails
        pacs.stop()


def test_kill9_while_a_job_runs_and_while_sending(tmp_path: Path, pacs: Orthanc) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(
        "version: 1\nroutes:\n"
        "  - {name: slow, pipeline: 'jobs.extra_pipelines:slow', destinations: [pacs], parameters: {sleep_seconds: 3}}\n"
        "  - {name: many, pipeline: 'jobs.extra_pipelines:many', destinations: [pacs], parameters: {count: 60}}\n"
    )
    node = NadirNode(tmp_path / "nadir", pacs.dicom_port, rules_file=rules).start()
    try:
        send_study(tmp_path, node)
        wait_until("the slow job running", lambda: "RUNNING" in job_states(node) and [r for r in node.scalars(select(Job.route, Job.state)) if r == ("slow", "RUNNING")], 30, 0.05)
        node.kill9()
        node.start()
        # the slow job's lease expires and it runs again; the many-outputs job runs too
        wait_until("outbox rows being sent", lambda: (s := outbox_states(node)) and "SENT" in s and "PENDING" in s, 60, 0.02)
        node.kill9()
        node.start()
        wait_until("every job DONE", lambda: job_states(node) == ["DONE", "DONE"], 60)
        wait_until("every row SENT", lambda: (s := outbox_states(node)) and set(s) == {"SENT"}, 60)
        assert len(expected_outputs(node)) == 61
        wait_until("61 SRs in Orthanc", lambda: sr_in_orthanc(pacs, 61), 30)
        assert_each_once(pacs, node, images=0)
        attempts = {r[0]: r[1] for r in node.scalars(select(Job.route, Job.attempts))}
        assert attempts["slow"] >= 2  # it ran again after the kill
    finally:
        node.stop()
        print(node.log_text()[-6000:])  # shown only when the test fails
