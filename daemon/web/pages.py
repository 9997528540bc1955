"""The console's pages: server-rendered (Jinja2), live parts refreshed by htmx.

A page shows what the API's views return (daemon.web.views, daemon.web.api); its buttons
call the API itself (`hx-post` to /api/..., the CSRF token in the `X-CSRF-Token` header
that the page's body sets for htmx), and its live parts reload on a timer and whenever the
API answers a change (the `nadir-changed` event). The route editor's "check / try" and
"save" render the API functions' answers as HTML fragments.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from daemon import __version__, resources
from daemon.store import console
from daemon.web import api, rules_edit, views
from daemon.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Identity,
    check_csrf,
    deps_of,
    identify,
    new_csrf,
    remote_of,
    require_admin,
    require_viewer,
)
from daemon.web.passwords import verify_password

TEMPLATES_DIR = resources.WEB_TEMPLATES_DIR
STATIC_DIR = resources.WEB_STATIC_DIR
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
Viewer = Annotated[Identity, Depends(require_viewer)]
Admin = Annotated[Identity, Depends(require_admin)]

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    return deps_of(request).settings.web.tls is not None or request.url.scheme == "https"


def render(request: Request, name: str, who: Identity | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A page; in header mode it also sets the CSRF cookie the page's token comes from."""
    csrf = who.csrf if who is not None else None
    fresh = None
    if who is not None and who.via == "header" and not csrf:
        csrf = fresh = new_csrf()
    response = templates.TemplateResponse(request, name, {"who": who, "csrf": csrf or "", "version": __version__,
                                                          **context}, status_code=status)
    if fresh is not None:
        response.set_cookie(CSRF_COOKIE, fresh, httponly=True, samesite="strict", secure=_secure(request))
    return response


def error_page(request: Request, status: int, detail: Any) -> HTMLResponse:
    return render(request, "error.html", identify(request), status=status, status_code=status, detail=detail)


# --- signing in and out --------------------------------------------------------------


def _next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, next: str | None = None, error: str | None = None) -> HTMLResponse:
    if deps_of(request).settings.web.auth == "header":
        raise HTTPException(401, "this console is signed in by the reverse proxy (web.auth: header)")
    token = request.cookies.get(CSRF_COOKIE) or new_csrf()
    response = render(request, "login.html", None, next=_next(next), error=error, login_csrf=token)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=1024)],
          csrf_token: Annotated[str, Form(max_length=128)], next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    deps = deps_of(request)
    if deps.settings.web.auth == "header":
        raise HTTPException(401, "this console is signed in by the reverse proxy (web.auth: header)")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token: reload the sign-in page")
    now = deps.clock()
    with deps.sessions() as session:
        user = console.user_by_name(session, username)
        if user is None or not verify_password(user.password_hash, password):
            console.audit(session, now, username[:64], "login.refused", "console", None, remote_of(request))
            session.commit()
            return RedirectResponse(f"/login?error=1&next={quote(_next(next))}", status_code=303)
        web = deps.settings.web
        console.purge_sessions(session, now, timedelta(minutes=web.session_idle_minutes),
                               timedelta(hours=web.session_max_hours))
        token = console.open_session(session, user.name, now)
        console.audit(session, now, user.name, "login", "console", None, remote_of(request))
        session.commit()
    response = RedirectResponse(_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                        max_age=int(deps.settings.web.session_max_hours * 3600))
    return response


@router.post("/logout")
async def logout(request: Request, who: Viewer) -> Response:
    await check_csrf(request, who)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with deps_of(request).sessions() as session:
            console.close_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- pages ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, who: Viewer) -> HTMLResponse:
    return render(request, "overview.html", who, **_overview(request))


@router.get("/parts/overview", response_class=HTMLResponse)
def overview_part(request: Request, who: Viewer) -> HTMLResponse:
    return render(request, "overview_part.html", who, **_overview(request))


def _overview(request: Request) -> dict[str, Any]:
    deps = deps_of(request)
    with deps.sessions() as session:
        return {"o": views.overview(session, deps.clock())}


def _study(request: Request, uid: str) -> dict[str, Any]:
    found = api.get_study(request, uid, require_viewer(request))
    return {"s": found, "uid": uid}


@router.get("/studies/{uid}", response_class=HTMLResponse)
def study_page(request: Request, uid: str, who: Viewer) -> HTMLResponse:
    return render(request, "study.html", who, **_study(request, uid))


@router.get("/parts/studies/{uid}", response_class=HTMLResponse)
def study_part(request: Request, uid: str, who: Viewer) -> HTMLResponse:
    return render(request, "study_part.html", who, **_study(request, uid))


