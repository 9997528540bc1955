"""Dispatch benchmark: from the last instance received to a route's SR stored at the PACS,
with the local executor or the Celery one (`nadir worker` processes over RabbitMQ).

Each configuration gets its own Orthanc (the PACS) and a real `nadir serve` on the
embedded defaults (poll intervals, leases, retries) except `settle_seconds` = 2, with
the shipped routing file (rules/routing.yaml):

- `--executor local`: `nadir serve` on SQLite (the embedded default), its own pool of
  `--workers` processes (NADIR_JOBS__WORKERS);
- `--executor celery`: `nadir serve` with NADIR_JOBS__EXECUTOR=celery on a database of
  its own in a private PostgreSQL cluster, and `--workers` `nadir worker --concurrency 1`
  processes taking the jobs from a private RabbitMQ node; the bench starts both servers
  (daemon/demo/private_servers.py) and stops them at the end.

Routes (`--route`):

- `qa` (default): synthetic CT studies (`--slices` slices of 256x256) and the QA report
  route (`qa-report`); defaults --studies 20 --burst 40.
- `brain`: the brain-metastases route (`brain-mets-rano-bm`, the demo model
  models/demo-brain-mets, CPU) on copies of the SYNTHETIC demo patient's small baseline
  brain MR (daemon/demo/response_patient.py: 80 slices of 200x176, two enhancing
  lesions); every copy has new Study/Series/SOP/Frame-of-Reference UIDs and a PatientID
  of its own, so that no study has priors. The QA report route matches these studies
  too and runs alongside (as on a real node); only the brain route's SR is timed.
  Defaults --studies 3 --burst 4 (a 2-core machine).

Per configuration:

0. warm-up, not counted: one study per worker sent at once (worker processes start,
   pipelines and the model load).
1. latency: sends N studies one after the other with dcmtk storescu and, for each,
   measures the time from the study's last instance committed by Nadir
   (`studies.last_received`) to the C-STORE of the route's SR acknowledged by Orthanc
   (`outbox.sent` of the SR row of the route's job); the SR is also looked up in
   Orthanc's REST API. Median and p90 of N.
2. throughput: sends M studies from several storescu processes at once and counts the
   studies per minute from the first instance sent to the last of their SRs stored.

`--compare` measures, in one run, local (with --workers), celery with 1 worker and
celery with 2 workers, each on a fresh node, PACS and database; the configuration
given by --executor/--workers runs last. Note that local runs on SQLite and celery on
PostgreSQL (what each executor is deployed with).

Everything sent is synthetic. Usage:
    .venv/bin/python bench/dispatch.py [--route qa|brain] [--executor local|celery] [--workers 2]
        [--compare] [--studies N] [--burst M] [--slices 30] [--senders 4]
e.g. .venv/bin/python bench/dispatch.py --route brain --compare --studies 3 --burst 4
One line per configuration, the last one printed being the --executor/--workers one:
    dispatch latency_median_s=<x> latency_p90_s=<y> studies_per_minute=<z> executor=<local|celery> workers=<n>
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from jobs.harness import NadirNode, Orthanc, Worker, storescu, wait_until  # noqa: E402
from jobs.studies import make_series, write_study  # noqa: E402

from daemon.demo import private_servers  # noqa: E402
from daemon.store.jobs import Job, utc  # noqa: E402
from daemon.store.models import Study  # noqa: E402
from daemon.store.outbox import OutboxRow  # noqa: E402

CALLED_AE = "NADIR"
SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."  # every Structured Report storage class
SETTLE_SECONDS = 2

DEFAULTS_BUT_SETTLE = {
    # back to the embedded defaults for everything the test harness shortens
    "NADIR_ASSEMBLY__SETTLE_SECONDS": str(SETTLE_SECONDS),
    "NADIR_ASSEMBLY__SWEEP_INTERVAL_SECONDS": "1",
    "NADIR_ROUTING__WATCH_INTERVAL_SECONDS": "2",
    "NADIR_JOBS__POLL_SECONDS": "1",
    "NADIR_JOBS__LEASE_SECONDS": "60",
    "NADIR_JOBS__HEARTBEAT_SECONDS": "10",
    "NADIR_JOBS__RETRY_DELAY_SECONDS": "30",
    "NADIR_OUTBOX__POLL_SECONDS": "1",
    "NADIR_OUTBOX__FIRST_RETRY_SECONDS": "30",
    "NADIR_OUTBOX__BACKOFF_FACTOR": "2",
    "NADIR_OUTBOX__MAX_DELAY_SECONDS": "1800",
    "NADIR_OUTBOX__MAX_AGE_SECONDS": "172800",
}

Studies = list[tuple[str, list[Path]]]  # (StudyInstanceUID, files)


# --- the studies ------------------------------------------------------------------------


class QaStudies:
    """Synthetic CT studies for the QA report route."""

    route = "qa-report"
    timeout_s = 120.0  # one study, last instance -> SR
    defaults = (20, 40)  # --studies, --burst

    def __init__(self, work: Path, slices: int) -> None:
        self.work = work
        self.slices = slices

    def describe(self) -> str:
        return f"synthetic CT, {self.slices} slices of 256x256"

    def make(self, folder: Path) -> tuple[str, list[Path]]:
        uid = generate_uid()
        series = make_series(uid, positions=[float(z) for z in range(self.slices)], size=256)
        return uid, write_study(folder / uid, [series])


class BrainStudies:
    """Copies of the SYNTHETIC demo patient's small baseline brain MR, each a study (and a
    patient) of its own."""

    route = "brain-mets-rano-bm"
    timeout_s = 600.0
    defaults = (3, 4)

    def __init__(self, work: Path) -> None:
        from daemon.demo.response_patient import DATES, GRIDS, POSES, SCRIPT
        from daemon.demo.response_patient import write_study as write_demo_study

        t = time.monotonic()
        lesions = [tpl.scaled(scales[0]) for tpl, scales in SCRIPT.values()]
        demo = write_demo_study(work / "template", "baseline", lesions, DATES[0], POSES[0], GRIDS["small"],
                                seed=1, expected="BASELINE")
        self.template = [pydicom.dcmread(p) for p in sorted(demo.folder.glob("*.dcm"))]
        self.count = itertools.count(1)
        print(f"wrote the demo brain MR template ({demo.files} slices) in {time.monotonic() - t:.0f} s", flush=True)

    def describe(self) -> str:
        return f"synthetic demo brain MR, {len(self.template)} slices of 200x176, demo model on CPU"

    def make(self, folder: Path) -> tuple[str, list[Path]]:
        n = next(self.count)
        study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
        out = folder / study_uid
        out.mkdir(parents=True)
        files = []
        for ds in self.template:
            ds = ds.copy()
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = frame_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = f"NADIR-BENCH-{n:04d}"
            ds.AccessionNumber = f"BENCH{n:04d}"
            path = out / f"MR-{int(ds.InstanceNumber):04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
        return study_uid, files


StudySource = QaStudies | BrainStudies


# --- measuring --------------------------------------------------------------------------


def sr_sent(node: NadirNode, study_uid: str, route: str) -> tuple[datetime, str] | None:
    """When the SR of the study's `route` job was acknowledged by the PACS, and its SOP UID."""
    rows = node.scalars(
        select(OutboxRow.sent, OutboxRow.sop_instance_uid)
        .join(Job, OutboxRow.job_id == Job.id)
        .where(OutboxRow.study_instance_uid == study_uid, Job.route == route,
               OutboxRow.sop_class_uid.startswith(SR_CLASS_PREFIX), OutboxRow.state == "SENT")
    )
    if rows:
        return utc(rows[0][0]), rows[0][1]
    failed = node.scalars(select(Job.id, Job.state, Job.error).where(
        Job.study_instance_uid == study_uid, Job.route == route, Job.state.in_(["RETRYING", "FAILED"])))
    if failed:  # a benchmark does not wait for retries: its figures would be wrong
        job_id, state, error = failed[0]
        raise RuntimeError(f"job {job_id} ({route}) of study {study_uid} is {state}: {error}")
    return None


