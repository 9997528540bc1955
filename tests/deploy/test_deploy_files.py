"""The deployment files are usable as shipped: example settings validate; compose, image and
units are coherent with each other and with the settings; no password is committed."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from daemon.config import load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
SERVICES = {"orthanc", "postgres", "rabbitmq", "nadir", "worker-cpu", "worker-gpu"}
NADIR_SERVICES = ("nadir", "worker-cpu", "worker-gpu")
WORKERS = {"worker-cpu": "default", "worker-gpu": "gpu"}  # service -> its queue
# what the tests give compose's required variables (never real passwords)
TEST_VARIABLES = {"NADIR_DB_PASSWORD": "db-test-value", "NADIR_BROKER_PASSWORD": "broker-test-value",
                  "ORTHANC_PASSWORD": "orthanc-test-value"}
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN", re.I)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<password>\$\{[^}]*\}|[^\s/@]+)@", re.I)
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}")


@pytest.fixture
def no_nadir_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in [k for k in os.environ if k.startswith("NADIR_")]:
        monkeypatch.delenv(key)
    return monkeypatch


# --- example settings --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nadir.yaml", "nadir-postgres.yaml", "nadir-celery.yaml"])
def test_example_settings_validate(name: str, no_nadir_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(DEPLOY / name)
    assert "pacs" in settings.destinations
    if name == "nadir.yaml":
        assert settings.store.effective_database_url.startswith("sqlite:///")
        assert settings.jobs.executor == "local"
    else:
        assert settings.store.effective_database_url.startswith("postgresql+psycopg://")
    if name == "nadir-celery.yaml":
        # the distributed example: state in PostgreSQL, jobs on RabbitMQ, no password in the file
        assert settings.jobs.executor == "celery"
        assert urlsplit(settings.jobs.broker_url).scheme == "amqp"
        assert urlsplit(settings.store.effective_database_url).password is None
        assert urlsplit(settings.jobs.broker_url).password is None
        assert settings.store.data_dir.is_absolute()


# --- compose -------------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(Exception):
    pass


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of the forms compose.yaml uses: $$, ${V}, ${V:-default}, ${V:?error}."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        value = variables.get(m.group("name"), "")
        if value:
            return value
        if m.group("op") == ":?":
            raise MissingVariable(f"{m.group('name')}: {m.group('arg')}")
        return m.group("arg") or ""

    return _INTERPOLATION.sub(one, text)


def _map_strings(node: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {k: _map_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def _raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))  # resolves anchors and <<
    assert isinstance(data, dict)
    return data


def _compose(variables: dict[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml as compose sees it, with the test values for its required variables."""
    given = TEST_VARIABLES if variables is None else variables
    data = _map_strings(_raw_compose(), lambda s: interpolate(s, given))
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each mount, short or long syntax."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        else:
            out.append((v["source"], v["target"], bool(v.get("read_only"))))
    return out


