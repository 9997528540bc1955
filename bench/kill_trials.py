"""kill -9 trials: a real `nadir serve` is killed while storescu sends, then restarted.

After every restart: each instance storescu saw acknowledged (0x0000) is recorded,
in the spool and byte-identical to what was sent; the database and the spool agree;
no temporary file is counted as stored.

    .venv/bin/python bench/kill_trials.py [--trials 100] [--database-url URL]

The load is synthetic: CT slices of 256x256 random noise. storescu's output goes to a
file (node_harness.kill_trial): through an unread pipe it blocked after ~268 files and
every trial killed the node at the same point. The summary shows where the kills
landed (acknowledged instances per trial) and how many came after the burst had ended.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "node"))

import node_harness as h  # noqa: E402
from hostile_harness import HostileNode  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--instances", type=int, default=300, help="instances sent per trial")
    ap.add_argument("--database-url", default=None, help="default: SQLite in the data folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="nadir-kill-"))
    try:
        node = HostileNode(data_dir=tmp / "data", port=h.free_port(), database_url=args.database_url,
                           settle_seconds=3600.0)
        failures, acked_total, start = 0, 0, time.monotonic()
        points: list[int] = []
        node.start()
        for trial in range(args.trials):
            delay = rng.uniform(0.3, 3.0)
            # fresh instances every trial, so each kill lands among new instances
            load = tmp / f"load{trial}"
            files = h.write_series(load, "CT", args.instances, 256, 256, generate_uid(), seed=trial)
            acked, problems = h.kill_trial(node, files, delay)
            shutil.rmtree(load)
            acked_total += len(acked)
            points.append(len(acked))
            if problems:
                failures += 1
                print(f"trial {trial}: killed after {delay:.2f} s: FAILED: {problems}", flush=True)
            else:
                print(f"trial {trial}: killed after {delay:.2f} s: {len(acked)} acknowledged, all kept", flush=True)
        node.stop()
        points.sort()
        finished = sum(p == args.instances for p in points)
        print(
            f"kill points (instances acknowledged before the kill): min {points[0]}, "
            f"median {points[len(points) // 2]}, max {points[-1]}, {len(set(points))} distinct; "
            f"{args.trials - finished}/{args.trials} trials killed mid-burst"
        )
        print(
            f"kill -9 trials: {args.trials - failures}/{args.trials} passed, "
            f"{acked_total} acknowledged instances checked, {time.monotonic() - start:.0f} s"
        )
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