def in_pacs(pacs: Orthanc, sop_uid: str) -> bool:
    return any(hit.get("Type") == "Instance" for hit in pacs.post("/tools/lookup", sop_uid))


def send(node: NadirNode, files: list[Path]) -> None:
    storescu(files, node.port, CALLED_AE)


def warm_up(node: NadirNode, source: StudySource, work: Path, workers: int) -> None:
    studies = [source.make(work / "warm") for _ in range(workers)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda s: send(node, s[1]), studies))
    for uid, _ in studies:
        wait_until("the SR of a warm-up study", lambda uid=uid: sr_sent(node, uid, source.route),
                   source.timeout_s * workers, 0.2)
    print(f"warm-up: {workers} studies at once, SRs stored after {time.monotonic() - t0:.1f} s (not counted)",
          flush=True)


def latency(node: NadirNode, pacs: Orthanc, source: StudySource, work: Path, n: int) -> list[float]:
    out = []
    for i in range(n):
        uid, files = source.make(work / "lat")
        send(node, files)
        sent, sop_uid = wait_until(f"the SR of study {i}", lambda uid=uid: sr_sent(node, uid, source.route),
                                   source.timeout_s, 0.05)
        last = utc(node.scalars(select(Study.last_received).where(Study.study_instance_uid == uid))[0][0])
        if not in_pacs(pacs, sop_uid):
            raise RuntimeError(f"the SR {sop_uid} of study {uid} is not in Orthanc")
        out.append((sent - last).total_seconds())
        print(f"study {i + 1:2d}: {out[-1]:.2f} s from last instance to SR stored", flush=True)
    return out


