"""Helpers of the node's integration tests (and bench/): synthetic studies, a real
`nadir serve` subprocess, dcmtk storescu, and a private PostgreSQL database.

Everything generated here is synthetic (random-noise pixel data, generated UIDs).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    MRImageStorage,
    generate_uid,
)

from daemon.demo.peers import dcmtk_env, free_port, kill_group  # noqa: F401 - the tests' one place

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")


# -- synthetic studies -------------------------------------------------------------


def _image(
    sop_class: str, modality: str, study_uid: str, series_uid: str, number: int, rows: int,
    cols: int, z: float, rng: np.random.Generator,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = series_uid[:60] + ".1"
    ds.Modality = modality
    ds.PatientName = "Synthetic^Phantom"
    ds.PatientID = "SYN0001"
    ds.StudyDate = "20260101"
    ds.AccessionNumber = "A1"
    ds.SeriesNumber = 1 if modality == "CT" else 2
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = 1.0
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
    else:
        ds.MRAcquisitionType = "3D"
    pixels = rng.integers(0, 4095, size=(rows, cols), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    return ds


def write_series(
    directory: Path, modality: str, count: int, rows: int, cols: int, study_uid: str,
    compressed: bool = False, seed: int = 0,
) -> list[Path]:
    """Write `count` slices of one synthetic series; JPEG-LS lossless when `compressed`."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    series_uid = generate_uid()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    paths = []
    for i in range(count):
        ds = _image(sop_class, modality, study_uid, series_uid, i + 1, rows, cols, float(i), rng)
        if compressed:
            ds.compress(JPEGLSLossless)
        path = directory / f"{modality}{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass(frozen=True)
class Study:
    uid: str
    ct: list[Path]
    mr: list[Path]  # JPEG-LS lossless

    @property
    def files(self) -> list[Path]:
        return self.ct + self.mr


def dataset_bytes(path: Path) -> bytes:
    """The encoded dataset of a DICOM file, without preamble and file meta."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM", path
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length :]


def sop_instance_uid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)


# -- the node as a subprocess ---------------------------------------------------------


def wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"nadir serve exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nadir serve did not listen on {port} within {deadline_s} s")


@dataclass
class Node:
    data_dir: Path
    port: int
    database_url: str | None = None
    ae_title: str = "NADIR"
    settle_seconds: float = 1.0
    allowed: str = ""
    min_free_bytes: int = 0
    receivers: int | None = None  # node.receivers; None: the default
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NADIR_")}
        env.update(
            NADIR_NODE__AE_TITLE=self.ae_title,
            NADIR_NODE__PORT=str(self.port),
            NADIR_NODE__HOST="127.0.0.1",
            NADIR_NODE__ALLOWED_CALLING_AES=self.allowed,
            NADIR_STORE__DATA_DIR=str(self.data_dir),
            NADIR_STORE__MIN_FREE_BYTES=str(self.min_free_bytes),
            NADIR_ASSEMBLY__SETTLE_SECONDS=str(self.settle_seconds),
            NADIR_ASSEMBLY__SWEEP_INTERVAL_SECONDS="0.2",
            NADIR_WEB__ENABLED="false",  # the console has its own tests (tests/web)
        )
        if self.database_url:
            env["NADIR_STORE__DATABASE_URL"] = self.database_url
        if self.receivers is not None:
            env["NADIR_NODE__RECEIVERS"] = str(self.receivers)
        # the receiving node under test: no routes, one worker
        rules = self.data_dir.parent / "no-routes.yaml"
        if not rules.exists():
            rules.write_text("version: 1\nroutes: []\n")
        env["NADIR_ROUTING__RULES_FILE"] = str(rules)
        env["NADIR_JOBS__WORKERS"] = "1"
        return env

    def start(self) -> Node:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-serve.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "daemon.cli", "serve"], cwd=REPO_ROOT, env=self.env(),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        try:
            wait_for_port(self.port, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; its log ends:\n{self.log_text()[-3000:]}") from exc
        return self

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers, if any
        self.proc = None
        return rc

    def kill9(self) -> None:
        """SIGKILL the node and every process it started (as a crash or OOM kill would)."""
        assert self.proc is not None
        kill_group(self.proc)
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def ls(self) -> list[dict[str, object]]:
        import json

        out = subprocess.run(
            [PYTHON, "-m", "daemon.cli", "study", "ls", "--json"], cwd=REPO_ROOT, env=self.env(),
            capture_output=True, check=True,
        )
        result: list[dict[str, object]] = json.loads(out.stdout)
        return result


# -- dcmtk storescu ---------------------------------------------------------------------

_SENDING = re.compile(r"^I: Sending file: (.*)$")
_SUCCESS = re.compile(r"^I: Received Store Response \(Success\)")


def storescu(
    port: int, files: Sequence[Path], calling: str = "STORESCU", called: str = "NADIR",
    extra: Sequence[str] = (), timeout: float = 120.0,
) -> tuple[int, list[Path], str]:
    """Send `files`; return storescu's exit code, the files acknowledged with 0x0000
    (from its -v output), and the output."""
    cmd = ["storescu", "-v", "-aet", calling, "-aec", called, *extra, "127.0.0.1", str(port)]
    proc = subprocess.run(
        [*cmd, *map(str, files)], capture_output=True, text=True, timeout=timeout, env=dcmtk_env()
    )
    output = proc.stdout + proc.stderr
    return proc.returncode, acked_files(output), output


def acked_files(output: str) -> list[Path]:
    acked, current = [], None
    for line in output.splitlines():
        m = _SENDING.match(line)
        if m:
            current = Path(m.group(1))
        elif _SUCCESS.match(line) and current is not None:
            acked.append(current)
            current = None
    return acked


# -- kill -9 trials -------------------------------------------------------------------------


def recorded_paths(node: Node) -> dict[str, str]:
    """sop_instance_uid -> spool-relative path, from the node's database."""
    from sqlalchemy import create_engine, text

    url = node.database_url or f"sqlite:///{node.data_dir / 'nadir.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sop_instance_uid, path FROM instances")).all()
            return {str(uid): str(path) for uid, path in rows}
    finally:
        engine.dispose()


