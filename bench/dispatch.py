"""Dispatch benchmark: from the last instance received to the QA report stored at the PACS.

Starts its own Orthanc (the PACS) and a real `nadir serve` on the embedded default
(SQLite, local spool, the default worker pool and poll intervals) with
`settle_seconds` = 2 and the shipped routing file (QA report of every study to
`pacs`), then:

1. latency: sends N studies one after the other with dcmtk storescu and, for each,
   measures the time from the study's last instance committed by Nadir
   (`studies.last_received`) to the C-STORE of its QA SR acknowledged by Orthanc
   (`outbox.sent`); the SR is also checked in Orthanc's REST API. Median of N.
2. throughput: sends M studies from several storescu processes at once and counts
   the studies per minute from the first instance sent to the last SR stored.

All studies are synthetic (generated CT series). Usage:
    .venv/bin/python bench/dispatch.py [--studies 20] [--burst 40] [--slices 30]
Last line: `dispatch latency_median_s=<x> latency_p90_s=<y> studies_per_minute=<z>`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from pydicom.uid import generate_uid
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from jobs.harness import NadirNode, Orthanc, storescu, wait_until  # noqa: E402
from jobs.studies import make_series, write_study  # noqa: E402

from daemon.store.jobs import utc  # noqa: E402
from daemon.store.models import Study  # noqa: E402
from daemon.store.outbox import OutboxRow  # noqa: E402

DEFAULTS_BUT_SETTLE = {
    # back to the embedded defaults for everything the test harness shortens
    "NADIR_ASSEMBLY__SETTLE_SECONDS": "2",
    "NADIR_ASSEMBLY__SWEEP_INTERVAL_SECONDS": "1",
    "NADIR_ROUTING__WATCH_INTERVAL_SECONDS": "2",
    "NADIR_JOBS__WORKERS": "2",
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


def make_study(folder: Path, slices: int) -> tuple[str, list[Path]]:
    uid = generate_uid()
    series = make_series(uid, positions=[float(z) for z in range(slices)], size=256)
    return uid, write_study(folder / uid, [series])


def sent_at(node: NadirNode, study_uid: str) -> datetime | None:
    rows = node.scalars(select(OutboxRow.sent).where(OutboxRow.study_instance_uid == study_uid, OutboxRow.state == "SENT"))
    return utc(rows[0][0]) if rows else None


def latency(node: NadirNode, pacs: Orthanc, work: Path, n: int, slices: int) -> list[float]:
    out = []
    for i in range(n):
        uid, files = make_study(work / "lat", slices)
        storescu(node.port, files)
        sent = wait_until(f"the SR of study {i}", lambda uid=uid: sent_at(node, uid), 120, 0.05)
        last = utc(node.scalars(select(Study.last_received).where(Study.study_instance_uid == uid))[0][0])
        out.append((sent - last).total_seconds())
        print(f"study {i + 1:2d}: {out[-1]:.2f} s from last instance to SR stored", flush=True)
    return out


def throughput(node: NadirNode, pacs: Orthanc, work: Path, m: int, slices: int, senders: int) -> float:
    studies = [make_study(work / "burst", slices) for _ in range(m)]
    before = len(pacs.sop_instance_uids())
    t0 = time.monotonic()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(lambda s: storescu(node.port, s[1]), studies))
    t_sent = time.monotonic() - t0
    wait_until("every SR", lambda: all(sent_at(node, uid) for uid, _ in studies), 900, 0.2)
    elapsed = time.monotonic() - t0
    if len(pacs.sop_instance_uids()) != before + m:
        raise RuntimeError("expected exactly one SR per study at the PACS")
    print(f"burst: {m} studies of {slices} slices sent in {t_sent:.1f} s by {senders} storescu; all SRs stored after {elapsed:.1f} s")
    return m / elapsed * 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=20, help="studies for the latency median")
    parser.add_argument("--burst", type=int, default=40, help="studies for the throughput run")
    parser.add_argument("--slices", type=int, default=30, help="CT slices (256x256) per study")
    parser.add_argument("--senders", type=int, default=4, help="storescu processes at once in the throughput run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nadir-dispatch-") as tmp:
        work = Path(tmp)
        pacs = Orthanc(work / "orthanc").start()
        node = NadirNode(work / "nadir", pacs.dicom_port, extra_env=DEFAULTS_BUT_SETTLE).start()
        try:
            latency(node, pacs, work, 1, args.slices)  # warm-up (worker processes starting), not counted
            lat = latency(node, pacs, work, args.studies, args.slices)
            rate = throughput(node, pacs, work, args.burst, args.slices, args.senders)
        finally:
            node.stop()
            pacs.stop()
    lat.sort()
    p90 = lat[min(len(lat) - 1, int(round(0.9 * (len(lat) - 1))))]
    print(f"latency over {len(lat)} studies: median {statistics.median(lat):.2f} s, min {lat[0]:.2f}, p90 {p90:.2f}, max {lat[-1]:.2f} (settle_seconds=2)")
    print(f"dispatch latency_median_s={statistics.median(lat):.2f} latency_p90_s={p90:.2f} studies_per_minute={rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
