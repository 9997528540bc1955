"""Seconds per 512x512x208 study (0.5 x 0.5 x 1 mm, like the seed study) and peak memory.

Two networks through the daemon's own path (daemon.segment: reorient, resample,
normalise, sliding window with Gaussian blending, postprocess, back to the grid):

- the committed DEMO model (models/demo-brain-mets, 1.5 mm grid, 64^3 patches);
- a UNETR-sized network with random weights: MONAI UNETR as in the seed study
  (img 96^3, feature 16, hidden 768, mlp 3072, 12 heads, instance norm, 2 classes),
  exported to ONNX here (opset 17, dynamo=False), run at native resolution.

When MONAI is installed (a dev dependency only), the same network and input also
run through MONAI's `sliding_window_inference` in PyTorch, and both outputs are
compared. Each stage runs in its own process so that its peak memory is its own.

    .venv/bin/python bench/inference.py --quick          # minutes: UNETR CPU time extrapolated from a few patches
    .venv/bin/python bench/inference.py                  # the whole study on every path (long on 2 cores)
    .venv/bin/python bench/inference.py --providers cuda # add the GPU figures (CUDA / TensorRT provider)

The last line is `inference seconds full_size demo_cpu=<a> unetr_cpu=<b> unetr_gpu=<c or n/a>`.
All inputs are SYNTHETIC (a phantom for the demo model, noise for UNETR).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daemon.segment import load_model, segment  # noqa: E402
from daemon.segment.runtime import CPU, LoadedModel  # noqa: E402
from daemon.segment.sliding_window import sliding_window, windows  # noqa: E402
from daemon.volume import SliceRef, Volume  # noqa: E402

FULL_SHAPE = (208, 512, 512)  # (k, j, i)
FULL_SPACING = (1.0, 0.5, 0.5)  # mm along (k, j, i)
UNETR_PATCH = 96


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def as_volume(array: np.ndarray) -> Volume:
    affine = np.zeros((4, 4))  # axial: k -> +z (S), j -> +y (P), i -> +x (L)
    affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = FULL_SPACING[0], FULL_SPACING[1], FULL_SPACING[2], 1.0
    affine[:3, 3] = (-128.0, -128.0, -104.0)
    slices = tuple(SliceRef(f"2.25.{k + 1}", "1.2.840.10008.5.1.4.1.1.4") for k in range(array.shape[0]))
    return Volume(array=array, affine=affine, slices=slices, frame_of_reference_uid="2.25.1", modality="MR")


def _timed_segment(volume: Volume, model: LoadedModel) -> float:
    t0 = time.perf_counter()
    segment(volume, model)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- demo model


def stage_phantom(args: argparse.Namespace) -> dict[str, Any]:
    from daemon.demo.phantom import Grid, brain_mr_phantom, random_brain_lesions

    grid = Grid(shape=FULL_SHAPE, spacing=FULL_SPACING)
    rng = np.random.default_rng(7)
    image = brain_mr_phantom(grid, random_brain_lesions(rng, count=6), seed=7).image
    np.save(Path(args.workdir) / "phantom.npy", image)
    return {}


def stage_demo(args: argparse.Namespace) -> dict[str, Any]:
    volume = as_volume(np.load(Path(args.workdir) / "phantom.npy"))
    out: dict[str, Any] = {}
    model = load_model(ROOT / "models" / "demo-brain-mets", providers="cpu", threads=args.threads)
    out["demo_cpu"] = _timed_segment(volume, model)
    out["demo_cpu_peak_mb"] = peak_mb()
    if args.providers != "cpu":
        gpu = load_model(ROOT / "models" / "demo-brain-mets", providers=args.providers)
        if gpu.provider != CPU:
            segment(volume, gpu)  # warm-up (kernels, TensorRT engine)
            out["demo_gpu"] = _timed_segment(volume, gpu)
            out["demo_gpu_provider"] = gpu.provider
    return out


# --------------------------------------------------------------------------- UNETR-sized network


def unetr_torch() -> Any:
    import torch
    from monai.networks.nets import UNETR

    torch.manual_seed(0)
    net = UNETR(in_channels=1, out_channels=2, img_size=UNETR_PATCH, feature_size=16, hidden_size=768,
                mlp_dim=3072, num_heads=12, norm_name="instance", res_block=True, dropout_rate=0.0)
    return net.eval()


def export_unetr(net: Any, folder: Path) -> float:
    import hashlib

    import torch
    import yaml

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, 1, UNETR_PATCH, UNETR_PATCH, UNETR_PATCH)
    with torch.no_grad():
        torch.onnx.export(net, (x,), str(folder / "model.onnx"), opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    manifest = {
        "name": "unetr-random", "version": "0", "intended_use": "benchmark only: random weights",
        "sha256": sha, "modality": "MR",
        "input": {"name": "image", "orientation": "RAS", "tensor_axes": "xyz", "spacing_mm": [0.5, 0.5, 1.0],
                  "patch_size": [UNETR_PATCH] * 3, "normalisation": {"method": "zscore", "mask": "nonzero"}},
        "output": {"name": "logits", "activation": "softmax", "decision": "argmax", "min_lesion_volume_mm3": 10.0,
                   "labels": [{"value": 1, "channel": 1, "name": "lesion", "role": "lesion",
                               "category": {"value": "49755003", "scheme": "SCT", "meaning": "Morphologically Altered Structure"},
                               "type": {"value": "14799000", "scheme": "SCT", "meaning": "Neoplasm, Metastatic"}}]},
        "inference": {"overlap": 0.25, "batch_size": 1},
        "licence": {"name": "none (random weights)"},
        "provenance": {"training": "none: random weights, MONAI UNETR as in the seed study"},
    }
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return time.perf_counter() - t0


class _NullSession:
    """Stands in for the network to time everything around it (pre/post, blending)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def run(self, _names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = next(iter(feeds.values()))
        return [np.zeros((x.shape[0], self.channels, *x.shape[2:]), dtype=np.float32)]


def _patches_full_size(model: LoadedModel) -> int:
    # the UNETR manifest is RAS / xyz at native spacing: the tensor is (i, j, k) = (512, 512, 208)
    return sum(1 for _ in windows((FULL_SHAPE[2], FULL_SHAPE[1], FULL_SHAPE[0]), (UNETR_PATCH,) * 3,
                                  model.manifest.inference.overlap))


def _per_patch(model: LoadedModel, repeats: int) -> float:
    x = np.random.default_rng(0).normal(size=(1, 1, UNETR_PATCH, UNETR_PATCH, UNETR_PATCH)).astype(np.float32)
    model.session.run([model.output_name], {model.input_name: x})  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        model.session.run([model.output_name], {model.input_name: x})
    return (time.perf_counter() - t0) / repeats


def _unetr_cpu(args: argparse.Namespace, folder: Path, volume: Volume, out: dict[str, Any]) -> None:
    from dataclasses import replace

    model = load_model(folder, providers="cpu", threads=args.threads)
    n = _patches_full_size(model)
    out["unetr_patches"] = n
    out["unetr_cpu_per_patch"] = _per_patch(model, 2 if args.quick else 3)
    if args.quick:
        overhead = _timed_segment(volume, replace(model, session=_NullSession(2)))
        out["unetr_cpu_overhead"] = overhead
        out["unetr_cpu"] = overhead + n * out["unetr_cpu_per_patch"]
        out["unetr_cpu_estimated"] = True
    else:
        out["unetr_cpu"] = _timed_segment(volume, model)
        out["unetr_cpu_estimated"] = False
    out["unetr_cpu_peak_mb"] = peak_mb()


def _unetr_gpu(args: argparse.Namespace, folder: Path, volume: Volume, out: dict[str, Any]) -> None:
    model = load_model(folder, providers=args.providers)
    if model.provider == CPU:
        return
    out["unetr_gpu_provider"] = model.provider
    out["unetr_gpu_per_patch"] = _per_patch(model, 5)
    out["unetr_gpu"] = _timed_segment(volume, model)


def _monai_compare(args: argparse.Namespace, net: Any, folder: Path, out: dict[str, Any]) -> None:
    import torch
    from monai.inferers import sliding_window_inference

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    # the same normalised tensor through both; quick: a slab of 2 windows, full: the whole study
    shape = (96, 160, 96) if args.quick else (FULL_SHAPE[2], FULL_SHAPE[1], FULL_SHAPE[0])
    x = np.random.default_rng(1).normal(size=(1, 1, *shape)).astype(np.float32)
    model = load_model(folder, providers="cpu", threads=args.threads)
    run = lambda b: model.session.run([model.output_name], {model.input_name: b})[0]  # noqa: E731
    t0 = time.perf_counter()
    ours = sliding_window(x[0], (UNETR_PATCH,) * 3, run, overlap=0.25, batch_size=1)
    out["compare_ours_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = sliding_window_inference(torch.from_numpy(x), UNETR_PATCH, 1, net, overlap=0.25,
                                       mode="gaussian", sigma_scale=0.125)
    out["compare_monai_s"] = time.perf_counter() - t0
    ref_np = ref.numpy()[0] if hasattr(ref, "numpy") else np.asarray(ref)[0]
    out["compare_shape"] = list(shape)
    out["compare_windows"] = sum(1 for _ in windows(shape, (UNETR_PATCH,) * 3, 0.25))
    out["compare_max_abs_diff"] = float(np.abs(ours - ref_np).max())
    out["compare_mean_abs_diff"] = float(np.abs(ours - ref_np).mean())
    out["compare_argmax_agreement"] = float((ours.argmax(0) == ref_np.argmax(0)).mean())
    out["compare_logit_range"] = float(np.abs(ref_np).max())


def stage_export(args: argparse.Namespace) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("monai") is None or importlib.util.find_spec("einops") is None:
        return {"unetr_error": "MONAI/einops not installed (pip install monai einops: dev group)"}
    from daemon.segment.onnx_header import read_header

    net = unetr_torch()
    folder = Path(args.workdir) / "unetr"
    seconds = export_unetr(net, folder)
    header = read_header(folder / "model.onnx")
    return {
        "unetr_parameters": sum(p.numel() for p in net.parameters()),
        "unetr_export_s": seconds,
        "unetr_onnx_ir_opset": f"{header.ir_version}/{header.default_opset}",
        "unetr_onnx_mb": (folder / "model.onnx").stat().st_size / 1e6,
    }


def stage_unetr(args: argparse.Namespace) -> dict[str, Any]:
    """ONNX Runtime only (no torch in this process): the peak memory is the pipeline's."""
    out: dict[str, Any] = {}
    folder = Path(args.workdir) / "unetr"
    volume = as_volume(np.random.default_rng(0).normal(100, 20, FULL_SHAPE).astype(np.float32))
    _unetr_cpu(args, folder, volume, out)
    if args.providers != "cpu":
        _unetr_gpu(args, folder, volume, out)
    return out


def stage_monai(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _monai_compare(args, unetr_torch(), Path(args.workdir) / "unetr", out)  # same seed: the same weights
    return out


STAGES = {"phantom": stage_phantom, "demo": stage_demo, "export": stage_export, "unetr": stage_unetr,
          "monai": stage_monai}


# --------------------------------------------------------------------------- driver


def run_stage(name: str, argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--stage", name, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]))
    sys.stderr.write(proc.stderr[-4000:])
    return {f"{name}_error": f"stage failed (exit {proc.returncode})"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="extrapolate the UNETR CPU time from a few patches")
    ap.add_argument("--providers", choices=["auto", "cpu", "cuda", "tensorrt"], default="auto")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime / torch threads (0: all cores)")
    ap.add_argument("--no-monai", action="store_true", help="skip the MONAI sliding_window_inference comparison")
    ap.add_argument("--only", choices=["demo", "unetr"], help="run one network")
    ap.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        result = STAGES[args.stage](args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    argv = [a for a in sys.argv[1:] if not a.startswith("--only")]
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "quick": args.quick}
    plan = {"demo": ["phantom", "demo"], "unetr": ["export", "unetr"] + ([] if args.no_monai else ["monai"])}
    with tempfile.TemporaryDirectory(prefix="nadir-bench-") as workdir:
        for network, stages in plan.items():
            if args.only not in (None, network):
                continue
            for name in stages:
                results.update(run_stage(name, [*argv, "--workdir", workdir]))
                if any(k.endswith("_error") for k in results):
                    break
    for key, value in sorted(results.items()):
        print(f"{key}: {_fmt(value)}")
    demo_cpu = results.get("demo_cpu")
    unetr_cpu = results.get("unetr_cpu")
    unetr_gpu = results.get("unetr_gpu")
    print(
        "inference seconds full_size "
        f"demo_cpu={_fmt(demo_cpu) if demo_cpu is not None else 'n/a'} "
        f"unetr_cpu={_fmt(unetr_cpu) if unetr_cpu is not None else 'n/a'} "
        f"unetr_gpu={_fmt(unetr_gpu) if unetr_gpu is not None else 'n/a'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
