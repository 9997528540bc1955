"""Real peers for the jobs' integration tests: daemon.demo.peers' Orthanc (the PACS)
and `nadir serve` with quick timings and the test pipelines, both on free loopback
ports; dcmtk storescu as the modality. Everything sent is synthetic."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from daemon.demo import peers
from daemon.demo.peers import (  # noqa: F401 - re-exported
    free_port,
    storescu,
    wait_until,
)
from daemon.store.db import make_engine

REPO_ROOT = peers.REPO
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")


class Orthanc(peers.Orthanc):
    """The PACS, with what the delivery tests ask of it."""

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
class NadirNode(peers.NadirNode):
    """`nadir serve` with quick timings (leases, retries, back-off) and the test pipelines."""

    settle_seconds: float = 1.0
    _engine: Engine | None = None

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            NADIR_ROUTING__WATCH_INTERVAL_SECONDS="0.5",
            NADIR_JOBS__LEASE_SECONDS="4",
            NADIR_JOBS__HEARTBEAT_SECONDS="1",
            NADIR_JOBS__RETRY_DELAY_SECONDS="0.5",
            NADIR_OUTBOX__FIRST_RETRY_SECONDS="0.5",
            NADIR_OUTBOX__BACKOFF_FACTOR="2",
            NADIR_OUTBOX__MAX_DELAY_SECONDS="1",
            NADIR_OUTBOX__MAX_AGE_SECONDS="600",
            PYTHONPATH=str(REPO_ROOT / "tests"),  # test pipelines: jobs.extra_pipelines:...
        )
        env.update(self.extra_env)  # the test's own settings win over these
        return env

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'nadir.db').resolve()}"

    def stop(self) -> None:
        super().stop()
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


def job_states(node: NadirNode) -> list[str]:
    from daemon.store.jobs import Job

    return [row[0] for row in node.scalars(select(Job.state))]


def outbox_states(node: NadirNode) -> list[str]:
    from daemon.store.outbox import OutboxRow

    return [row[0] for row in node.scalars(select(OutboxRow.state))]


@dataclass
class Worker:
    """`nadir worker` (executor celery) with the node's environment, in its own process group."""

    env: dict[str, str]
    log_path: Path
    concurrency: int = 1
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "daemon.cli", "worker", "--concurrency", str(self.concurrency)],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def child_pids(self) -> set[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return {int(p) for p in out.split()}

    def kill9(self) -> None:
        """SIGKILL the worker and its children at once, as a crash or an OOM kill would."""
        assert self.proc is not None
        peers.kill_group(self.proc)
        self.proc = None

    def stop(self) -> None:
        peers.stop_process(self.proc, 40)
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