def _option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def test_compose_has_every_service_each_with_a_health_check() -> None:
    services = _compose()["services"]
    assert set(services) >= SERVICES
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name}: no healthcheck"
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_compose_node_and_workers_share_one_image_and_the_celery_executor() -> None:
    services = _compose()["services"]
    node = services["nadir"]
    assert node["command"][0] == "serve"
    assert any(str(p).split(":")[-1] == "11112" for p in node["ports"]), "the DICOM port is published"
    for name in NADIR_SERVICES:
        s = services[name]
        assert (s["image"], s["build"]) == (node["image"], node["build"]), f"{name}: one image"
        assert s["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (COMPOSE_FILE.parent / s["build"]["context"]).resolve() == REPO
        assert _environment(s)["NADIR_JOBS__EXECUTOR"] == "celery"
        for dep in ("postgres", "rabbitmq"):
            assert s["depends_on"][dep]["condition"] == "service_healthy", f"{name} -> {dep}"
    for name, queue in WORKERS.items():
        command = [str(c) for c in services[name]["command"]]
        assert command[0] == "worker"
        assert _option(command, "--queues") == queue
        assert int(_option(command, "--concurrency")) >= 1
        assert _option(command, "--config") == _option(node["command"], "--config")


def test_compose_health_checks_of_node_and_workers_run() -> None:
    """The Python health checks compile; the node's dials its DICOM port, a worker's pings
    its own Celery processes through the broker of its settings file (no URL in the check)."""
    services = _compose()["services"]
    node_check = [str(c) for c in services["nadir"]["healthcheck"]["test"]]
    env = _environment(services["nadir"])
    # a C-ECHO to the node's own AE title and port (dcmtk's echoscu is in the image)
    assert node_check[:2] == ["CMD", "echoscu"]
    assert _option(node_check, "-aec") == env["NADIR_NODE__AE_TITLE"]
    assert node_check[-2:] == ["127.0.0.1", env["NADIR_NODE__PORT"]]
    for name in WORKERS:
        check = services[name]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"], name
        compile(check[3], f"{name} healthcheck", "exec")
        config = _option([str(c) for c in services[name]["command"]], "--config")
        assert f"load_settings(Path('{config}'))" in check[3] and "make_app(" in check[3]
        assert "control.ping(" in check[3] and "socket.gethostname()" in check[3]
        assert "://" not in check[3], f"{name}: no broker URL (with its password) on a command line"


def test_compose_gpu_worker_reserves_an_nvidia_gpu() -> None:
    services = _compose()["services"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    # a profile: `up` on a machine without a GPU starts everything else
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    for name in ("nadir", "worker-cpu"):
        assert "deploy" not in services[name], f"{name} reserves no device"
        assert "profiles" not in services[name], f"{name} starts by default"


def test_compose_restarts_every_service() -> None:
    for name, service in _compose()["services"].items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name


def test_compose_mounts_the_rules_folder_the_settings_name() -> None:
    """The repository's rules/ (a folder: an editor's replaced file is seen) at the folder of
    the settings' routing.rules_file, read-only, in the node and every worker: edit, reload."""
    compose = _compose()
    for name in NADIR_SERVICES:
        service = compose["services"][name]
        config = _option([str(c) for c in service["command"]], "--config")
        (source,) = [src for src, dst, _ in _mounts(service) if dst == config]
        settings = load_settings(COMPOSE_FILE.parent / source)
        rules_dir = str(settings.routing.rules_file.parent)
        mounts = [(src, ro) for src, dst, ro in _mounts(service) if dst == rules_dir]
        assert len(mounts) == 1, f"{name}: nothing mounted at {rules_dir}"
        src, ro = mounts[0]
        assert (COMPOSE_FILE.parent / src).resolve() == REPO / "rules" and ro, name


def test_compose_publishes_orthanc_only_behind_a_login() -> None:
    compose = _compose()
    orthanc = compose["services"]["orthanc"]
    env = _environment(orthanc)
    assert env["ORTHANC__AUTHENTICATION_ENABLED"] == "true"
    users = yaml.safe_load(env["ORTHANC__REGISTERED_USERS"])
    assert users and all(users.values()), "a user with a password"
    raw = _environment(_raw_compose()["services"]["orthanc"])["ORTHANC__REGISTERED_USERS"]
    assert REQUIRED_VARIABLE.search(raw), "the password is a required variable, never committed"
    ports = [str(p) for p in orthanc.get("ports") or []]
    assert ports == ["127.0.0.1:8042:8042"], "the web port on loopback only; DICOM not published"
    with pytest.raises(MissingVariable, match="ORTHANC_PASSWORD"):
        _compose({k: v for k, v in TEST_VARIABLES.items() if k != "ORTHANC_PASSWORD"})


def test_compose_publishes_the_console_on_the_hosts_loopback_as_documented(no_nadir_env: pytest.MonkeyPatch) -> None:
    """The console listens on the container's interfaces (127.0.0.1 there is the container's
    own) and is published on the host's loopback only, for the proxy of deploy/console-proxy.md."""
    node = _compose()["services"]["nadir"]
    env = _environment(node)
    for key, value in env.items():
        no_nadir_env.setenv(key, value)
    config = _option([str(c) for c in node["command"]], "--config")
    (source,) = [src for src, dst, _ in _mounts(node) if dst == config]
    web = load_settings(COMPOSE_FILE.parent / source).web
    assert (web.enabled, web.host, web.auth) == (True, "0.0.0.0", "local")
    published = [str(p) for p in node["ports"] if str(p).endswith(f":{web.port}")]
    assert published == [f"127.0.0.1:8080:{web.port}"], "on the host's loopback only, never every interface"
    assert _compose({**TEST_VARIABLES, "NADIR_WEB_PORT": "9443"})["services"]["nadir"]["ports"][-1] == (
        f"127.0.0.1:9443:{web.port}")
    for name, service in _compose()["services"].items():  # no other way in
        assert name == "nadir" or not any(str(p).endswith(f":{web.port}") for p in service.get("ports") or [])
    doc = (DEPLOY / "console-proxy.md").read_text(encoding="utf-8")
    assert "NADIR_WEB__HOST=0.0.0.0" in doc and '"127.0.0.1:${NADIR_WEB_PORT:-8080}:8080"' in doc
    assert "proxy_pass http://127.0.0.1:8080;" in doc
    assert "NADIR_WEB_PORT" in (DEPLOY / ".env.example").read_text(encoding="utf-8")


def test_compose_spool_is_one_named_volume_at_the_data_dir_everywhere() -> None:
    compose = _compose()
    named = set(compose.get("volumes") or {})
    spools = set()
    for name in NADIR_SERVICES:
        service = compose["services"][name]
        data_dir = _environment(service)["NADIR_STORE__DATA_DIR"]
        mounts = [(src, dst, ro) for src, dst, ro in _mounts(service) if dst == data_dir]
        assert len(mounts) == 1, f"{name}: the data dir {data_dir} is one mount"
        src, dst, ro = mounts[0]
        assert src in named and not ro, f"{name}: {src} is a writable named volume"
        spools.add((src, dst))
    assert len(spools) == 1, f"the node and the workers mount the same spool at the same path: {spools}"


def test_compose_commits_no_password() -> None:
    raw = _raw_compose()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    urls = list(URL_WITH_PASSWORD.finditer(text))
    assert len(urls) >= 2, "the database and broker URLs carry their password"
    for m in urls:
        assert REQUIRED_VARIABLE.fullmatch(m.group("password")), f"literal password in {m.group(0)}"
    for name, service in raw["services"].items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VARIABLE.fullmatch(value), f"{name}: {key} is not a required variable"
    # without the variables compose refuses to start, naming the one that is missing
    with pytest.raises(MissingVariable, match="NADIR_DB_PASSWORD|NADIR_BROKER_PASSWORD"):
        _compose({})
    # every variable is documented in .env.example, whose secrets are left empty
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    for variable in set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)):
        assert variable in example, f"{variable} is not in deploy/.env.example"
    for line in example.splitlines():
        key, _, value = line.partition("=")
        if not line.startswith("#") and SECRET_NAME.search(key):
            assert value.strip() == "", f"deploy/.env.example: {key} has a value"
    # the filled-in copy is neither committed nor sent into the image
    assert ".env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert _docker_ignored("deploy/.env")
    # the only $ left are interpolations compose resolves (a stray one would be a literal)
    assert "$" not in _INTERPOLATION.sub("", text)


