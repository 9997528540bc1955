"""The console as a service of `nadir serve`: uvicorn serving daemon.web.app in a thread.

The socket is bound in `start()`, so a port already taken stops the node at start with
the reason (as the DICOM port does), never later in a thread. `web.tls` serves HTTPS
directly; otherwise put a reverse proxy in front (deploy/README.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import uvicorn
from sqlalchemy import text

from daemon.routing_rules import RulesHolder
from daemon.runtime.context import Context
from daemon.web.app import create_app
from daemon.web.deps import Check, WebDeps

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; OSError naming the address when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"the web console cannot listen on {host}:{port} (web.host, web.port): "
                                 f"{exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


@dataclass
class Listening:
    """Whether the DICOM listener is up (the receiving service)."""

    service: object

    def __call__(self) -> str | None:
        return None if getattr(self.service, "listening", False) else "the DICOM listener is not listening"


def node_checks(ctx: Context, receiving: object) -> Mapping[str, Check]:
    """The readiness checks of a node: database, spool, scheduler, listener."""

    def database() -> str | None:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None

    def spool() -> str | None:
        root = ctx.spool.root
        if not root.is_dir():
            return f"{root} is not a folder"
        if not os.access(root, os.W_OK):
            return f"{root} is not writable"
        return None

    def scheduler() -> str | None:
        return None if ctx.scheduler.running else "the scheduler is not running"

    return {"database": database, "spool": spool, "scheduler": scheduler, "listener": Listening(receiving)}


class WebService:
    name = "web"

    def __init__(self, ctx: Context, holder: RulesHolder | None, checks: Mapping[str, Check]) -> None:
        self.ctx = ctx
        self.deps = WebDeps(ctx.settings, ctx.sessions, ctx.spool, holder, checks)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        web = self.ctx.settings.web
        sock = bind(web.host, web.port)
        tls = {} if web.tls is None else {"ssl_certfile": str(web.tls.certificate),
                                          "ssl_keyfile": str(web.tls.private_key)}
        config = uvicorn.Config(create_app(self.deps), log_config=None, access_log=False, lifespan="off",
                                server_header=False, timeout_graceful_shutdown=5, **tls)  # type: ignore[arg-type]
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web", daemon=True)
        self._thread.start()
        scheme = "https" if web.tls is not None else "http"
        log.info("web console on %s://%s:%d (auth: %s)", scheme, web.host, web.port, web.auth)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None
