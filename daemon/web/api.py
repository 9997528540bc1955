"""The JSON API under /api/ (OpenAPI at /api/openapi.json): what the pages and scripts use.

Reads need a viewer, changes an admin (with the CSRF token for a browser's identity); an
anonymous request gets 401, a viewer's change 403. Bodies are JSON (or a form, as htmx
sends them); a malformed one gets 422 with a message, an unknown id 404, a conflict 409.
Every change is written to the audit table with who, when and from where.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon.commands.explain import decision_as_dict
from daemon.config import ConfigError
from daemon.routing import Rules, decide, explain
from daemon.routing_rules import load_rules
from daemon.store import console
from daemon.store import jobs as jobstore
from daemon.store import outbox as outboxstore
from daemon.store.jobs import Job, JobState
from daemon.store.models import StudyState
from daemon.store.outbox import OutboxRow, OutboxState
from daemon.store.rerun import RerunRefused, rerun_route
from daemon.store.studies import study_by_uid
from daemon.store.summary import summary_of_stored
from daemon.web import rules_edit, views
from daemon.web.auth import Identity, deps_of, remote_of, require_admin, require_viewer
from daemon.web.echo import echo

M = TypeVar("M", bound=BaseModel)
Viewer = Annotated[Identity, Depends(require_viewer)]
Admin = Annotated[Identity, Depends(require_admin)]
JOB_STATES = "|".join(s.value for s in JobState)
STUDY_STATES = "|".join(s.value for s in StudyState)
OUTBOX_STATES = "|".join(s.value for s in OutboxState)
Id = Annotated[int, Path(ge=1, le=2**62)]  # a row id (SQLite and PostgreSQL BIGINT hold it)
CHANGED = "nadir-changed"  # the htmx event a page's live parts refresh on

router = APIRouter(prefix="/api")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RulesText(_Body):
    text: str = Field(max_length=rules_edit.MAX_TEXT)
    comment: str = Field(min_length=1, max_length=2000)
    base_sha256: str | None = Field(None, pattern="^[0-9a-f]{64}$")


class RulesTry(_Body):
    text: str = Field(max_length=rules_edit.MAX_TEXT)
    study_uid: str | None = Field(None, max_length=64)


class Restore(_Body):
    comment: str = Field("", max_length=2000)


async def body(request: Request, model: type[M]) -> M:
    """The request's JSON (or form) body as `model`; 422 with the reasons when it is not."""
    kind = request.headers.get("content-type", "")
    try:
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            # a page's form: its fields of the model (htmx sends the whole enclosing form),
            # an empty optional field as absent
            form = await request.form()
            data: Any = {k: v for k, v in form.items() if k in model.model_fields
                         and not (v == "" and not model.model_fields[k].is_required())}
        else:
            data = json.loads(await request.body() or b"null")
        return model.model_validate(data)
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError and ValidationError are ValueErrors
        detail = ([f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
                  if isinstance(exc, ValidationError) else [f"body: not JSON ({exc})"])
        raise HTTPException(422, detail) from exc


def _spec(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def changed(request: Request, response: Response) -> None:
    """Tell an htmx page that its live parts are out of date."""
    if request.headers.get("hx-request"):
        response.headers["HX-Trigger"] = CHANGED


# --- reads ---------------------------------------------------------------------------


@router.get("/overview")
def get_overview(request: Request, _who: Viewer) -> dict[str, Any]:
    deps = deps_of(request)
    with deps.sessions() as session:
        return views.overview(session, deps.clock())


@router.get("/studies")
def get_studies(request: Request, _who: Viewer,
                state: Annotated[str | None, Query(pattern=f"^({STUDY_STATES})$")] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    with deps_of(request).sessions() as session:
        return views.studies(session, state, limit)


@router.get("/studies/{uid}")
def get_study(request: Request, uid: str, _who: Viewer) -> dict[str, Any]:
    deps = deps_of(request)
    with deps.sessions() as session:
        found = views.study(session, deps.settings, deps.spool, uid)
    if found is None:
        raise HTTPException(404, f"no study {uid}")
    return found


@router.get("/jobs")
def get_jobs(request: Request, _who: Viewer,
             state: Annotated[str | None, Query(pattern=f"^({JOB_STATES})$")] = None,
             route: Annotated[str | None, Query(max_length=128)] = None,
             limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    with deps_of(request).sessions() as session:
        return views.jobs(session, state, route, limit)


@router.get("/outbox")
def get_outbox(request: Request, _who: Viewer,
               state: Annotated[str | None, Query(pattern=f"^({OUTBOX_STATES})$")] = None,
               destination: Annotated[str | None, Query(max_length=128)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    with deps_of(request).sessions() as session:
        return views.outbox(session, state, destination, limit)


@router.get("/models")
def get_models(_who: Viewer) -> list[dict[str, Any]]:
    return views.models()


@router.get("/destinations")
def get_destinations(request: Request, _who: Viewer) -> list[dict[str, Any]]:
    deps = deps_of(request)
    with deps.sessions() as session:
        return views.destinations(session, deps.settings)


@router.get("/audit")
def get_audit(request: Request, _who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    with deps_of(request).sessions() as session:
        return console.audit_entries(session, limit)


@router.get("/criteria")
def get_criteria(_who: Viewer) -> list[dict[str, Any]]:
    return rules_edit.criteria_files()


# --- changes: jobs and deliveries ----------------------------------------------------


@router.post("/jobs/{job_id}/retry")
def retry_job(request: Request, response: Response, job_id: Id, who: Admin) -> dict[str, Any]:
    """Queue a FAILED (or DONE: re-run its route) job again with fresh attempts."""
    deps = deps_of(request)
    now = deps.clock()
    with deps.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        state, route, uid = job.state, job.route, job.study_instance_uid
        if not jobstore.retry(session, job_id, now):
            raise HTTPException(409, f"job {job_id} is {state}: only FAILED or DONE jobs can be retried")
        console.audit(session, now, who.name, "job.retry", f"job {job_id}", f"route {route}, study {uid}, was {state}",
                      remote_of(request))
        session.commit()
    changed(request, response)
    return {"job": job_id, "state": JobState.QUEUED.value}


def rules_in_force(request: Request) -> Rules:
    """The routing rules the node runs with (the router's), else the file's; 409 when invalid."""
    deps = deps_of(request)
    if deps.holder is not None:
        return deps.holder.rules
    try:
        return load_rules(deps.settings.routing.rules_file, deps.settings.destinations.keys(),
                          deps.settings.criteria.site_dir)
    except ConfigError as exc:
        raise HTTPException(409, f"the routing file is not valid: {exc}") from exc


@router.post("/studies/{uid}/routes/{route}/run")
def rerun(request: Request, response: Response, uid: Annotated[str, Path(max_length=64)],
          route: Annotated[str, Path(max_length=128)], who: Admin) -> dict[str, Any]:
    """Queue the route (as the rules in force define it) for the study's current revision,
    even when its job is DONE or the route did not match (daemon.store.rerun)."""
    deps = deps_of(request)
    found = next((r for r in rules_in_force(request).routes if r.name == route), None)
    if found is None:
        raise HTTPException(404, f"no route {route!r} in the rules in force")
    now = deps.clock()
    with deps.sessions() as session:
        study = study_by_uid(session, uid)
        if study is None:
            raise HTTPException(404, f"no study {uid}")
        try:
            done = rerun_route(session, study, found, deps.settings.jobs.max_attempts, now)
        except RerunRefused as exc:
            raise HTTPException(409, str(exc)) from exc
        console.audit(session, now, who.name, "route.rerun", f"study {uid} route {route}",
                      f"job {done.job_id} ({'new' if done.was is None else f'was {done.was}'}), "
                      f"revision {study.revision}, study was {done.study_was}", remote_of(request))
        session.commit()
    changed(request, response)
    return {"job": done.job_id, "state": JobState.QUEUED.value, "was": done.was, "route": route,
            "study_state": StudyState.PROCESSING.value}


@router.post("/outbox/{row_id}/resend")
def resend(request: Request, response: Response, row_id: Id, who: Admin) -> dict[str, Any]:
    """Put a dead letter back in the outbox."""
    deps = deps_of(request)
    now = deps.clock()
    with deps.sessions() as session:
        row = session.get(OutboxRow, row_id)
        if row is None:
            raise HTTPException(404, f"no outbox row {row_id}")
        if row.state != OutboxState.DEAD:
            raise HTTPException(409, f"outbox row {row_id} is {row.state}: only dead letters are resent")
        dest, sop = row.destination, row.sop_instance_uid
        outboxstore.resend(session, now, [row_id])
        console.audit(session, now, who.name, "outbox.resend", f"outbox {row_id}", f"{sop} to {dest}",
                      remote_of(request))
        session.commit()
    changed(request, response)
    return {"outbox": row_id, "state": OutboxState.PENDING.value}


@router.post("/destinations/{name}/echo")
def echo_destination(request: Request, name: str, who: Admin) -> dict[str, Any]:
    """C-ECHO the destination as the node's AE; the answer (or why none) is returned."""
    deps = deps_of(request)
    if name not in deps.settings.destinations:
        raise HTTPException(404, f"no destination {name!r} in the settings")
    result = echo(deps.settings, name)
    with deps.sessions() as session:
        console.audit(session, deps.clock(), who.name, "destination.echo", name,
                      "success" if result.ok else result.message, remote_of(request))
        session.commit()
    return {"destination": name, "ok": result.ok, "status": result.status, "message": result.message,
            "seconds": round(result.seconds, 3)}


# --- the routing file and site overrides ---------------------------------------------


def _rules_state(request: Request, kind: str) -> dict[str, Any]:
    deps = deps_of(request)
    path = _kind_path(request, kind)
    text = rules_edit.current_text(path)
    with deps.sessions() as session:
        versions = [console.version_as_dict(v) for v in console.versions_of(session, kind)]
    out: dict[str, Any] = {"kind": kind, "path": str(path), "text": text, "sha256": console.sha256_text(text),
                           "versions": versions}
    if kind == rules_edit.ROUTING and deps.holder is not None:
        rules = deps.holder.rules
        out["in_force"] = {"routes": [r.name for r in rules.routes], "last_error": deps.holder.last_error}
    return out


def _kind_path(request: Request, kind: str) -> Any:
    try:
        return rules_edit.kind_path(deps_of(request).settings, kind)
    except rules_edit.RulesEditError as exc:
        raise HTTPException(404, str(exc)) from exc


def _reload(request: Request) -> str | None:
    holder = deps_of(request).holder
    if holder is None:
        return None
    holder.reload()
    return holder.last_error


def save_rules(request: Request, kind: str, data: RulesText, who: Identity) -> dict[str, Any]:
    """Check and save; 422 with the file:line errors when invalid, 409 when changed meanwhile."""
    deps = deps_of(request)
    _kind_path(request, kind)
    with deps.sessions() as session:
        try:
            result = rules_edit.save(session, deps.settings, kind, data.text, data.comment, who.name, deps.clock(),
                                     remote_of(request), data.base_sha256)
        except rules_edit.RulesEditError as exc:
            raise HTTPException(409, str(exc)) from exc
    if isinstance(result, rules_edit.Checked):
        raise HTTPException(422, list(result.errors))
    return {"version": console.version_as_dict(result.version), "path": str(result.path),
            "reload_error": _reload(request)}


def try_rules(request: Request, kind: str, data: RulesTry) -> dict[str, Any]:
    """Check a candidate text; for the routing file, decide a stored study with it."""
    deps = deps_of(request)
    _kind_path(request, kind)
    checked = rules_edit.check_kind(deps.settings, kind, data.text)
    out: dict[str, Any] = {"valid": checked.valid, "errors": list(checked.errors), "decision": None, "lines": []}
    if checked.rules is None or data.study_uid is None:
        return out
    with deps.sessions() as session:
        study = study_by_uid(session, data.study_uid)
        if study is None:
            raise HTTPException(404, f"no study {data.study_uid}")
        decision = decide(summary_of_stored(session, deps.spool, study), checked.rules, deps.clock())
    out["decision"] = decision_as_dict(decision)
    out["lines"] = explain(decision)
    return out


def restore_version(request: Request, kind: str, version_id: Id, data: Restore, who: Identity) -> dict[str, Any]:
    with deps_of(request).sessions() as session:
        version = console.version_by_id(session, version_id)
        if version is None or version.kind != kind:
            raise HTTPException(404, f"no saved version {version_id} of {kind}")
        text = version.text
    comment = data.comment or f"restored version {version_id}"
    return save_rules(request, kind, RulesText(text=text, comment=comment), who)


def version_diff(request: Request, kind: str, version_id: Id, against: int | None) -> dict[str, Any]:
    path = _kind_path(request, kind)
    with deps_of(request).sessions() as session:
        version = console.version_by_id(session, version_id)
        other = console.version_by_id(session, against) if against is not None else None
        if version is None or version.kind != kind or (against is not None and (other is None or other.kind != kind)):
            raise HTTPException(404, f"no saved version {version_id if version is None else against} of {kind}")
        new_text, new_name = (other.text, f"version {other.id}") if other else (rules_edit.current_text(path), "current file")
        return {**console.version_as_dict(version, with_text=True),
                "diff": rules_edit.diff(version.text, new_text, f"version {version.id}", new_name)}


@router.get("/routing")
def get_routing(request: Request, _who: Viewer) -> dict[str, Any]:
    return _rules_state(request, rules_edit.ROUTING)


@router.put("/routing", openapi_extra=_spec(RulesText))
async def put_routing(request: Request, who: Admin) -> dict[str, Any]:
    return save_rules(request, rules_edit.ROUTING, await body(request, RulesText), who)


@router.post("/routing/try", openapi_extra=_spec(RulesTry))
async def post_routing_try(request: Request, _who: Viewer) -> dict[str, Any]:
    return try_rules(request, rules_edit.ROUTING, await body(request, RulesTry))


@router.get("/routing/versions/{version_id}")
def get_routing_version(request: Request, version_id: Id, _who: Viewer,
                        against: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict[str, Any]:
    return version_diff(request, rules_edit.ROUTING, version_id, against)


@router.post("/routing/versions/{version_id}/restore", openapi_extra=_spec(Restore))
async def post_routing_restore(request: Request, version_id: Id, who: Admin) -> dict[str, Any]:
    return restore_version(request, rules_edit.ROUTING, version_id, await body(request, Restore), who)


@router.get("/site-rules/{name}")
def get_site(request: Request, name: str, _who: Viewer) -> dict[str, Any]:
    return _rules_state(request, rules_edit.SITE + name)


@router.put("/site-rules/{name}", openapi_extra=_spec(RulesText))
async def put_site(request: Request, name: str, who: Admin) -> dict[str, Any]:
    return save_rules(request, rules_edit.SITE + name, await body(request, RulesText), who)


@router.post("/site-rules/{name}/try", openapi_extra=_spec(RulesTry))
async def post_site_try(request: Request, name: str, _who: Viewer) -> dict[str, Any]:
    return try_rules(request, rules_edit.SITE + name, await body(request, RulesTry))


@router.get("/site-rules/{name}/versions/{version_id}")
def get_site_version(request: Request, name: str, version_id: Id, _who: Viewer,
                     against: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict[str, Any]:
    return version_diff(request, rules_edit.SITE + name, version_id, against)


@router.post("/site-rules/{name}/versions/{version_id}/restore", openapi_extra=_spec(Restore))
async def post_site_restore(request: Request, name: str, version_id: Id, who: Admin) -> dict[str, Any]:
    return restore_version(request, rules_edit.SITE + name, version_id, await body(request, Restore), who)