@pytest.mark.parametrize("name", NADIR_SERVICES)
def test_compose_environment_is_valid_settings(name: str, no_nadir_env: pytest.MonkeyPatch) -> None:
    """Each process's settings (the mounted file + its NADIR_* variables) point at the other services."""
    compose = _compose()
    service = compose["services"][name]
    env = _environment(service)
    for key, value in env.items():
        no_nadir_env.setenv(key, value)
    config = _option([str(c) for c in service["command"]], "--config")
    (source,) = [src for src, dst, _ in _mounts(service) if dst == config]
    settings = load_settings(COMPOSE_FILE.parent / source)

    db = urlsplit(settings.store.effective_database_url)
    assert (db.scheme, db.hostname, db.password) == ("postgresql+psycopg", "postgres", "db-test-value")
    assert db.username == compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    broker = urlsplit(settings.jobs.broker_url)
    rabbitmq = compose["services"]["rabbitmq"]["environment"]
    assert (broker.scheme, broker.hostname, broker.password) == ("amqp", "rabbitmq", "broker-test-value")
    assert broker.username == rabbitmq["RABBITMQ_DEFAULT_USER"]
    assert settings.jobs.executor == "celery"
    assert str(settings.store.data_dir) == env["NADIR_STORE__DATA_DIR"]

    orthanc = compose["services"]["orthanc"]["environment"]
    pacs = settings.destinations["pacs"]
    assert (pacs.host, pacs.port, pacs.ae_title) == (
        "orthanc", int(orthanc["ORTHANC__DICOM_PORT"]), orthanc["ORTHANC__DICOM_AET"])
    if name == "nadir":
        modality = yaml.safe_load(orthanc["ORTHANC__DICOM_MODALITIES"])["nadir"]
        assert (modality["Host"], modality["Port"], modality["AET"]) == (
            "nadir", settings.node.port, settings.node.ae_title)
        # never "any caller": the compose's Orthanc and the health check only, by default
        assert settings.node.allowed_calling_aes == [orthanc["ORTHANC__DICOM_AET"], "HEALTHCHECK"]
        check = [str(c) for c in compose["services"]["nadir"]["healthcheck"]["test"]]
        assert check[check.index("-aet") + 1] in settings.node.allowed_calling_aes


