"""`nadir demo-data OUT_DIR [--size small|full]`: write a synthetic demo patient with ground truth."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from daemon.demo.patient import TIMEPOINTS, WRITERS, write_demo_patient

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="folder to write one sub-folder per study into")
    parser.add_argument("--size", choices=["small", "full"], default="small",
                        help="small: fast, about 2 mm voxels; full: 0.5x0.5x1 mm 512x512x208 brain MR")
    parser.add_argument("--seed", type=int, default=1, help="seed for noise and UIDs (same seed, same files)")
    parser.add_argument("--kinds", default=",".join(WRITERS),
                        help=f"comma-separated study kinds among {', '.join(WRITERS)}")
    parser.add_argument("--timepoints", default=",".join(TIMEPOINTS), help="comma-separated among t0,t1,t2")


def run(args: argparse.Namespace) -> int:
    kinds = tuple(k.strip() for k in str(args.kinds).split(",") if k.strip())
    unknown = [k for k in kinds if k not in WRITERS]
    tps = [t.strip() for t in str(args.timepoints).split(",") if t.strip()]
    bad_t = [t for t in tps if t not in TIMEPOINTS]
    if unknown or bad_t:
        print(f"unknown kinds {unknown} or timepoints {bad_t}; kinds: {list(WRITERS)}, timepoints: {list(TIMEPOINTS)}")
        return 2
    written = write_demo_patient(
        Path(args.out_dir), size=args.size, seed=int(args.seed), kinds=kinds,
        timepoints=tuple(TIMEPOINTS.index(t) for t in tps),
    )
    for w in written:
        print(f"{w.folder}\t{w.files} files\t{w.study_instance_uid}")
    print("SYNTHETIC data: phantoms, not patient data")
    return 0
