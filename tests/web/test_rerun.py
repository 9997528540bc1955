"""Re-running a route on a study from the console (`POST /api/studies/{uid}/routes/{route}/run`
and the study page's button), on a real SQLite database: a route that never matched the
study gets a job; a DONE job is queued again with the route as it is defined now and fresh
attempts, and a worker claims it; the study goes back to PROCESSING; a pending job, a study
not routed yet, an unknown route or study are refused with the reason; each re-run audited."""

from __future__ import annotations

from sqlalchemy import select, update

from daemon.store import jobs as js
from daemon.store.models import Study, StudyState
from web.conftest import NOW, RULES, Console
from web.test_api import basic

MR_ROUTE = """\
  - name: mr-only
    pipeline: qa_report
    destinations: [pacs]
    match: {attribute: Modality, equals: MR}
"""


def _rules(c: Console, extra: str) -> None:
    c.rules_file.write_text(RULES + extra)
    assert c.deps.holder is not None and c.deps.holder.reload()


def _study_state(c: Console) -> str:
    with c.sessions() as s:
        return str(s.scalars(select(Study.state).where(Study.study_instance_uid == c.study_uid)).one())


def _jobs(c: Console) -> list[js.Job]:
    with c.sessions() as s:
        return list(s.scalars(select(js.Job).order_by(js.Job.id)))


def test_a_route_that_never_matched_runs_then_a_done_job_runs_again(console: Console) -> None:
    _rules(console, MR_ROUTE)
    url = f"/api/studies/{console.study_uid}/routes/mr-only/run"
    r = console.client.post(url, headers=basic("ada"))
    assert r.status_code == 200, r.text
    assert r.json() == {"job": 1, "state": "QUEUED", "was": None, "route": "mr-only", "study_state": "PROCESSING"}
    (job,) = _jobs(console)
    assert (job.route, job.revision, job.pipeline, job.destinations, job.state) == (
        "mr-only", 1, "qa_report", ["pacs"], "QUEUED")
    assert _study_state(console) == StudyState.PROCESSING

    again = console.client.post(url, headers=basic("ada"))  # queued already
    assert again.status_code == 409 and "runs already" in again.json()["detail"]

    # the job ran; the admin changes the route and runs it again: the route as defined now
    with console.sessions() as s:
        claimed = js.claim(s, "w", NOW, 60)
        assert claimed is not None and js.mark_done(s, claimed.id, "w", NOW, 1)
        s.execute(update(Study).values(state=StudyState.DONE))
        s.commit()
    _rules(console, MR_ROUTE.replace("destinations: [pacs]", "destinations: [pacs]\n    max_attempts: 7"))
    r = console.client.post(url, headers=basic("ada"))
    assert r.status_code == 200 and r.json()["was"] == "DONE", r.text
    (job,) = _jobs(console)
    assert (job.state, job.attempts, job.max_attempts, job.finished) == ("QUEUED", 0, 7, None)
    assert _study_state(console) == StudyState.PROCESSING
    with console.sessions() as s:  # a worker takes it
        claimed = js.claim(s, "w2", NOW, 60)
    assert claimed is not None and claimed.id == job.id and claimed.attempt == 1

    audit = console.client.get("/api/audit", headers=basic("vic")).json()
    assert [(a["action"], a["target"], a["detail"]) for a in audit] == [
        ("route.rerun", f"study {console.study_uid} route mr-only", "job 1 (was DONE), revision 1, study was DONE"),
        ("route.rerun", f"study {console.study_uid} route mr-only", "job 1 (new), revision 1, study was DONE"),
    ]


def test_refusals_say_why(console: Console) -> None:
    uid = console.study_uid
    unknown = console.client.post(f"/api/studies/{uid}/routes/nope/run", headers=basic("ada"))
    assert unknown.status_code == 404 and "no route 'nope'" in unknown.json()["detail"]
    assert console.client.post("/api/studies/1.2.3/routes/qa/run", headers=basic("ada")).status_code == 404
    with console.sessions() as s:
        s.execute(update(Study).values(state=StudyState.RECEIVING, revision=2))
        s.commit()
    r = console.client.post(f"/api/studies/{uid}/routes/qa/run", headers=basic("ada"))
    assert r.status_code == 409 and "revision 2 is not routed yet" in r.json()["detail"]
    assert _jobs(console) == []
    assert console.client.get("/api/audit", headers=basic("ada")).json() == []


def test_the_study_page_has_a_rerun_button_per_route_for_an_admin(console: Console) -> None:
    _rules(console, MR_ROUTE)
    console.login("vic")
    assert 'class="rerun"' not in console.client.get(f"/studies/{console.study_uid}").text
    console.client.cookies.clear()
    console.login("ada")
    page = console.client.get(f"/parts/studies/{console.study_uid}").text
    for route in ("qa", "mr-only"):
        assert f'hx-post="/api/studies/{console.study_uid}/routes/{route}/run"' in page, page
    assert "although it does not match" in page  # the MR route on this CT study