def throughput(node: NadirNode, pacs: Orthanc, source: StudySource, work: Path, m: int, senders: int) -> float:
    studies = [source.make(work / "burst") for _ in range(m)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(lambda s: send(node, s[1]), studies))
    t_sent = time.monotonic() - t0
    srs = wait_until("every SR", lambda: all(found := [sr_sent(node, uid, source.route) for uid, _ in studies])
                     and found, max(900.0, source.timeout_s * m), 0.2)
    elapsed = time.monotonic() - t0
    missing = [sop for _, sop in srs if not in_pacs(pacs, sop)]
    if missing or len({sop for _, sop in srs}) != m:
        raise RuntimeError(f"expected one SR per study in Orthanc; missing {missing}")
    print(f"burst: {m} studies sent in {t_sent:.1f} s by {senders} storescu; all SRs stored after {elapsed:.1f} s",
          flush=True)
    return m / elapsed * 60.0


# --- configurations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    executor: str  # local | celery
    workers: int

    def __str__(self) -> str:
        return f"executor={self.executor} workers={self.workers}"


class Servers:
    """The private RabbitMQ node and PostgreSQL cluster, started at first need, stopped by close()."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._broker: str | None = None
        self._pg_started = False

    def broker_url(self) -> str:
        if self._broker is None:
            t = time.monotonic()
            self._broker = self._stack.enter_context(private_servers.private_rabbitmq())
            print(f"private RabbitMQ up in {time.monotonic() - t:.0f} s", flush=True)
        return self._broker

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        if not self._pg_started:
            t = time.monotonic()
            private_servers.postgres_admin_url()
            self._pg_started = True
            print(f"private PostgreSQL up in {time.monotonic() - t:.0f} s", flush=True)
        with private_servers.private_postgres_database() as url:
            yield url

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            if self._pg_started:
                private_servers.stop_postgres()


def run_config(cfg: Config, source: StudySource, servers: Servers, work: Path,
               studies: int, burst: int, senders: int) -> tuple[list[float], float]:
    work.mkdir(parents=True)
    env = dict(DEFAULTS_BUT_SETTLE, NADIR_JOBS__WORKERS=str(cfg.workers))
    with contextlib.ExitStack() as stack:
        database_url = None
        if cfg.executor == "celery":
            env.update(NADIR_JOBS__EXECUTOR="celery", NADIR_JOBS__BROKER_URL=servers.broker_url())
            database_url = stack.enter_context(servers.database())
        pacs = Orthanc(work / "orthanc")
        node = NadirNode(work / "nadir", pacs.dicom_port, settle_seconds=SETTLE_SECONDS, workers=cfg.workers,
                         database_url=database_url, extra_env=env)
        pacs.nadir_port = node.port  # the brain route's priors_from: pacs (nothing is found)
        stack.callback(pacs.stop)
        pacs.start()
        stack.callback(node.stop)
        node.start()
        workers: list[Worker] = []
        if cfg.executor == "celery":
            for i in range(cfg.workers):
                w = Worker(node.env(), work / f"worker{i}.log")
                stack.callback(w.stop)
                workers.append(w.start())
        try:
            warm_up(node, source, work, cfg.workers)
            lat = latency(node, pacs, source, work, studies)
            rate = throughput(node, pacs, source, work, burst, senders)
        except BaseException:
            for name, text in [("nadir serve", node.log_text())] + [(f"worker {i}", w.log_text())
                                                                     for i, w in enumerate(workers)]:
                print(f"--- last lines of the {name} log ---\n{text[-3000:]}", file=sys.stderr)
            raise
    return lat, rate


def report(cfg: Config, lat: list[float], rate: float) -> None:
    lat = sorted(lat)
    median = statistics.median(lat)
    p90 = lat[min(len(lat) - 1, int(round(0.9 * (len(lat) - 1))))]
    print(f"latency over {len(lat)} studies: median {median:.2f} s, min {lat[0]:.2f}, p90 {p90:.2f}, "
          f"max {lat[-1]:.2f} (settle_seconds={SETTLE_SECONDS}); {rate:.1f} studies/min ({cfg})")
    print(f"dispatch latency_median_s={median:.2f} latency_p90_s={p90:.2f} studies_per_minute={rate:.1f} "
          f"executor={cfg.executor} workers={cfg.workers}", flush=True)


def configurations(executor: str, workers: int, compare: bool) -> list[Config]:
    given = Config(executor, workers)
    if not compare:
        return [given]
    others = [Config("local", workers), Config("celery", 1), Config("celery", 2)]
    return [c for c in others if c != given] + [given]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--route", choices=["qa", "brain"], default="qa", help="the route measured")
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--workers", type=int, default=2,
                        help="local worker processes, or `nadir worker --concurrency 1` processes")
    parser.add_argument("--compare", action="store_true",
                        help="also local (--workers), celery 1 and celery 2 workers, each on fresh peers")
    parser.add_argument("--studies", type=int, help="studies for the latency median (qa 20, brain 3)")
    parser.add_argument("--burst", type=int, help="studies for the throughput run (qa 40, brain 4)")
    parser.add_argument("--slices", type=int, default=30, help="CT slices (256x256) per study (qa)")
    parser.add_argument("--senders", type=int, default=4, help="storescu processes at once in the throughput run")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    with tempfile.TemporaryDirectory(prefix="nadir-dispatch-") as tmp:
        work = Path(tmp)
        source: StudySource = BrainStudies(work) if args.route == "brain" else QaStudies(work, args.slices)
        studies = args.studies if args.studies is not None else source.defaults[0]
        burst = args.burst if args.burst is not None else source.defaults[1]
        servers = Servers()
        try:
            for i, cfg in enumerate(configurations(args.executor, args.workers, args.compare)):
                print(f"=== {cfg}, route {source.route} ({source.describe()}), {studies} studies one by one, "
                      f"burst of {burst}", flush=True)
                t = time.monotonic()
                lat, rate = run_config(cfg, source, servers, work / f"run{i}-{cfg.executor}{cfg.workers}",
                                       studies, burst, args.senders)
                print(f"({cfg}: {time.monotonic() - t:.0f} s with start and stop)")
                report(cfg, lat, rate)
        finally:
            servers.close()
    return 0

if __name__ == "__main__":
    sys.exit(main())
