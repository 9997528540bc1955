"""The console's ASGI application: operations endpoints, the JSON API, the pages.

| path | who | what |
| --- | --- | --- |
| GET /health | anyone | 200 while the process serves |
| GET /ready | anyone | 200 when database, spool, scheduler and listener are up; else 503 naming each failing part |
| GET /metrics | anyone (scraped on the loopback or through the proxy) | Prometheus text (daemon.web.metrics) |
| /api/... | viewer reads, admin changes | JSON (daemon.web.api), OpenAPI at /api/openapi.json, docs at /api/docs |
| /, /studies/..., /routes, ... | viewer reads, admin changes | the pages (daemon.web.pages) |
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from daemon import __version__
from daemon.web import api, metrics, pages
from daemon.web.deps import WebDeps

log = logging.getLogger(__name__)


def ready_problems(deps: WebDeps) -> dict[str, str]:
    """Part -> what is wrong, for each readiness check that fails (a check that raises fails)."""
    problems = {}
    for part, check in deps.checks.items():
        try:
            problem = check()
        except Exception as exc:  # a check that cannot run is a failing part, said as such
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            problems[part] = problem
    return problems


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def create_app(deps: WebDeps) -> FastAPI:
    app = FastAPI(title="Nadir console API", version=__version__, openapi_url="/api/openapi.json",
                  docs_url="/api/docs", redoc_url=None)
    app.state.deps = deps
    registry = metrics.registry(deps.sessions)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    def ready() -> JSONResponse:
        problems = ready_problems(deps)
        if problems:
            return JSONResponse({"status": "not ready", "failing": problems}, status_code=503)
        return JSONResponse({"status": "ready", "parts": sorted(deps.checks)})

    @app.get("/metrics", include_in_schema=False)
    def get_metrics() -> Response:
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401 and _wants_html(request) and request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if _wants_html(request) and not request.headers.get("hx-request"):
            return pages.error_page(request, exc.status_code, exc.detail)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("web: %s %s failed", request.method, request.url.path)
        return PlainTextResponse("internal error (logged)", status_code=500)

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    return app


def openapi(deps: WebDeps) -> dict[str, Any]:
    return create_app(deps).openapi()
