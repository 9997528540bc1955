"""Train, export and evaluate the DEMO brain-metastasis segmenter (NOT FOR CLINICAL USE).

Everything here is SYNTHETIC: the network is trained and evaluated only on the
phantoms of `daemon.demo.phantom` (MNI152 2009a T1 background with enhancing
ellipsoid lesions). It exists so that the pipeline, the tests and the demo run
end to end with a real network; it has never seen a patient.

    .venv/bin/python models/demo-brain-mets/train.py            # train, export, evaluate, write model.yaml
                                                                # (about 14 min wall on a busy 2-core machine)
    .venv/bin/python models/demo-brain-mets/train.py --evaluate # evaluate the committed model.onnx only

PyTorch (CPU build) is needed here only; the daemon runs the exported ONNX file
with ONNX Runtime. Deterministic: fixed seeds, one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from daemon.demo.phantom import Grid, Pose, brain_mr_phantom, random_brain_lesions  # noqa: E402
from daemon.segment.preprocess import normalise  # noqa: E402
from daemon.volume import SliceRef, Volume  # noqa: E402

NAME = "demo-brain-mets"
VERSION = "0.1.0"
SEED = 20261125
SPACING = 1.5  # mm, isotropic model grid
PATCH = 64  # inference patch (voxels)
CROP = 40  # training crop (voxels)
GRID = Grid(shape=(120, 148, 124), spacing=(SPACING, SPACING, SPACING))  # 180 x 222 x 186 mm
EVAL_GRID = Grid(shape=(176, 224, 184), spacing=(1.0, 1.0, 1.0))
N_TRAIN = 24
N_EVAL = 6
EVAL_SEED0 = 10_000  # held-out phantoms use seeds from here (training uses 0..N_TRAIN-1)


class DemoUNet(nn.Module):
    """A 3-level 3D U-Net, 8-16-32 channels (about 90 k parameters)."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv3d(i, o, 3, padding=1), nn.InstanceNorm3d(o, affine=True), nn.LeakyReLU(0.1),
                nn.Conv3d(o, o, 3, padding=1), nn.InstanceNorm3d(o, affine=True), nn.LeakyReLU(0.1),
            )

        self.enc1 = block(1, c)
        self.enc2 = block(c, 2 * c)
        self.enc3 = block(2 * c, 4 * c)
        self.down = nn.MaxPool3d(2)
        self.up3 = nn.ConvTranspose3d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = block(4 * c, 2 * c)
        self.up2 = nn.ConvTranspose3d(2 * c, c, 2, stride=2)
        self.dec1 = block(2 * c, c)
        self.head = nn.Conv3d(c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.down(e1))
        e3 = self.enc3(self.down(e2))
        d2 = self.dec2(torch.cat([self.up3(e3), e2], 1))
        d1 = self.dec1(torch.cat([self.up2(d2), e1], 1))
        return self.head(d1)  # logits


def phantom(seed: int, grid: Grid, lesions: int | None = None) -> tuple[np.ndarray, np.ndarray, object]:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, 9)) if lesions is None else lesions
    les = random_brain_lesions(rng, count=count, diameter_mm=(3.0, 30.0))
    pose = Pose(
        rotation_deg=tuple(float(a) for a in rng.uniform(-10, 10, 3)),  # type: ignore[arg-type]
        translation_mm=tuple(float(t) for t in rng.uniform(-8, 8, 3)),  # type: ignore[arg-type]
    )
    ph = brain_mr_phantom(grid, les, pose=pose, seed=seed, noise=float(rng.uniform(0.01, 0.04)))
    return ph.image, ph.labels, ph.truth


SOURCE_SPACINGS = [(1.5, 1.5, 1.5), (1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 0.75, 0.75)]


def training_set() -> list[tuple[np.ndarray, np.ndarray]]:
    """Phantoms on several native grids, brought to the model grid by the daemon's own resampling."""
    from daemon.segment.preprocess import model_shape, resample

    fov = np.array(GRID.shape) * SPACING
    data = []
    for s in range(N_TRAIN):
        sp = SOURCE_SPACINGS[s % len(SOURCE_SPACINGS)]
        shape = tuple(int(round(f / d)) for f, d in zip(fov, sp, strict=True))
        image, labels, _ = phantom(s, Grid(shape=shape, spacing=sp))  # type: ignore[arg-type]
        target = model_shape(image.shape, sp, (SPACING,) * 3)
        x = normalise(resample(image.astype(np.float32), target), _norm())
        y = resample((labels > 0).astype(np.float32), target) >= 0.5
        data.append((x, y.astype(np.float32)))
    return data


def _norm():  # type: ignore[no-untyped-def]
    from daemon.segment.manifest import Normalisation

    return Normalisation(method="zscore", mask="foreground")


