"""Accounts: `nadir user add|ls|remove` (password on stdin), sessions that expire when idle,
and header mode (`web.auth: header`) believing only the trusted proxy and no password."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from web.conftest import NOW, Console
from web.test_api import basic

REPO = Path(__file__).resolve().parents[2]


def test_user_command(tmp_path: Path) -> None:
    env = {"NADIR_STORE__DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}

    def nadir(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "daemon.cli", "user", *args], input=stdin, text=True,
                              capture_output=True, cwd=REPO, env=env, check=False)

    short = nadir("add", "ops", "--role", "viewer", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert nadir("add", "ops", stdin="long-enough-1\n").returncode == 2  # no --role
    assert nadir("add", "-bad", "--role", "admin", stdin="long-enough-1\n").returncode == 2
    assert nadir("add", "ops", "--role", "viewer", stdin="long-enough-1\n").stdout == "user ops added (viewer)\n"
    assert nadir("add", "ops", "--role", "admin", stdin="long-enough-2\n").stdout == "user ops updated (admin)\n"
    assert nadir("ls").stdout.split() == ["ops", "admin"]
    assert nadir("remove", "ghost").returncode == 1
    assert nadir("remove", "ops").returncode == 0 and nadir("ls").stdout == ""


def test_session_ends_when_idle(console: Console) -> None:
    console.login("ada")
    assert console.client.get("/api/studies").status_code == 200
    idle = console.settings.web.session_idle_minutes
    console.deps.clock = lambda: NOW + timedelta(minutes=idle + 1)
    assert console.client.get("/api/studies").status_code == 401


def test_header_mode_trusts_only_the_proxy(console: Console) -> None:
    console.deps.settings = console.settings.model_copy(update={"web": console.settings.web.model_copy(
        update={"auth": "header", "trusted_proxies": ["testclient"]})})
    as_admin = {"X-Remote-User": "proxy-ada", "X-Remote-Role": "admin"}
    assert console.client.get("/api/studies", headers=as_admin).status_code == 200
    # a change needs the CSRF cookie's value, which a page sets
    assert console.client.post("/api/jobs/1/retry", headers=as_admin).status_code == 403
    page = console.client.get("/", headers=as_admin)
    token = console.client.cookies["nadir_csrf"]
    assert token in page.text
    r = console.client.post("/api/jobs/1/retry", headers={**as_admin, "X-CSRF-Token": token})
    assert r.status_code == 404  # allowed through: there is no job 1
    viewer = {"X-Remote-User": "proxy-vic"}
    assert console.client.post("/api/jobs/1/retry", headers={**viewer, "X-CSRF-Token": token}).status_code == 403
    assert console.client.get("/api/studies", headers=basic("ada")).status_code == 401  # no password in header mode
    console.deps.settings = console.settings.model_copy(update={"web": console.settings.web.model_copy(
        update={"auth": "header", "trusted_proxies": ["10.0.0.1"]})})
    assert console.client.get("/api/studies", headers=as_admin).status_code == 401
