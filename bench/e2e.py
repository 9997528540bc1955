"""End to end, brain-metastases and liver-metastases routes: last instance sent -> Nadir's SR stored at Orthanc.

Real peers on loopback (daemon/demo/peers.py): Orthanc as the PACS, `nadir serve`
(1 worker, settle time 2 s, which is part of the figure), dcmtk storescu as the
modality. Per study of the SYNTHETIC demo patient: the small phantom's three
timepoints (80x200x176, 2x1x1 mm) and the full-size baseline (512x512x208 at
0.5x0.5x1 mm, the seed study's acquisition), with the model the route names
(default the demo model; `--model DIR` for another, e.g. a UNETR-sized export).

    .venv/bin/python bench/e2e.py [--model models/demo-brain-mets] [--skip-full]

The liver route (demo liver model) runs on the SYNTHETIC liver patient's full-size
baseline CT: 512x512 at 2.5 mm slices over 40 cm (160 slices), on the CPU.

The last line is
    e2e seconds full_size cpu=<x> gpu=<y or n/a> liver_cpu=<z>
(gpu: n/a unless ONNX Runtime here has a CUDA provider and --gpu is given; liver_cpu:
n/a with --skip-full).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.demo.peers import NadirNode, Orthanc  # noqa: E402
from daemon.demo.response_patient import DATES, GRIDS, POSES, SCRIPT, write_study, write_timepoints  # noqa: E402
from daemon.demo.run import process  # noqa: E402


def _routing_with(model: str, providers: str, workdir: Path) -> Path:
    """The shipped routing rules with the brain route's model and providers replaced."""
    text = (REPO / "rules" / "routing.yaml").read_text()
    text = text.replace("model: demo-brain-mets", f"model: {model}\n      providers: {providers}", 1)
    path = workdir / "routing.yaml"
    path.write_text(text)
    for name in ("rano_bm.yaml",):
        shutil.copy(REPO / "rules" / name, workdir / name)
    return path


def run(workdir: Path, model: str, providers: str, full: bool) -> tuple[list[tuple[str, float]], float | None]:
    studies = write_timepoints(workdir / "studies", "small")
    big = None
    if full:
        lesions = [tpl.scaled(scales[0]) for tpl, scales in SCRIPT.values()]
        t = time.monotonic()
        big = write_study(workdir / "studies", "full-baseline", lesions, DATES[0], POSES[0], GRIDS["full"],
                          seed=7, expected="BASELINE")
        print(f"wrote the full-size study ({big.files} files) in {time.monotonic() - t:.0f} s", flush=True)
    rules = _routing_with(model, providers, workdir)
    pacs = Orthanc(workdir / "orthanc")
    node = NadirNode(workdir / "nadir", pacs_port=pacs.dicom_port,
                     extra_env={"NADIR_ROUTING__RULES_FILE": str(rules)})
    pacs.nadir_port = node.port
    out: list[tuple[str, float]] = []
    full_s = None
    try:
        pacs.start()
        node.start()
        for s in studies:
            r = process(pacs, node, s, timeout_s=600)
            out.append((s.name, r.latency_s))
            print(f"small {s.name}: {r.latency_s:.1f} s ({r.summary.category})", flush=True)
        if big is not None:
            r = process(pacs, node, big, timeout_s=900)
            full_s = r.latency_s
            print(f"full-size baseline: {full_s:.1f} s ({r.summary.category}, {len(r.summary.back.lesions)} lesions)",
                  flush=True)
    finally:
        node.stop()
        pacs.stop()
    return out, full_s


def run_liver(workdir: Path) -> float:
    """The liver route on the full-size baseline CT (CPU); seconds from last instance to SR."""
    from daemon.demo.run import liver_timepoints

    t = time.monotonic()
    study = liver_timepoints(workdir / "studies", "full")[0]
    print(f"wrote the full-size liver CT ({study.files} files) in {time.monotonic() - t:.0f} s", flush=True)
    pacs = Orthanc(workdir / "orthanc")
    node = NadirNode(workdir / "nadir", pacs_port=pacs.dicom_port)
    pacs.nadir_port = node.port
    try:
        pacs.start()
        node.start()
        r = process(pacs, node, study, timeout_s=900)
    finally:
        node.stop()
        pacs.stop()
    print(f"liver full-size baseline: {r.latency_s:.1f} s ({r.summary.assessments}, "
          f"{len(r.summary.back.lesions)} lesions)", flush=True)
    return r.latency_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo-brain-mets", help="model folder name under models/, or a path")
    parser.add_argument("--skip-full", action="store_true", help="only the small phantom")
    parser.add_argument("--gpu", action="store_true", help="also run with providers=cuda (needs a GPU)")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nadir-bench-e2e-"))
    cpu_full: float | None = None
    gpu_full: float | None = None
    liver_full: float | None = None
    try:
        print(f"CPU ({os.cpu_count()} cores), model {args.model}", flush=True)
        _, cpu_full = run(work / "cpu", args.model, "cpu", not args.skip_full)
        if args.gpu:
            _, gpu_full = run(work / "gpu", args.model, "cuda", not args.skip_full)
        if not args.skip_full:
            liver_full = run_liver(work / "liver")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    cpu = f"{cpu_full:.1f}" if cpu_full is not None else "n/a"
    gpu = f"{gpu_full:.1f}" if gpu_full is not None else "n/a"
    liver = f"{liver_full:.1f}" if liver_full is not None else "n/a"
    print(f"e2e seconds full_size cpu={cpu} gpu={gpu} liver_cpu={liver}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