def sample(rng: np.random.Generator, data: list[tuple[np.ndarray, np.ndarray]], batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for _ in range(batch):
        image, mask = data[int(rng.integers(len(data)))]
        shape = np.array(image.shape)
        fg = np.argwhere(mask > 0) if rng.random() < 0.5 else np.empty((0, 3))
        if len(fg):
            centre = fg[int(rng.integers(len(fg)))] + rng.integers(-CROP // 4, CROP // 4 + 1, 3)
        else:
            centre = rng.integers(CROP // 2, shape - CROP // 2)
        lo = np.clip(centre - CROP // 2, 0, shape - CROP)
        sl = tuple(slice(int(a), int(a) + CROP) for a in lo)
        x, y = image[sl], mask[sl]
        for ax in range(3):  # flips (the task is symmetric enough)
            if rng.random() < 0.5:
                x, y = np.flip(x, ax), np.flip(y, ax)
        x = x * np.float32(rng.uniform(0.9, 1.1)) + np.float32(rng.normal(0, 0.05))
        xs.append(np.ascontiguousarray(x)[None])
        ys.append(np.ascontiguousarray(y)[None])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def train(iterations: int, batch: int) -> DemoUNet:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    t0 = time.time()
    data = training_set()
    print(f"{N_TRAIN} training phantoms in {time.time() - t0:.0f} s", flush=True)
    net = DemoUNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=iterations, pct_start=0.1)
    bce = nn.BCEWithLogitsLoss()
    t0 = time.time()
    for it in range(iterations):
        x, y = sample(rng, data, batch)
        logits = net(x)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = bce(logits, y) + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 50 == 0 or it == iterations - 1:
            print(f"it {it} loss {loss.item():.3f} dice-loss {dice.item():.3f} {time.time() - t0:.0f} s", flush=True)
    return net


def export(net: DemoUNet, path: Path) -> None:
    import onnx

    net.eval()
    x = torch.zeros(1, 1, PATCH, PATCH, PATCH)
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


def as_volume(image: np.ndarray, affine: np.ndarray) -> Volume:
    slices = tuple(SliceRef(f"2.25.{k + 1}", "1.2.840.10008.5.1.4.1.1.4") for k in range(image.shape[0]))
    return Volume(array=image, affine=affine, slices=slices, frame_of_reference_uid="2.25.1", modality="MR")


def evaluate(folder: Path, n: int = N_EVAL, grid: Grid = EVAL_GRID) -> dict[str, float]:
    """Dice and lesion detection on held-out phantoms, through the daemon's own ONNX path."""
    from scipy import ndimage

    from daemon.segment import load_model, segment

    model = load_model(folder, providers="cpu")
    dices, found, total, fps, secs = [], 0, 0, 0, []
    for s in range(n):
        image, labels, truth = phantom(EVAL_SEED0 + s, grid)
        t0 = time.time()
        pred = segment(as_volume(image, truth.affine), model).labels > 0  # type: ignore[attr-defined]
        secs.append(time.time() - t0)
        gt = labels > 0
        dices.append(2 * float((pred & gt).sum()) / max(1.0, float(pred.sum() + gt.sum())))
        for les in truth.lesions:  # type: ignore[attr-defined]
            if les.max_3d_diameter_mm >= 5.0:
                total += 1
                found += bool(pred[labels == les.label].any())
        comp, k = ndimage.label(pred, structure=np.ones((3, 3, 3)))
        fps += sum(1 for c in range(1, k + 1) if not gt[comp == c].any())
        print(f"held-out {s}: dice {dices[-1]:.3f} ({secs[-1]:.1f} s)", flush=True)
    return {
        "dice": float(np.mean(dices)), "dice_min": float(np.min(dices)), "found": found, "lesions": total,
        "false_positives": fps, "cases": n, "seconds": float(np.mean(secs)),
    }


def write_manifest(folder: Path, metrics: dict[str, float], iterations: int, batch: int) -> None:
    path = folder / "model.yaml"
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    text = (HERE / "model.yaml.in").read_text()
    values = {
        "sha256": sha, "version": VERSION, "dice": f"{metrics['dice']:.3f}", "dice_min": f"{metrics['dice_min']:.3f}",
        "found": str(metrics["found"]),
        "sensitivity": f"{metrics['found'] / max(1, metrics['lesions']):.3f}", "lesions": str(metrics["lesions"]), "fps": str(metrics["false_positives"]),
        "cases": str(metrics["cases"]), "iterations": str(iterations), "batch": str(batch),
        "torch": torch.__version__, "n_train": str(N_TRAIN), "last_seed": str(N_TRAIN - 1),
    }
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    yaml.safe_load(text)
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=1300)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--evaluate", action="store_true", help="only evaluate the committed model")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.evaluate:
        net = train(args.iterations, args.batch)
        export(net, HERE / "model.onnx")
    provisional = {"dice": 0, "dice_min": 0, "found": 0, "lesions": 1, "false_positives": 0, "cases": 1}
    write_manifest(HERE, provisional, args.iterations, args.batch)  # checksum first, figures after
    metrics = evaluate(HERE)
    print(metrics)
    write_manifest(HERE, metrics, args.iterations, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
