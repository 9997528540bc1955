"""The console's API and pages in process, on a real SQLite database: role checks (anonymous
401, viewer 403 on every change), CSRF refusal, malformed input 4xx with a message (never
500), the routing file edited with file:line errors, tried against a stored study, saved
as versions, diffed and restored, the node's rules reloaded, and the audit trail."""

from __future__ import annotations

import base64

import pytest

from daemon.store import jobs as js
from daemon.store import outbox as ob
from web.conftest import NOW, PASSWORD, RULES, Console

BROKEN = RULES.replace("pipeline: qa_report", "pipeline: qa_reprot")
MR_ONLY = RULES.replace("equals: CT", "equals: MR")
CHANGES = [
    ("post", "/api/jobs/1/retry", None),
    ("post", "/api/outbox/1/resend", None),
    ("put", "/api/routing", {"text": RULES, "comment": "x"}),
    ("post", "/api/routing/versions/1/restore", {}),
    ("post", "/api/destinations/pacs/echo", None),
    ("post", "/api/studies/1.2.3/routes/qa/run", None),
]


def basic(name: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{PASSWORD[name]}".encode()).decode()}


def _failed_job_and_dead_letter(c: Console) -> tuple[int, int]:
    with c.sessions() as s:
        js.enqueue(s, js.NewJob(c.study_uid, 1, "qa", "qa_report", {}, ("pacs",), 1), NOW)
        s.commit()
        claimed = js.claim(s, "w", NOW, 30)
        assert claimed is not None
        js.fail(s, claimed.id, "w", NOW, "PipelineError: boom", 1)
        ob.add(s, [ob.Output("1.2.3.4", "1.2.840.10008.5.1.4.1.1.88.33", c.study_uid, "a.dcm")], ["pacs"], None, NOW)
        s.commit()
        row = s.scalars(ob.select(ob.OutboxRow)).one()
        s.execute(ob.update(ob.OutboxRow).values(state=ob.OutboxState.DEAD, last_error="refused"))
        s.commit()
        return claimed.id, row.id


@pytest.mark.parametrize("path", ["/api/studies", "/api/jobs", "/api/outbox", "/api/routing", "/api/audit",
                                  "/api/overview", "/api/destinations", "/api/criteria"])
def test_anonymous_reads_get_401(console: Console, path: str) -> None:
    r = console.client.get(path)
    assert r.status_code == 401, r.text
    assert "sign in" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path", "payload"), CHANGES)
def test_anonymous_changes_get_401_and_viewer_changes_403(console: Console, method: str, path: str,
                                                          payload: dict[str, str] | None) -> None:
    assert getattr(console.client, method)(path, json=payload).status_code == 401
    r = getattr(console.client, method)(path, json=payload, headers=basic("vic"))
    assert r.status_code == 403, r.text
    assert "vic is a viewer" in r.json()["detail"]
    console.login("vic")  # a viewer's session with its CSRF token is refused the same
    r = getattr(console.client, method)(path, json=payload)
    assert r.status_code == 403


def test_wrong_password_is_anonymous(console: Console) -> None:
    bad = {"Authorization": "Basic " + base64.b64encode(b"ada:wrong-password").decode()}
    assert console.client.get("/api/studies", headers=bad).status_code == 401
    assert console.client.get("/api/studies", headers={"Authorization": "Basic !!!"}).status_code == 401


def test_viewer_reads_without_accession_number(console: Console) -> None:
    r = console.client.get("/api/studies", headers=basic("vic"))
    assert r.status_code == 200
    (study,) = r.json()
    assert study["study_instance_uid"] == console.study_uid and study["patient_id"] == "SYNTH-1"
    one = console.client.get(f"/api/studies/{console.study_uid}", headers=basic("vic")).json()
    assert "ACC-SECRET" not in str(one) and "ACC-SECRET" not in str(study)
    assert one["study"]["study_description"] == "" or one["study"]["study_description"] is not None
    assert [s["instances"] for s in one["series"]] == [3]


def test_session_change_without_csrf_is_refused(console: Console) -> None:
    job_id, _row = _failed_job_and_dead_letter(console)
    csrf = console.login("ada")
    assert console.client.post(f"/api/jobs/{job_id}/retry").status_code == 403
    r = console.client.post(f"/api/jobs/{job_id}/retry", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = console.client.post(f"/api/jobs/{job_id}/retry", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    with console.sessions() as s:
        assert s.get(js.Job, job_id).state == js.JobState.FAILED  # type: ignore[union-attr]
    r = console.client.post(f"/api/jobs/{job_id}/retry", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    with console.sessions() as s:
        assert s.get(js.Job, job_id).state == js.JobState.QUEUED  # type: ignore[union-attr]


def test_login_form_without_csrf_is_refused(console: Console) -> None:
    console.client.get("/login")
    r = console.client.post("/login", data={"username": "ada", "password": PASSWORD["ada"], "csrf_token": "x"},
                            follow_redirects=False)
    assert r.status_code == 403
    assert "nadir_session" not in console.client.cookies


def test_retry_and_resend_are_audited_with_who_and_where(console: Console) -> None:
    job_id, row_id = _failed_job_and_dead_letter(console)
    assert console.client.post(f"/api/jobs/{job_id}/retry", headers=basic("ada")).status_code == 200
    assert console.client.post(f"/api/jobs/{job_id}/retry", headers=basic("ada")).status_code == 409
    assert console.client.post(f"/api/outbox/{row_id}/resend", headers=basic("ada")).json()["state"] == "PENDING"
    assert console.client.post(f"/api/outbox/{row_id}/resend", headers=basic("ada")).status_code == 409
    assert console.client.post("/api/outbox/999/resend", headers=basic("ada")).status_code == 404
    audit = console.client.get("/api/audit", headers=basic("vic")).json()
    assert [(a["user"], a["action"], a["target"]) for a in audit] == [
        ("ada", "outbox.resend", f"outbox {row_id}"), ("ada", "job.retry", f"job {job_id}")]
    assert all(a["remote"] == "testclient" for a in audit)


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("put", "/api/routing", {"content": b"{not json"}),
    ("put", "/api/routing", {"json": {"text": RULES}}),  # no comment
    ("put", "/api/routing", {"json": {"text": 5, "comment": "x"}}),
    ("put", "/api/routing", {"json": {"text": RULES, "comment": "x", "extra": 1}}),
    ("put", "/api/routing", {"json": ["a list"]}),
    ("put", "/api/routing", {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}),
    ("put", "/api/routing", {"json": {"text": "routes: [\n  {", "comment": "x"}}),  # not YAML
    ("post", "/api/routing/try", {"json": {"text": RULES, "study_uid": "1.2.3"}}),  # unknown study
    ("post", "/api/jobs/abc/retry", {}),
    ("post", "/api/jobs/99999999999999999999999/retry", {}),
    ("get", "/api/studies?limit=-1", {}),
    ("get", "/api/studies?state=NOPE", {}),
    ("get", "/api/studies/1.2.3", {}),
    ("get", "/api/routing/versions/12", {}),
    ("get", "/api/site-rules/recist", {}),  # no site folder set
    ("post", "/api/destinations/nope/echo", {}),
])
def test_malformed_input_is_4xx_with_a_message(console: Console, method: str, path: str, kwargs: dict[str, object]) -> None:
    headers = {**basic("ada"), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    r = getattr(console.client, method)(path, headers=headers, **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["detail"], r.text


def test_broken_route_is_refused_at_file_and_line(console: Console) -> None:
    r = console.client.put("/api/routing", json={"text": BROKEN, "comment": "typo"}, headers=basic("ada"))
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error.startswith(f"{console.rules_file}:4: route 'qa': pipeline:"), error
    assert console.rules_file.read_text() == RULES  # untouched
    tried = console.client.post("/api/routing/try", json={"text": BROKEN}, headers=basic("vic")).json()
    assert not tried["valid"] and tried["errors"] == [error]


def test_try_save_diff_restore_and_reload(console: Console) -> None:
    holder = console.deps.holder
    assert holder is not None and [r.name for r in holder.rules.routes] == ["qa"]
    tried = console.client.post("/api/routing/try", json={"text": MR_ONLY, "study_uid": console.study_uid},
                                headers=basic("vic")).json()
    assert tried["valid"] and tried["decision"]["runs"] == []  # the stored study is CT
    tried = console.client.post("/api/routing/try", json={"text": RULES, "study_uid": console.study_uid},
                                headers=basic("vic")).json()
    assert tried["decision"]["runs"] == ["qa"] and any("qa" in line for line in tried["lines"])

    first = console.client.get("/api/routing", headers=basic("vic")).json()
    saved = console.client.put("/api/routing", json={"text": MR_ONLY, "comment": "MR only", "base_sha256": first["sha256"]},
                               headers=basic("ada"))
    assert saved.status_code == 200, saved.text
    assert console.rules_file.read_text() == MR_ONLY
    assert saved.json()["reload_error"] is None
    assert "'MR'" in repr(holder.rules.routes[0].condition)
    # a save from a stale editor is refused
    stale = console.client.put("/api/routing", json={"text": RULES, "comment": "late", "base_sha256": first["sha256"]},
                               headers=basic("ada"))
    assert stale.status_code == 409 and "changed since" in stale.json()["detail"]

    state = console.client.get("/api/routing", headers=basic("vic")).json()
    assert [(v["user"], v["comment"]) for v in state["versions"]] == [
        ("ada", "MR only"), ("(file)", "the file as found before the first edit in the console")]
    original = state["versions"][1]["id"]
    diff = console.client.get(f"/api/routing/versions/{original}", headers=basic("vic")).json()["diff"]
    assert "-    match: {attribute: Modality, equals: CT}" in diff
    assert "+    match: {attribute: Modality, equals: MR}" in diff
    restored = console.client.post(f"/api/routing/versions/{original}/restore", json={}, headers=basic("ada"))
    assert restored.status_code == 200, restored.text
    assert console.rules_file.read_text() == RULES
    assert "'CT'" in repr(holder.rules.routes[0].condition)
    actions = [(a["action"], a["detail"]) for a in console.client.get("/api/audit", headers=basic("vic")).json()]
    assert actions[0] == ("rules.save", f"version {restored.json()['version']['id']}: restored version {original}")


def test_pages_need_a_session_and_show_the_study(console: Console) -> None:
    r = console.client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    console.login("vic")
    page = console.client.get(f"/studies/{console.study_uid}")
    assert page.status_code == 200 and "SYNTH-1" in page.text and "ACC-SECRET" not in page.text
    assert "retry" not in page.text  # a viewer sees no buttons
    assert console.client.get("/routes").status_code == 200
    assert console.client.get("/rules").status_code == 200 and "Eisenhauer" in console.client.get("/rules").text


def test_openapi_lists_the_fixed_endpoints(console: Console) -> None:
    paths = console.client.get("/api/openapi.json").json()["paths"]
    for path, method in [("/api/studies", "get"), ("/api/studies/{uid}", "get"), ("/api/jobs", "get"),
                         ("/api/jobs/{job_id}/retry", "post"), ("/api/outbox", "get"),
                         ("/api/outbox/{row_id}/resend", "post"), ("/api/routing", "get"), ("/api/routing", "put")]:
        assert method in paths[path], path
