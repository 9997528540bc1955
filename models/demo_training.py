"""What the demo models' train.py scripts share (NOT FOR CLINICAL USE).

The small 3D U-Net (the normalisation layer and the number of outputs are each model's),
the training loop (AdamW with a one-cycle schedule, fixed seeds), the ONNX export (opset 17,
IR 8), the filling of model.yaml from model.yaml.in, and the command line: train and export,
then calibrate and evaluate through the daemon, writing the manifest after each step.
Each script keeps what is its own: phantoms, crops, loss, calibration, evaluation, figures.

A script imports it as `models.demo_training` (it puts the repository root on sys.path).
PyTorch is needed here only, as in the scripts.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import yaml
from torch import nn

T = TypeVar("T")
Batch = tuple[torch.Tensor, torch.Tensor]  # images (N, 1, k, j, i), targets (N, outputs, k, j, i)
# (net, images, targets) -> (loss, Dice loss per output or over all, for the log)
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Metrics = dict[str, Any]


class DemoUNet(nn.Module):
    """A 3-level 3D U-Net, c-2c-4c channels (8-16-32: about 90 k parameters); logits out.

    `norm(channels)` makes each block's normalisation layer.
    """

    def __init__(self, norm: Callable[[int], nn.Module], out: int = 1, c: int = 8) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv3d(i, o, 3, padding=1), norm(o), nn.LeakyReLU(0.1),
                nn.Conv3d(o, o, 3, padding=1), norm(o), nn.LeakyReLU(0.1),
            )

        # the order of construction is the order of the seeded initialisation: keep it
        self.enc1 = block(1, c)
        self.enc2 = block(c, 2 * c)
        self.enc3 = block(2 * c, 4 * c)
        self.down = nn.MaxPool3d(2)
        self.up3 = nn.ConvTranspose3d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = block(4 * c, 2 * c)
        self.up2 = nn.ConvTranspose3d(2 * c, c, 2, stride=2)
        self.dec1 = block(2 * c, c)
        self.head = nn.Conv3d(c, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.down(e1))
        e3 = self.enc3(self.down(e2))
        d2 = self.dec2(torch.cat([self.up3(e3), e2], 1))
        d1 = self.dec1(torch.cat([self.up2(d2), e1], 1))
        logits: torch.Tensor = self.head(d1)
        return logits


def train(seed: int, data: Callable[[], list[T]], network: Callable[[], nn.Module],
          sample: Callable[[np.random.Generator, list[T], int], Batch], objective: Objective,
          iterations: int, batch: int, lr: float, freeze_norm: float | None = None) -> nn.Module:
    """The network trained on crops `sample` draws from `data()`, deterministically from `seed`.

    From `freeze_norm` (a fraction of the steps) on, batch norm uses its running statistics.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    cases = data()
    print(f"{len(cases)} training phantoms in {time.time() - t0:.0f} s", flush=True)
    net = network()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iterations, pct_start=0.1)
    t0 = time.time()
    for it in range(iterations):
        if freeze_norm is not None and it == int(freeze_norm * iterations):
            # the last steps train against the statistics inference uses
            for m in net.modules():
                if isinstance(m, nn.BatchNorm3d):
                    m.eval()
        x, y = sample(rng, cases, batch)
        loss, dice = objective(net, x, y)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        sched.step()
        if it % 50 == 0 or it == iterations - 1:
            d = " ".join(f"{v:.3f}" for v in dice.reshape(-1).tolist())
            print(f"it {it} loss {loss.item():.3f} dice-loss {d} {time.time() - t0:.0f} s", flush=True)
    return net


def export(net: nn.Module, path: Path, patch: tuple[int, int, int]) -> None:
    """The network as ONNX (opset 17, IR 8, any batch and window size), traced on a `patch` window."""
    import onnx

    net.eval()
    x = torch.zeros(1, 1, *patch)
    torch.onnx.export(
        net, (x,), str(path), opset_version=17, dynamo=False,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch", 2: "d", 3: "h", 4: "w"}, "logits": {0: "batch", 2: "d", 3: "h", 4: "w"}},
    )
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, 8)
    model.doc_string = "DEMO ONLY - trained on synthetic phantoms - NOT FOR CLINICAL USE"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_manifest(folder: Path, values: Mapping[str, str], *, version: str, iterations: int, batch: int,
                   n_train: int) -> None:
    """folder/model.yaml from folder/model.yaml.in: each {key} replaced by its value.

    Added to `values`: the checksum of folder/model.onnx, the version, the training's settings
    and the PyTorch version. The result must parse as YAML.
    """
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    text = (folder / "model.yaml.in").read_text()
    common = {"sha256": sha, "version": version, "iterations": str(iterations), "batch": str(batch),
              "torch": torch.__version__, "n_train": str(n_train), "last_seed": str(n_train - 1)}
    for k, v in {**values, **common}.items():
        text = text.replace("{" + k + "}", v)
    yaml.safe_load(text)
    (folder / "model.yaml").write_text(text)


def main(description: str, folder: Path, *, iterations: int, train: Callable[[int, int], nn.Module],
         patch: tuple[int, int, int], provisional: Metrics, calibrate: Callable[[Path], Metrics],
         evaluate: Callable[[Path], Metrics], manifest: Callable[[Path, Metrics, int, int], None]) -> int:
    """Train and export (unless --evaluate), then calibrate and evaluate, writing the manifest each time.

    `manifest(folder, metrics, iterations, batch)` writes model.yaml: first with the `provisional`
    figures (the checksum, so that the daemon loads the network), then with the calibration,
    then with the evaluation.
    """
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--iterations", type=int, default=iterations)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--evaluate", action="store_true", help="only calibrate and evaluate the committed model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.evaluate:
        started = time.time()
        net = train(args.iterations, args.batch)
        export(net, folder / "model.onnx", patch)
        print(f"trained and exported in {time.time() - started:.0f} s", flush=True)
    manifest(folder, provisional, args.iterations, args.batch)  # checksum first, figures after
    calibration = calibrate(folder)
    print(calibration, flush=True)
    manifest(folder, {**provisional, **calibration}, args.iterations, args.batch)  # the measured thresholds
    metrics = {**calibration, **evaluate(folder)}
    print(metrics, flush=True)
    manifest(folder, metrics, args.iterations, args.batch)
    return 0