def _editor(request: Request, kind: str, who: Identity, title: str) -> HTMLResponse:
    state = api._rules_state(request, kind)
    deps = deps_of(request)
    with deps.sessions() as session:
        studies = views.studies(session, limit=50)
    base = "/api/routing" if kind == rules_edit.ROUTING else f"/api/site-rules/{kind[len(rules_edit.SITE):]}"
    part = "/parts/routes" if kind == rules_edit.ROUTING else f"/parts/site/{kind[len(rules_edit.SITE):]}"
    return render(request, "editor.html", who, state=state, studies=studies, title=title, api_base=base,
                  part_base=part, routing=kind == rules_edit.ROUTING)


@router.get("/routes", response_class=HTMLResponse)
def routes_page(request: Request, who: Viewer) -> HTMLResponse:
    return _editor(request, rules_edit.ROUTING, who, "Routes")


@router.get("/site/{name}", response_class=HTMLResponse)
def site_page(request: Request, name: str, who: Viewer) -> HTMLResponse:
    return _editor(request, rules_edit.SITE + name, who, f"Site override: {name}.yaml")


def _kind(name: str | None) -> str:
    return rules_edit.ROUTING if name is None else rules_edit.SITE + name


async def _try(request: Request, kind: str, who: Identity) -> HTMLResponse:
    data = await api.body(request, api.RulesTry)
    return render(request, "try_part.html", who, result=api.try_rules(request, kind, data))


async def _save(request: Request, kind: str, who: Identity) -> HTMLResponse:
    data = await api.body(request, api.RulesText)
    try:
        saved = api.save_rules(request, kind, data, who)
    except HTTPException as exc:
        if exc.status_code not in (409, 422):
            raise
        errors = exc.detail if isinstance(exc.detail, list) else [str(exc.detail)]
        return render(request, "save_part.html", who, saved=None, errors=errors)
    response = render(request, "save_part.html", who, saved=saved, errors=[])
    response.headers["HX-Trigger"] = api.CHANGED
    return response


@router.post("/parts/routes/try", response_class=HTMLResponse)
async def routes_try(request: Request, who: Viewer) -> HTMLResponse:
    return await _try(request, rules_edit.ROUTING, who)


@router.post("/parts/routes/save", response_class=HTMLResponse)
async def routes_save(request: Request, who: Admin) -> HTMLResponse:
    return await _save(request, rules_edit.ROUTING, who)


@router.post("/parts/site/{name}/try", response_class=HTMLResponse)
async def site_try(request: Request, name: str, who: Viewer) -> HTMLResponse:
    return await _try(request, _kind(name), who)


@router.post("/parts/site/{name}/save", response_class=HTMLResponse)
async def site_save(request: Request, name: str, who: Admin) -> HTMLResponse:
    return await _save(request, _kind(name), who)


def _version(request: Request, kind: str, version_id: int, who: Identity) -> HTMLResponse:
    found = api.version_diff(request, kind, version_id, None)
    base = "/api/routing" if kind == rules_edit.ROUTING else f"/api/site-rules/{kind[len(rules_edit.SITE):]}"
    back = "/routes" if kind == rules_edit.ROUTING else f"/site/{kind[len(rules_edit.SITE):]}"
    return render(request, "version.html", who, v=found, api_base=base, back=back)


@router.get("/routes/versions/{version_id}", response_class=HTMLResponse)
def routes_version(request: Request, version_id: int, who: Viewer) -> HTMLResponse:
    return _version(request, rules_edit.ROUTING, version_id, who)


@router.get("/site/{name}/versions/{version_id}", response_class=HTMLResponse)
def site_version(request: Request, name: str, version_id: int, who: Viewer) -> HTMLResponse:
    return _version(request, _kind(name), version_id, who)


@router.get("/rules", response_class=HTMLResponse)
def rules_page(request: Request, who: Viewer) -> HTMLResponse:
    site = deps_of(request).settings.criteria.site_dir
    return render(request, "rules.html", who, files=rules_edit.criteria_files(), site_dir=site,
                  site_names=rules_edit.site_names())


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, who: Viewer) -> HTMLResponse:
    return render(request, "models.html", who, models=views.models())


@router.get("/destinations", response_class=HTMLResponse)
def destinations_page(request: Request, who: Viewer) -> HTMLResponse:
    deps = deps_of(request)
    with deps.sessions() as session:
        found = views.destinations(session, deps.settings)
    return render(request, "destinations.html", who, destinations=found)


@router.post("/parts/destinations/{name}/echo", response_class=HTMLResponse)
def echo_part(request: Request, name: str, who: Admin) -> HTMLResponse:
    return render(request, "echo_part.html", who, r=api.echo_destination(request, name, who))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, who: Viewer) -> HTMLResponse:
    with deps_of(request).sessions() as session:
        entries = console.audit_entries(session, 500)
    return render(request, "audit.html", who, entries=entries)
