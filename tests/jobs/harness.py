"""Real peers for the integration tests: an Orthanc of their own (the PACS) and a
`nadir serve` subprocess, both on free loopback ports; dcmtk storescu as the modality.
Everything sent is synthetic."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from daemon.store.db import make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
ORTHANC = "/usr/sbin/Orthanc"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


@contextlib.contextmanager
def private_postgres_database() -> Iterator[str]:
    """A database of its own for one test; dropped afterwards. Yields its URL."""
    import psycopg

    name = f"nadir_jobs_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


T = TypeVar("T")


def free_port() -> int:
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
            raise TimeoutError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(every)


@dataclass
class Orthanc:
    workdir: Path
    dicom_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    ae_title: str = "ORTHANC"
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "nadir-test-pacs",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "OverwriteInstances": True,
            "Plugins": [],
            "DicomModalities": {},
        }
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(config))
        log = open(self.workdir / "orthanc.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until("Orthanc to answer", lambda: self._alive(), 30, 0.1)
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {self.proc.returncode}: {(self.workdir / 'orthanc.log').read_text()[-2000:]}")
        try:
            self.get("/system")
            return True
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def sop_instance_uids(self, modality: str | None = None) -> list[str]:
        """Every instance Orthanc holds (optionally of one modality), one entry per stored instance."""
        out = []
        for inst in self.get("/instances?expand"):
            tags = inst["MainDicomTags"]
            if modality is not None:
                series = self.get(f"/series/{inst['ParentSeries']}")
                if series["MainDicomTags"].get("Modality") != modality:
                    continue
            out.append(tags["SOPInstanceUID"])
        return out

    def stored_new_instances(self) -> int:
        """How many NewInstance changes Orthanc recorded (a re-store of the same UID is not new)."""
        changes = self.get("/changes?limit=10000")["Changes"]
        return sum(1 for c in changes if c["ChangeType"] == "NewInstance")


@dataclass
class NadirNode:
    workdir: Path
    pacs_port: int
    database_url: str | None = None
    rules_file: Path = REPO_ROOT / "rules" / "routing.yaml"
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _engine: Engine | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "serve.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NADIR_")}
        env.update(
            NADIR_NODE__AE_TITLE="NADIR",
            NADIR_NODE__PORT=str(self.port),
            NADIR_NODE__HOST="127.0.0.1",
            NADIR_STORE__DATA_DIR=str(self.data_dir),
            NADIR_STORE__MIN_FREE_BYTES="0",
            NADIR_ASSEMBLY__SETTLE_SECONDS="1",
            NADIR_ASSEMBLY__SWEEP_INTERVAL_SECONDS="0.2",
            NADIR_ROUTING__RULES_FILE=str(self.rules_file),
            NADIR_ROUTING__WATCH_INTERVAL_SECONDS="0.5",
            NADIR_DESTINATIONS__PACS__AE_TITLE="ORTHANC",
            NADIR_DESTINATIONS__PACS__HOST="127.0.0.1",
            NADIR_DESTINATIONS__PACS__PORT=str(self.pacs_port),
            NADIR_JOBS__WORKERS="1",
            NADIR_JOBS__POLL_SECONDS="0.2",
            NADIR_JOBS__LEASE_SECONDS="4",
            NADIR_JOBS__HEARTBEAT_SECONDS="1",
            NADIR_JOBS__RETRY_DELAY_SECONDS="0.5",
            NADIR_OUTBOX__POLL_SECONDS="0.2",
            NADIR_OUTBOX__FIRST_RETRY_SECONDS="0.5",
            NADIR_OUTBOX__BACKOFF_FACTOR="2",
            NADIR_OUTBOX__MAX_DELAY_SECONDS="1",
            NADIR_OUTBOX__MAX_AGE_SECONDS="600",
            PYTHONPATH=str(REPO_ROOT / "tests"),  # test pipelines: jobs.extra_pipelines:...
        )
        if self.database_url:
            env["NADIR_STORE__DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'nadir.db').resolve()}"

    def start(self) -> NadirNode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "daemon.cli", "serve"], cwd=REPO_ROOT, env=self.env(),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_until(f"nadir to listen on {self.port}", self._listening, 60, 0.1)
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"nadir serve exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            return True
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(40)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None
        self.dispose()

    def kill9(self) -> None:
        """SIGKILL the daemon only; its worker processes die with it (PR_SET_PDEATHSIG)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        pgid = self.proc.pid
        self.proc = None
        # nothing of the old node may survive (a surviving worker would be a bug, caught here)
        time.sleep(0.3)
        survivors = subprocess.run(["pgrep", "-a", "-g", str(pgid)], capture_output=True, text=True).stdout.splitlines()
        survivors = [p for p in survivors if "<defunct>" not in p]  # dead, awaiting reaping
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        assert not survivors, f"processes of the killed node survived: {survivors}"

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def scalars(self, stmt: Any) -> list[Any]:
        with self.engine().connect() as conn:
            return list(conn.execute(stmt).all())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, "-m", "daemon.cli", *args], cwd=REPO_ROOT, env=self.env(), capture_output=True, text=True, timeout=60)

    def cli_json(self, *args: str) -> Any:
        out = self.cli(*args, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def storescu(port: int, files: Sequence[Path], called: str = "NADIR") -> None:
    cmd = ["storescu", "-aet", "MODALITY", "-aec", called, "127.0.0.1", str(port), *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def job_states(node: NadirNode) -> list[str]:
    from daemon.store.jobs import Job

    return [row[0] for row in node.scalars(select(Job.state))]


def outbox_states(node: NadirNode) -> list[str]:
    from daemon.store.outbox import OutboxRow

    return [row[0] for row in node.scalars(select(OutboxRow.state))]