def spool_files(node: Node) -> set[str]:
    spool = node.data_dir / "spool"
    return {
        str(p.relative_to(spool)) for p in spool.rglob("*.dcm") if p.relative_to(spool).parts[0] != "tmp"
    }


def kill_trial(node: Node, files: Sequence[Path], kill_after_s: float) -> tuple[list[Path], list[str]]:
    """With the node running: send `files` with storescu, kill -9 the node after
    `kill_after_s`, restart it and check; the node is left running. Returns the files
    acknowledged in this trial and the problems found (for every instance acknowledged:
    recorded, in the spool, its dataset byte-identical; the database and the spool
    agree; tmp/ is empty)."""
    # storescu's -v output goes to a file: a pipe nobody reads while it sends fills up
    # (64 KiB, ~268 files) and blocks storescu, so every trial killed the node at the same point
    out_path = node.data_dir.parent / f"{node.data_dir.name}-storescu.log"
    with open(out_path, "w") as out:
        sender = subprocess.Popen(
            ["storescu", "-v", "-aec", node.ae_title, "127.0.0.1", str(node.port), *map(str, files)],
            stdout=out, stderr=subprocess.STDOUT,
            env={"TCP_NODELAY": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        time.sleep(kill_after_s)
        node.kill9()
        sender.wait(timeout=120)
    acked = acked_files(out_path.read_text(errors="replace"))
    node.start()
    problems = []
    recorded = recorded_paths(node)
    spooled = spool_files(node)
    if set(recorded.values()) != spooled:
        problems.append(
            f"database and spool differ: {len(set(recorded.values()) - spooled)} rows without file, "
            f"{len(spooled - set(recorded.values()))} files without row"
        )
    if any(p.startswith("tmp/") for p in recorded.values()):
        problems.append("a temporary file is recorded as stored")
    for path in acked:
        uid = sop_instance_uid(path)
        if uid not in recorded:
            problems.append(f"acknowledged {path.name} ({uid}) is not recorded")
        elif dataset_bytes(node.data_dir / "spool" / recorded[uid]) != dataset_bytes(path):
            problems.append(f"acknowledged {path.name} differs from what was sent")
    if any((node.data_dir / "spool" / "tmp").iterdir()):
        problems.append("tmp/ not empty after restart")
    return acked, problems