def test_docker_compose_config_validates() -> None:
    if shutil.which("docker") is None:
        pytest.skip("Docker is not available: no `docker` client on PATH; compose.yaml was checked as YAML only")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        pytest.skip("Docker is not available: `docker info` failed (no reachable Docker daemon); "
                    "compose.yaml was checked as YAML only")
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    if version.returncode != 0:
        pytest.skip("Docker Compose v2 is not available (`docker compose version` failed); "
                    "compose.yaml was checked as YAML only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NADIR_")}
    # --env-file /dev/null: a deploy/.env someone filled in must not change the outcome
    command = ["docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", os.devnull, "config", "--quiet"]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**env, **TEST_VARIABLES})
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert missing.returncode != 0 and "set NADIR_" in missing.stderr, missing.stderr


# --- image ---------------------------------------------------------------------------------


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _docker_ignored(path: str) -> bool:
    """Whether the build context leaves `path` out (.dockerignore's patterns, without `!`)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
               or (pattern.startswith("**/") and fnmatch.fnmatch(prefix.split("/")[-1], pattern[3:]))
               for pattern in _dockerignore() for prefix in prefixes)


def test_dockerfile_installs_the_package_and_runs_as_nadir() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    assert "|| true" not in text, "no failure is ignored"
    # a package install (its data inside it), not an editable checkout
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in text and " -e ." not in text
    assert "--no-build-isolation -r /tmp/radiomics.txt" in text and "['optional-dependencies']['radiomics']" in text
    assert "['optional-dependencies']['gpu']" in text, "CUDA=1 takes onnxruntime-gpu from the gpu extra"
    assert "nadir check-config" in text, "the build checks the installed package's own default"
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users == ["nadir"], "the final stage runs as nadir, not root"
    assert re.search(r"useradd --system --uid \"\$NADIR_UID\"", text)
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (.+)$", text, re.M)
    assert health and health.group(1).startswith("echoscu ") and "-aec" in health.group(1)
    assert "dcmtk" in text, "echoscu is installed"
    assert (REPO / ".dockerignore").is_file(), "the build context's ignore file, at its root"
    for pattern in ("**/.git", "**/.venv", "data", "deploy", "tests"):
        assert pattern in _dockerignore(), pattern
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in src.split():
            assert (REPO / path).exists(), f"COPY {path}: not in the repository"
            assert not _docker_ignored(path), f"COPY {path}: excluded by .dockerignore"
    # the image keeps no source tree beside the package: the build stage's /src stays behind
    final = text.split("\nFROM ")[-1]
    assert "/src" not in final and "COPY --from=build /opt/nadir/.venv /opt/nadir/.venv" in final


def _docker_available() -> str | None:
    """Why Docker cannot be used here, or None."""
    if shutil.which("docker") is None:
        return "no `docker` client on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "`docker info` failed (no reachable Docker daemon)"
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60).returncode != 0:
        return "Docker Compose v2 is not available (`docker compose version` failed)"
    return None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_image_builds_and_the_compose_stack_starts_healthy() -> None:
    """The image builds (CUDA=0: no GPU libraries to download) and the stack, without the
    GPU profile, comes up with every health check passing; the node answers a C-ECHO on
    its published port; then everything is removed."""
    why = _docker_available()
    if why:
        pytest.skip(f"Docker is not available: {why}; the image and the stack were checked as text only")
    from daemon.demo.peers import free_port

    project = f"nadir-test-{os.getpid()}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NADIR_")}
    env.update(TEST_VARIABLES, NADIR_DICOM_PORT=str(port))
    build = subprocess.run(["docker", "build", "--build-arg", "CUDA=0", "-f", str(DEPLOY / "Dockerfile"),
                            "-t", "nadir:local", str(REPO)], capture_output=True, text=True, timeout=2400)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    compose = ["docker", "compose", "-p", project, "-f", str(COMPOSE_FILE), "--env-file", os.devnull]
    try:
        up = subprocess.run([*compose, "up", "-d", "--wait", "--wait-timeout", "600"],
                            capture_output=True, text=True, timeout=900, env=env)
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        echo = subprocess.run(["docker", "run", "--rm", "--network", "host", "--entrypoint", "echoscu", "nadir:local",
                               "-aec", "NADIR", "127.0.0.1", str(port)], capture_output=True, text=True, timeout=120)
        assert echo.returncode == 0, echo.stdout + echo.stderr
    finally:
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], capture_output=True, timeout=300, env=env)


# --- systemd units -------------------------------------------------------------------------


def _unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and settings (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{name}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{name}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_serves_the_checked_config() -> None:
    service = _unit("nadir.service")["Service"]
    assert service["ExecStart"] == ["/opt/nadir/.venv/bin/nadir serve --config /etc/nadir/nadir.yaml"]
    assert "/opt/nadir/.venv/bin/nadir check-config /etc/nadir/nadir.yaml >/dev/null" in service["ExecStartPre"][0]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


@pytest.mark.parametrize("name", ["nadir.service", "nadir-worker@.service"])
def test_units_stop_on_a_configuration_error_and_log_to_the_journal(name: str) -> None:
    """A configuration error exits with 2 (below): not restarted every 5 s forever. The
    logs go where the unit says: stderr into the journal, no log folder claimed unused."""
    unit = _unit(name)
    service = unit["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]
    assert service["StandardError"] == ["journal"] and service["StandardOutput"] == ["journal"]
    assert "LogsDirectory" not in service
    assert all("/var/log" not in path for value in service["ReadWritePaths"] for path in value.split())
    header = (DEPLOY / name).read_text(encoding="utf-8").split("[Unit]")[0]
    assert "journalctl" in header, "the header says where the logs are"


def test_a_configuration_error_exits_with_the_status_the_units_do_not_restart(tmp_path: Path,
                                                                              no_nadir_env: pytest.MonkeyPatch) -> None:
    from daemon.cli import main

    bad = tmp_path / "nadir.yaml"
    bad.write_text("node:\n  port: seventy\n")
    for command in ("serve", "worker"):
        assert main([command, "--config", str(bad)]) == 2, command
    for name in ("nadir.service", "nadir-worker@.service"):
        assert _unit(name)["Service"]["RestartPreventExitStatus"] == ["2"]


def test_worker_unit_runs_a_queue_with_the_node_units_hardening() -> None:
    node, worker = _unit("nadir.service"), _unit("nadir-worker@.service")
    service = worker["Service"]
    (start,) = service["ExecStart"]
    assert start.startswith("/opt/nadir/.venv/bin/nadir worker --config /etc/nadir/nadir.yaml ")
    assert "--queues ${WORKER_QUEUES}" in start and "--concurrency ${WORKER_CONCURRENCY}" in start
    assert "WORKER_QUEUES=%i" in service["Environment"], "the instance name is its queue by default"
    assert "-/etc/nadir/worker-%i.env" in service["EnvironmentFile"]
    for key in ("User", "Group", "WorkingDirectory", "NoNewPrivileges", "ProtectSystem", "ProtectHome",
                "PrivateTmp", "LimitNOFILE", "KillSignal", "KillMode", "Restart"):
        assert service[key] == node["Service"][key], key
    assert "/var/lib/nadir" in service["ReadWritePaths"][0].split()
    # the shared spool is a mount the worker waits for, never a StateDirectory systemd chowns
    assert worker["Unit"]["RequiresMountsFor"] == ["/var/lib/nadir"]
    assert "StateDirectory" not in service and "PrivateDevices" not in service
    assert worker["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", ["nadir.service", "nadir-worker@.service"])
def test_units_keep_secrets_off_command_lines_and_the_journal(name: str) -> None:
    service = _unit(name)["Service"]
    assert "-/etc/nadir/nadir.env" in service["EnvironmentFile"], "secrets come from a root-only file"
    for key, values in service.items():
        for value in values:
            assert not URL_WITH_PASSWORD.search(value), f"{name}: {key}= holds a password"
            if key == "Environment":
                assert not SECRET_NAME.search(value) and "://" not in value, f"{name}: {value}"
            if key.startswith("Exec"):
                assert "://" not in value, f"{name}: a URL on a command line: {value}"
                if "check-config" in value:
                    # it lists the effective settings, database URL included: not into the journal
                    assert value.rstrip("'\"").endswith(">/dev/null"), f"{name}: {value}"


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not available: the units were checked by parsing only")
    # the same units with the virtualenv's interpreter standing in for the not-installed nadir
    for name in ("nadir.service", "nadir-worker@.service"):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/nadir/.venv/bin/nadir", sys.executable))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "nadir.service"),
         str(tmp_path / "nadir-worker@default.service"), str(tmp_path / "nadir-worker@gpu0.service")],
        capture_output=True, text=True, timeout=120,
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "nadir" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
