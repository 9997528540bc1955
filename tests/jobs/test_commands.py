"""`nadir study`, `nadir job`, `nadir outbox` (and their old names) on a database with a
failed study: a failed job and a dead letter (SQLite; the store itself is tested on both
databases). The rows are written through the store's own API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from daemon.cli import main
from daemon.config import OutboxSettings
from daemon.store import jobs as js
from daemon.store import outbox as ob
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.models import Instance, Study, StudyState
from jobs.studies import make_series, write_study

NOW = datetime.now(UTC)
SR = "1.2.840.10008.5.1.4.1.1.88.33"
RULES = """\
version: 1
routes:
  - name: qa
    pipeline: qa_report
    destinations: [pacs]
    match: {attribute: Modality, equals: CT}
"""


def _stored_study(s: object, data: Path) -> str:
    """A FAILED CT study of 3 instances whose files are in the spool."""
    uid = generate_uid()
    series = make_series(uid, positions=[0, 1, 2], description="AXIAL")
    paths = write_study(data / "spool" / "study", [series])
    study = Study(study_instance_uid=uid, state=StudyState.FAILED, revision=1, patient_id="SYNTH-1",
                  accession_number="A1", first_received=NOW, last_received=NOW, revision_started=NOW,
                  state_changed=NOW, instance_count=3)
    s.add(study)  # type: ignore[attr-defined]
    s.flush()  # type: ignore[attr-defined]
    for ds, path in zip(series, paths, strict=True):
        s.add(Instance(  # type: ignore[attr-defined]
            sop_instance_uid=ds.SOPInstanceUID, study_id=study.id, series_instance_uid=ds.SeriesInstanceUID,
            sop_class_uid=ds.SOPClassUID, transfer_syntax_uid=ds.file_meta.TransferSyntaxUID, modality="CT",
            path=str(path.relative_to(data / "spool")), size=path.stat().st_size, revision=1,
            calling_ae="MODALITY", received=NOW))
    return uid


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NADIR_CONFIG", raising=False)
    monkeypatch.setenv("NADIR_STORE__DATA_DIR", str(tmp_path))
    (tmp_path / "routing.yaml").write_text(RULES)
    monkeypatch.setenv("NADIR_ROUTING__RULES_FILE", str(tmp_path / "routing.yaml"))
    engine = make_engine(f"sqlite:///{tmp_path / 'nadir.db'}")
    create_schema(engine)
    with make_sessionmaker(engine)() as s:
        uid = _stored_study(s, tmp_path)
        js.enqueue(s, js.NewJob(uid, 1, "qa", "qa_report", {}, ("pacs",), 1), NOW)
        s.commit()
        claimed = js.claim(s, "w", NOW, 30)
        assert claimed is not None
        js.fail(s, claimed.id, "w", NOW, "PipelineError: no readable instance", 1)
        ob.add(s, [ob.Output("1.2.3.4", SR, uid, "a.dcm")], ["pacs"], None, NOW)
        s.commit()
        cfg = OutboxSettings(max_age_seconds=1)
        ob.record_failure(s, 1, NOW, 0xA700, "C-STORE failed with status 0xA700", cfg)
    engine.dispose()
    (tmp_path / "uid").write_text(uid)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_job_ls_and_retry(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "job", "ls", "--json")
    jobs = json.loads(out)
    assert rc == 0 and [(j["id"], j["state"], j["attempts"]) for j in jobs] == [(1, "FAILED", 1)]
    assert jobs[0]["error"] == "PipelineError: no readable instance"
    rc, out, _ = run(capsys, "job", "ls")
    assert rc == 0 and "FAILED" in out and "error: PipelineError" in out
    rc, out, _ = run(capsys, "job", "retry", "1")
    assert rc == 0 and "job 1 queued again" in out
    rc, _, err = run(capsys, "job", "retry", "1")
    assert rc == 1 and "only FAILED or DONE" in err
    rc, _, err = run(capsys, "job", "retry", "99")
    assert rc == 1 and err == "nadir job retry: no job 99 (`nadir job ls` lists them)\n"
    assert json.loads(run(capsys, "job", "ls", "--json")[1])[0]["state"] == "QUEUED"


def test_outbox_ls_and_resend(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "outbox", "ls", "--json")
    rows = json.loads(out)
    assert rc == 0 and len(rows) == 1
    assert rows[0]["dead_letter"] is True and rows[0]["last_status"] == "0xA700"
    assert "dead letter after 1 attempt(s)" in rows[0]["error"]
    history = json.loads(run(capsys, "outbox", "ls", "--json", "--history")[1])[0]["history"]
    assert [(a["ok"], a["status"]) for a in history] == [(False, "0xA700")]
    rc, out, _ = run(capsys, "outbox", "ls", "--state", "DEAD")
    assert rc == 0 and "DEAD" in out and "0xA700" in out
    rc, out, _ = run(capsys, "outbox", "resend")
    assert rc == 0 and "1 dead letter(s) put back" in out
    assert json.loads(run(capsys, "outbox", "ls", "--json")[1])[0]["state"] == "PENDING"


def test_resend_of_an_unknown_or_live_row_says_so_and_exits_1(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "outbox", "resend", "99")
    assert rc == 1 and out == "" and err == "nadir outbox resend: no outbox row 99 (`nadir outbox ls` lists them)\n"
    assert json.loads(run(capsys, "outbox", "ls", "--json")[1])[0]["state"] == "DEAD"  # nothing resent
    assert run(capsys, "outbox", "resend", "1")[0] == 0
    rc, _, err = run(capsys, "outbox", "resend", "1")
    assert rc == 1 and "outbox row 1 is PENDING: only dead letters are resent" in err


def test_outbox_state_filter_runs_before_the_limit(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(f"sqlite:///{data / 'nadir.db'}")
    with make_sessionmaker(engine)() as s:  # 600 newer rows hide the old dead letter under LIMIT 500
        outputs = [ob.Output(f"1.2.3.5.{n}", SR, "1.2.3", f"{n}.dcm") for n in range(600)]
        ob.add(s, outputs, ["pacs"], None, NOW + timedelta(seconds=1))
        s.commit()
    engine.dispose()
    dead = json.loads(run(capsys, "outbox", "ls", "--state", "DEAD", "--json")[1])
    assert [(r["id"], r["state"]) for r in dead] == [(1, "DEAD")]
    assert len(json.loads(run(capsys, "outbox", "ls", "--json")[1])) == 500
    assert len(json.loads(run(capsys, "outbox", "ls", "--state", "pending", "--limit", "20", "--json")[1])) == 20


def test_study_ls_shows_accession_patient_routes_and_why_failed(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uid = (data / "uid").read_text()
    rc, out, _ = run(capsys, "study", "ls", "--json")
    (study,) = json.loads(out)
    assert rc == 0 and study["study_instance_uid"] == uid and study["state"] == "FAILED"
    assert (study["accession_number"], study["patient_id"], study["routes"]) == ("A1", "SYNTH-1", ["qa"])
    assert study["failure"] == "job 1 (route qa) failed: PipelineError: no readable instance"
    rc, out, _ = run(capsys, "study", "ls")
    assert rc == 0 and "A1" in out and "SYNTH-1" in out
    assert "why: job 1 (route qa) failed: PipelineError: no readable instance" in out
    today, tomorrow = NOW.date(), (NOW + timedelta(days=1)).date()
    for flt, found in ((["--state", "FAILED"], 1), (["--state", "DONE"], 0), (["--route", "qa"], 1),
                       (["--route", "other"], 0), (["--since", str(today)], 1), (["--since", str(tomorrow)], 0),
                       (["--until", str(today)], 1), (["--until", str(today - timedelta(days=1))], 0)):
        assert len(json.loads(run(capsys, "study", "ls", *flt, "--json")[1])) == found, flt
    assert run(capsys, "study", "ls", "--state", "DONE")[1] == "no study matches\n"


def test_a_failed_study_says_why_from_its_dead_letter(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "job", "retry", "1")[0] == 0  # the job no longer failed: the dead letter is why
    (study,) = json.loads(run(capsys, "study", "ls", "--json")[1])
    assert study["failure"].startswith("delivery 1 to pacs is a dead letter: dead letter after 1 attempt(s)")


def test_study_show_links_series_decisions_jobs_outputs_and_deliveries(data: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    uid = (data / "uid").read_text()
    rc, out, _ = run(capsys, "study", "show", uid, "--json")
    shown = json.loads(out)
    assert rc == 0 and shown["study"]["state"] == "FAILED" and shown["study"]["accession_number"] == "A1"
    assert shown["study"]["failure"] == "job 1 (route qa) failed: PipelineError: no readable instance"
    (series,) = shown["series"]
    assert (series["modality"], series["instances"], series["label"]) == ("CT", 3, "series 1 'AXIAL'")
    assert shown["routing"]["decision"]["runs"] == ["qa"] and shown["routing"]["error"] is None
    assert [(j["id"], j["route"], j["state"]) for j in shown["jobs"]] == [(1, "qa", "FAILED")]
    (output,) = shown["outputs"]
    assert output["sop_instance_uid"] == "1.2.3.4" and output["kind"] == "Comprehensive SR Storage"
    assert [(d["destination"], d["state"], d["last_status"]) for d in output["deliveries"]] == [("pacs", "DEAD", "0xA700")]
    rc, out, _ = run(capsys, "study", "show", uid)
    assert rc == 0
    for text in (f"Study {uid}: FAILED, revision 1", "accession A1, patient ID SYNTH-1",
                 "why FAILED: job 1 (route qa) failed", "series 1 'AXIAL'", "route 'qa' -> run",
                 "[yes] Modality is 'CT'", "1 FAILED    rev 1   qa (qa_report), 1/1 tries",
                 "Comprehensive SR Storage 1.2.3.4", "-> pacs: DEAD, 1 attempt(s), status 0xA700 (outbox 1)"):
        assert text in out, text
    rc, out, err = run(capsys, "study", "show", "1.2.999")
    assert (rc, out) == (1, "") and err == "nadir study show: no study 1.2.999 in the node's database (`nadir study ls` lists them)\n"


def test_old_names_still_work_with_a_deprecation_note(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for old, new in ((["ls"], ["study", "ls"]), (["jobs"], ["job", "ls"]), (["outbox"], ["outbox", "ls"])):
        rc, out, err = run(capsys, *old, "--json")
        assert rc == 0 and json.loads(out) == json.loads(run(capsys, *new, "--json")[1])
        assert err.count("\n") == 1 and "deprecated" in err and f"use `nadir {' '.join(new)}`" in err
    rc, out, err = run(capsys, "outbox", "--state", "DEAD", "--json")
    assert rc == 0 and len(json.loads(out)) == 1 and "use `nadir outbox ls`" in err
    rc, out, err = run(capsys, "resend", "1")
    assert rc == 0 and "1 dead letter(s) put back" in out and "use `nadir outbox resend`" in err
    rc, out, err = run(capsys, "retry", "1")
    assert rc == 0 and "job 1 queued again" in out and "use `nadir job retry`" in err


def test_read_only_commands_never_create_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NADIR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("NADIR_STORE__DATA_DIR", "data")
    assert run(capsys, "study", "ls") == (0, "no study received yet\n", "")
    assert run(capsys, "study", "ls", "--json")[:2] == (0, "[]\n")
    assert run(capsys, "job", "ls") == (0, "no job yet\n", "")
    assert run(capsys, "outbox", "ls", "--state", "DEAD") == (0, "no DEAD row in the outbox\n", "")
    assert run(capsys, "outbox", "resend")[:2] == (0, "0 dead letter(s) put back in the outbox\n")
    assert run(capsys, "study", "show", "1.2.3")[0] == 1
    assert run(capsys, "job", "retry", "1")[0] == 1
    assert list((tmp_path / "data").iterdir()) == []
