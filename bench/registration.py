"""Rigid registration of the demo liver patient, binned (what the daemon runs) against its own grid.

Registers the SYNTHETIC liver CT of daemon.demo.patient at t2 onto t0 (repositioned by 8 degrees
and 19 mm, known poses) with daemon.measure.registration.register_rigid twice in the same run:
as the daemon runs it (the finest level on a grid binned to about 2 mm, at most 300 k samples a
level) and, as the peer, on the image's own grid with 15 % of its voxels sampled at every level
(what the daemon did before). Prints each one's time and its error at the lesions' centres
against the true pose.

    .venv/bin/python bench/registration.py [--size small|full] [--field whole|cropped]

--field cropped: a 256 mm field that the body fills (its sides cut off), 0.8 mm pixels.
The last line is
    registration size=<size> field=<field> binned_s=<a> native_s=<b> speedup=<b/a> err_mm binned=<x> native=<y>
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.demo.patient import GRIDS, POSES, liver_lesions_at  # noqa: E402
from daemon.demo.phantom import Grid, liver_ct_phantom, phantom_volume  # noqa: E402
from daemon.measure.registration import Alignment, register_rigid  # noqa: E402

CROPPED = Grid(shape=(56, 320, 320), spacing=(2.5, 0.8, 0.8), centre=(0.0, 0.0, 20.0))
PRIOR, FOLLOWUP = 0, 2


def error_mm(alignment: Alignment) -> float:
    """The largest distance, over the lesions' centres at the follow-up, between where the
    registration puts them on the prior and where they truly are."""
    truth = POSES[PRIOR].matrix() @ np.linalg.inv(POSES[FOLLOWUP].matrix())
    pose = POSES[FOLLOWUP].matrix()
    worst = 0.0
    for les in liver_lesions_at(FOLLOWUP):
        at = pose[:3, :3] @ np.asarray(les.centre) + pose[:3, 3]
        worst = max(worst, float(np.linalg.norm(alignment.to_prior(at) - (truth[:3, :3] @ at + truth[:3, 3]))))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="full", choices=("small", "full"))
    ap.add_argument("--field", default="whole", choices=("whole", "cropped"))
    args = ap.parse_args()
    grid = CROPPED if args.field == "cropped" else GRIDS[("CT", args.size)]
    prior, followup = (phantom_volume(liver_ct_phantom(grid, liver_lesions_at(t), POSES[t], seed=10 + t), f"t{t}")
                       for t in (PRIOR, FOLLOWUP))
    runs: dict[str, Callable[[], Alignment]] = {
        "binned": lambda: register_rigid(prior, followup),  # the daemon's defaults
        "native": lambda: register_rigid(prior, followup, finest_mm=0.0, max_samples=10**12),
    }
    figures = {}
    for name, run in runs.items():
        started = time.perf_counter()
        alignment = run()
        figures[name] = (time.perf_counter() - started, error_mm(alignment))
        print(f"{name}: {figures[name][0]:.1f} s, largest error at the lesions {figures[name][1]:.2f} mm "
              f"({alignment.note})", flush=True)
    (b_s, b_err), (n_s, n_err) = figures["binned"], figures["native"]
    print(f"registration size={args.size} field={args.field} binned_s={b_s:.1f} native_s={n_s:.1f} "
          f"speedup={n_s / b_s:.1f} err_mm binned={b_err:.2f} native={n_err:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
