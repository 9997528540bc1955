"""Real peers on loopback for the demo, the integration tests and the benchmarks: an
Orthanc (the PACS, with its web explorer), a `nadir serve` process and dcmtk's storescu
as the modality (private PostgreSQL and RabbitMQ servers: daemon.demo.private_servers).
Each process runs in its own process group and is stopped (and its group killed) by
`stop()`, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from daemon import resources

REPO = resources.SOURCE_ROOT  # the checkout (tests/jobs/harness.py runs its .venv)
ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
T = TypeVar("T")


# Ports for the peers a test or `make demo` starts. A port the kernel hands out for bind(("", 0)) lies in its
# ephemeral range, where any outgoing connection may take it as its source port before the peer that was
# given it binds it (minutes later, for a second node of a test): a node then died with "Address already
# in use" in a full test run. So the ports come from below that range, each process of a pytest-xdist run from a
# slice of its own (PYTEST_XDIST_WORKER gw0, gw1...), in turn from a random start, each checked free.
_PORTS_FROM, _PORTS_TO, _SLICES = 20000, 32000, 8
_turn = itertools.count(random.randrange((_PORTS_TO - _PORTS_FROM) // _SLICES))


def _ephemeral_from() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port free on loopback now, below the kernel's ephemeral range where it allows (see above)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    size = (_PORTS_TO - _PORTS_FROM) // _SLICES
    base = _PORTS_FROM + (int(worker) % _SLICES if worker.isdigit() else 0) * size
    if _ephemeral_from() >= _PORTS_TO:
        for _ in range(size):
            port = base + next(_turn) % size
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], T | None], deadline_s: float, every: float = 0.2) -> T:
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {deadline_s:g} s waiting for {what}")
        time.sleep(every)


def dcmtk_env() -> dict[str, str]:
    """The environment for a program built on DCMTK (Orthanc, storescp, storescu): TCP_NODELAY=1, which
    DCMTK reads to turn Nagle's algorithm off on its sockets. With Nagle on, each C-STORE response of a
    DCMTK server waits for the peer's delayed ACK: 160 CT slices took 7.9 s into Orthanc on loopback,
    0.8 s with TCP_NODELAY=1."""
    return {**os.environ, "TCP_NODELAY": "1"}


def stop_process(proc: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; then its whole process group."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything it started (its worker processes)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started in its own session and everything it started, at once
    (as a crash or an OOM kill would), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


@dataclass
class Orthanc:
    workdir: Path
    nadir_port: int = 0  # Nadir's own SCP (declared as a modality of the PACS)
    dicom_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    ae_title: str = "ORTHANC"
    proc: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, Any]:
        plugins = [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else []
        return {
            "Name": "nadir-demo-pacs",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "OverwriteInstances": True,
            "StorageCompression": False,
            "Plugins": plugins,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado"},
            "DicomModalities": {
                "nadir": {"AET": "NADIR", "Host": "127.0.0.1", "Port": self.nadir_port or 104,
                          "AllowFind": True, "AllowGet": True, "AllowMove": True, "AllowStore": True},
            },
        }

    def start(self) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=1))
        with open(self.workdir / "orthanc.log", "ab") as log:
            self.proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=dcmtk_env())
        wait_until("Orthanc to answer", self._alive, 60, 0.1)
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = (self.workdir / "orthanc.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Orthanc exited with {self.proc.returncode}: {tail}")
        try:
            self.get("/system")
            return True
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=20) as r:
            return json.loads(r.read())

    def post(self, path: str, body: str) -> Any:
        req = urllib.request.Request(self.url + path, data=body.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read())

    def file(self, instance_id: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}/instances/{instance_id}/file", timeout=30) as r:
            data: bytes = r.read()
            return data

    def study_id(self, study_uid: str) -> str | None:
        for hit in self.post("/tools/lookup", study_uid):
            if hit.get("Type") == "Study":
                return str(hit["ID"])
        return None

    def series(self, study_uid: str) -> list[dict[str, Any]]:
        """The study's series (Orthanc's expanded records), or [] when the study is not there."""
        sid = self.study_id(study_uid)
        if sid is None:
            return []
        found: list[dict[str, Any]] = self.get(f"/studies/{sid}/series?expand")
        return found

    def series_numbered(self, study_uid: str, number: int) -> dict[str, Any] | None:
        for s in self.series(study_uid):
            if str(s["MainDicomTags"].get("SeriesNumber", "")).strip() == str(number):
                return s
        return None

    def delete_all(self) -> None:
        for pid in self.get("/patients"):
            req = urllib.request.Request(f"{self.url}/patients/{pid}", method="DELETE")
            urllib.request.urlopen(req, timeout=20).close()


@dataclass
class NadirNode:
    workdir: Path
    pacs_port: int
    port: int = field(default_factory=free_port)
    settle_seconds: float = 2.0
    workers: int = 1
    database_url: str | None = None
    rules_file: Path = resources.ROUTING_FILE
    web_port: int = field(default_factory=free_port)  # the console (web.port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "nadir.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NADIR_")}
        env.update(
            NADIR_NODE__AE_TITLE="NADIR",
            NADIR_NODE__HOST="127.0.0.1",
            NADIR_NODE__PORT=str(self.port),
            NADIR_STORE__DATA_DIR=str(self.data_dir),
            NADIR_STORE__MIN_FREE_BYTES="0",
            NADIR_ASSEMBLY__SETTLE_SECONDS=f"{self.settle_seconds:g}",
            NADIR_ASSEMBLY__SWEEP_INTERVAL_SECONDS="0.2",
            NADIR_ROUTING__RULES_FILE=str(self.rules_file),
            NADIR_DESTINATIONS__PACS__AE_TITLE="ORTHANC",
            NADIR_DESTINATIONS__PACS__HOST="127.0.0.1",
            NADIR_DESTINATIONS__PACS__PORT=str(self.pacs_port),
            NADIR_JOBS__WORKERS=str(self.workers),
            NADIR_JOBS__POLL_SECONDS="0.2",
            NADIR_JOBS__LEASE_SECONDS="120",
            NADIR_JOBS__HEARTBEAT_SECONDS="5",
            NADIR_OUTBOX__POLL_SECONDS="0.2",
            NADIR_OUTBOX__FIRST_RETRY_SECONDS="1",
            NADIR_WEB__PORT=str(self.web_port),
        )
        if self.database_url:
            env["NADIR_STORE__DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def start(self) -> NadirNode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "serve"], cwd=REPO, env=self.env(),
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(f"nadir to listen on port {self.port}", self._listening, 90, 0.1)
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nadir serve exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            return True
        return False

    def stop(self) -> None:
        stop_process(self.proc, 40)
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def storescu(files: Sequence[Path], port: int, called_ae: str, calling_ae: str = "MODALITY") -> None:
    """Send files as a modality does (dcmtk storescu, one association); raises on failure."""
    cmd = ["storescu", "-aet", calling_ae, "-aec", called_ae, "127.0.0.1", str(port), *map(str, files)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dcmtk_env())
    if done.returncode != 0:
        raise RuntimeError(f"storescu to {called_ae} failed ({done.returncode}): {done.stderr[-1500:]}")
