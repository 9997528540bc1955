"""Seconds per whole-body FDG PET/CT study through the route's pipeline, on this CPU.

The SYNTHETIC whole-body phantom (daemon/demo/wholebody.py) at full size: PET 200x200x300
(2 mm, 2.5 mm slices) and CT 512x512x300 (0.98 mm, 2.5 mm slices), written as DICOM, then
run through `daemon.pipelines.wholebody_fdg` in this process (the shipped rules: SUV >= 4
lesion rule, physiological uptake by location rules, PERCIST liver reference, TMTV/Dmax,
body composition; SR, SEG, key images, KOS built). Writing the files is not timed; reading
them is. A baseline (no priors), so no registration.

    .venv/bin/python bench/wholebody_fdg.py [--size full|small] [--repeat N]

The last line is
    wholebody_fdg seconds size=<size> pet=<shape> ct=<shape> per_study=<s> cpu=<s> (load+find+measure+report)
where per_study is wall-clock seconds (the best of --repeat) and cpu the process CPU seconds of
that run (all threads): on a shared, loaded machine the CPU figure is the comparable one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.demo import wholebody as wb  # noqa: E402
from daemon.demo.patient import write_pet_ct  # noqa: E402
from daemon.pipelines.base import PipelineInput  # noqa: E402
from daemon.pipelines.wholebody_fdg import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["full", "small"], default="full")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nadir-bench-wb-") as tmp:
        t0 = time.perf_counter()
        written = write_pet_ct(Path(tmp), 0, args.size, seed=1)
        print(f"wrote {written.files} files in {time.perf_counter() - t0:.1f} s (not timed)")
        files = tuple(sorted(written.folder.glob("*.dcm")))
        inp = PipelineInput(written.study_instance_uid, "wholebody-fdg-percist", files, {})
        times, cpus = [], []
        for _ in range(args.repeat):
            t1, c1 = time.perf_counter(), time.process_time()
            out = run(inp)
            times.append(time.perf_counter() - t1)
            cpus.append(time.process_time() - c1)
            print(f"run: {times[-1]:.1f} s wall, {cpus[-1]:.1f} s CPU, {len(out)} objects "
                  f"({', '.join(sorted({str(d.Modality) for d in out}))})")
    pet, ct = wb.GRIDS[("PT", args.size)].shape, wb.GRIDS[("CT", args.size)].shape
    shape = lambda s: "x".join(str(v) for v in (s[2], s[1], s[0]))  # noqa: E731
    print(f"wholebody_fdg seconds size={args.size} pet={shape(pet)} ct={shape(ct)} per_study={min(times):.1f} "
          f"cpu={cpus[times.index(min(times))]:.1f} (load+find+measure+report)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
