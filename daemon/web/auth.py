"""Who is asking, and may they: the console's identities, roles and CSRF check.

One source of identity, chosen by `web.auth`, never both:
- `local`: a browser signs in with a local account (`nadir user add`) and gets a session
  cookie (HttpOnly, SameSite=Strict, Secure under TLS; the database keeps only its sha256;
  it ends after `web.session_idle_minutes` unused or `web.session_max_hours`); a script
  sends HTTP Basic credentials of a local account on each request.
- `header`: a reverse proxy authenticates and names the user in `web.header_user` (and
  `admin` in `web.header_role` for an admin); only requests from `web.trusted_proxies` are
  believed, and no password is accepted.

Viewers read; admins change. Every change made with a cookie or by a proxy (what a
browser sends on its own) carries the CSRF token of the identity, in the `X-CSRF-Token`
header (htmx, scripts) or the `csrf_token` form field: the session's token, or in header
mode the `nadir_csrf` cookie's value (double submit). A request whose Origin is another
site is refused.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from daemon.store import console
from daemon.store.console import Role
from daemon.web.deps import WebDeps
from daemon.web.passwords import verify_password

log = logging.getLogger(__name__)

SESSION_COOKIE = "nadir_session"
CSRF_COOKIE = "nadir_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    via: Literal["session", "basic", "header"]
    csrf: str | None  # what an unsafe request must carry (None: basic, which a browser never sends by itself)

    @property
    def admin(self) -> bool:
        return self.role == Role.ADMIN


def deps_of(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.deps
    return deps


def remote_of(request: Request) -> str | None:
    """The client's address (and, behind a trusted proxy, whom it forwards for)."""
    host = request.client.host if request.client is not None else None
    deps = deps_of(request)
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and host in deps.settings.web.trusted_proxies:
        return f"{forwarded.split(',')[0].strip()} via {host}"
    return host


def _basic(request: Request, deps: WebDeps) -> Identity | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        name, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not sep:
        return None
    with deps.sessions() as session:
        user = console.user_by_name(session, name)
        if not verify_password(user.password_hash if user is not None else None, password) or user is None:
            return None
        return Identity(user.name, Role(user.role), "basic", None)


def _session(request: Request, deps: WebDeps) -> Identity | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    web = deps.settings.web
    with deps.sessions() as session:
        info = console.session_of(session, token, deps.clock(), timedelta(minutes=web.session_idle_minutes),
                                  timedelta(hours=web.session_max_hours))
    return None if info is None else Identity(info.user_name, info.role, "session", info.csrf_token)


def _header(request: Request, deps: WebDeps) -> Identity | None:
    web = deps.settings.web
    name = request.headers.get(web.header_user, "").strip()
    if not name:
        return None
    host = request.client.host if request.client is not None else ""
    if host not in web.trusted_proxies:
        log.warning("web: %s header from %s, which is not in web.trusted_proxies: refused", web.header_user, host)
        return None
    role = Role.ADMIN if request.headers.get(web.header_role, "").strip().lower() == Role.ADMIN else Role.VIEWER
    return Identity(name[:64], role, "header", request.cookies.get(CSRF_COOKIE) or None)


def identify(request: Request) -> Identity | None:
    """The identity of the request (cached on it), or None: anonymous."""
    if hasattr(request.state, "identity"):
        cached: Identity | None = request.state.identity
        return cached
    deps = deps_of(request)
    if deps.settings.web.auth == "header":
        found = _header(request, deps)
    else:
        found = _session(request, deps) or _basic(request, deps)
    request.state.identity = found
    return found


def require_viewer(request: Request) -> Identity:
    """Anyone signed in; anonymous: 401."""
    who = identify(request)
    if who is None:
        raise HTTPException(401, "sign in first (a session cookie, HTTP Basic credentials, or the proxy's header)",
                            headers={"WWW-Authenticate": 'Bearer realm="nadir"'})
    return who


async def require_admin(request: Request) -> Identity:
    """An admin, with the CSRF token of their identity on a change; else 401 / 403."""
    who = require_viewer(request)
    if not who.admin:
        raise HTTPException(403, f"{who.name} is a viewer: only an admin may change this")
    if request.method in UNSAFE:
        await check_csrf(request, who)
    return who


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def check_csrf(request: Request, who: Identity) -> None:
    """403 unless the request carries its identity's CSRF token (HTTP Basic needs none)."""
    if who.via == "basic":
        return
    if not _same_origin(request):
        raise HTTPException(403, "cross-site request refused (its Origin is another site)")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not who.csrf or not sent or not hmac.compare_digest(sent, who.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def new_csrf() -> str:
    return secrets.token_urlsafe(32)
