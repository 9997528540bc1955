"""Train, export and evaluate the DEMO brain-metastasis segmenter (NOT FOR CLINICAL USE).

Everything here is SYNTHETIC: the network is trained and evaluated only on the
phantoms of `daemon.demo.phantom` (MNI152 2009a T1 background with enhancing
ellipsoid lesions). It exists so that the pipeline, the tests and the demo run
end to end with a real network; it has never seen a patient.

    .venv/bin/python models/demo-brain-mets/train.py            # train, export, calibrate, evaluate, write model.yaml
                                                                # (about 7 min training + 3 min the rest, busy 2-core machine)
    .venv/bin/python models/demo-brain-mets/train.py --evaluate # calibrate and evaluate the committed model.onnx only

The decision threshold written to model.yaml is measured, not assumed (sigmoid
outputs of a network trained on lesion-centred crops are not calibrated
probabilities: version 0.1.0 at 0.5 drew the boundary up to 0.6 mm outside the
true one). On calibration phantoms (seeds 20000+, 2x1x1 and 1 mm grids, neither
trained nor evaluated on) the probabilities are computed through daemon.segment;
per lesion >= 5 mm and threshold, the mean boundary offset is (predicted - true
volume) / true surface area; the threshold whose median offset is closest to zero
is kept. Dice and detection are then measured with it on the separate held-out
phantoms (seeds 10000+), and false positives on full-size phantoms (512x512x208
at 0.5x0.5x1 mm, seeds 10100+).

The U-Net (instance norm, one output), the training loop, the export and the command
line are models/demo_training.py's, shared with the liver model; what is this model's is
here. PyTorch (CPU build) is needed here only; the daemon runs the exported ONNX file
with ONNX Runtime. Deterministic: fixed seeds, one thread.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from daemon.demo.phantom import Grid, Pose, brain_mr_phantom, random_brain_lesions  # noqa: E402
from daemon.segment.preprocess import normalise  # noqa: E402
from daemon.volume import SliceRef, Volume  # noqa: E402
from models import demo_training  # noqa: E402

NAME = "demo-brain-mets"
VERSION = "0.2.0"
SEED = 20261125
SPACING = 1.5  # mm, isotropic model grid
PATCH = 64  # inference patch (voxels)
CROP = 40  # training crop (voxels)
GRID = Grid(shape=(120, 148, 124), spacing=(SPACING, SPACING, SPACING))  # 180 x 222 x 186 mm
EVAL_GRID = Grid(shape=(176, 224, 184), spacing=(1.0, 1.0, 1.0))
N_TRAIN = 24
N_EVAL = 6
EVAL_SEED0 = 10_000  # held-out phantoms use seeds from here (training uses 0..N_TRAIN-1)
# Wide fields of view with air around the head, like the full-size acquisition (208 x 256 x 256 mm):
# without them the network never sees a window border in air and fires there (FPs on full-size studies).
N_WIDE = 8
WIDE_FOV = (208.0, 256.0, 256.0)
WIDE_SPACINGS = [(1.0, 0.5, 0.5), (1.5, 1.5, 1.5), (1.0, 1.0, 1.0), (2.0, 1.0, 1.0)]
CAL_SEED0 = 20_000  # calibration phantoms (threshold)
CAL_GRIDS = [Grid(shape=(80, 200, 176), spacing=(2.0, 1.0, 1.0)), Grid(shape=(176, 224, 184), spacing=(1.0, 1.0, 1.0))]
N_CAL = 6
THRESHOLDS = tuple(round(0.30 + 0.05 * n, 2) for n in range(13))  # 0.30 .. 0.90
FULL_GRID = Grid(shape=(208, 512, 512), spacing=(1.0, 0.5, 0.5))
FULL_SEED0 = 10_100
N_FULL = 2


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
    """Phantoms on several native grids, brought to the model grid by the daemon's own resampling.

    Seeds 0..N_TRAIN-1 on a field of view about the size of the head; seeds N_TRAIN..N_TRAIN+N_WIDE-1
    on the full-size acquisition's field of view (air around the head, as the seed study's 512x512x208).
    """
    from daemon.segment.preprocess import model_shape, resample

    fov = np.array(GRID.shape) * SPACING
    data = []
    for s in range(N_TRAIN + N_WIDE):
        if s < N_TRAIN:
            sp, f = SOURCE_SPACINGS[s % len(SOURCE_SPACINGS)], fov
        else:
            sp, f = WIDE_SPACINGS[(s - N_TRAIN) % len(WIDE_SPACINGS)], np.array(WIDE_FOV)
        shape = tuple(int(round(a / d)) for a, d in zip(f, sp, strict=True))
        image, labels, _ = phantom(s, Grid(shape=shape, spacing=sp))  # type: ignore[arg-type]
        target = model_shape(image.shape, sp, (SPACING,) * 3)
        x = normalise(resample(image.astype(np.float32), target), _norm())
        y = resample((labels > 0).astype(np.float32), target) >= 0.5
        del image, labels
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


def network() -> demo_training.DemoUNet:
    return demo_training.DemoUNet(lambda channels: nn.InstanceNorm3d(channels, affine=True))


_BCE = nn.BCEWithLogitsLoss()


def objective(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary cross-entropy plus the soft Dice loss over the whole batch (and that Dice loss)."""
    logits = net(x)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    return _BCE(logits, y) + dice, dice


def train(iterations: int, batch: int) -> nn.Module:
    return demo_training.train(SEED, training_set, network, sample, objective, iterations, batch, lr=3e-3)


def as_volume(image: np.ndarray, affine: np.ndarray) -> Volume:
    slices = tuple(SliceRef(f"2.25.{k + 1}", "1.2.840.10008.5.1.4.1.1.4") for k in range(image.shape[0]))
    return Volume(array=image, affine=affine, slices=slices, frame_of_reference_uid="2.25.1", modality="MR")


def ellipsoid_area(semi_axes: tuple[float, float, float]) -> float:
    """Surface area of an ellipsoid (Knud Thomsen's formula, within about 1 %)."""
    a, b, c = semi_axes
    q = 1.6075
    return float(4 * np.pi * (((a * b) ** q + (a * c) ** q + (b * c) ** q) / 3) ** (1 / q))


def boundary_offsets(p: np.ndarray, labels: np.ndarray, truth: object, voxel_mm3: float,
                     thresholds: tuple[float, ...]) -> np.ndarray:
    """Per lesion >= 5 mm and threshold: (predicted - true volume) / true surface, in mm.

    This is how far, on average, the predicted boundary lies outside the true one (negative:
    inside); what a diameter reads is twice it. Predicted voxels count for a lesion within
    3 voxels of it.
    """
    from scipy import ndimage

    rows = []
    for les in truth.lesions:  # type: ignore[attr-defined]
        if les.max_3d_diameter_mm < 5.0:
            continue
        own = labels == les.label
        near = ndimage.binary_dilation(own, iterations=3) & ((labels == 0) | own)
        pn = p[near]
        area = ellipsoid_area(les.semi_axes_mm)
        rows.append([(float((pn >= t).sum()) - float(own.sum())) * voxel_mm3 / area for t in thresholds])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(thresholds))


def calibrate(folder: Path) -> dict[str, float]:
    """The threshold at which the predicted lesion boundary lies on the true one, on calibration phantoms.

    The network's probabilities are computed once per case through the daemon's own path
    (daemon.segment.segmenter.probabilities: resampled back to the source grid), then for each
    threshold of THRESHOLDS and each lesion >= 5 mm the mean boundary offset (predicted minus true
    volume, over the true surface area, in mm). Chosen: the threshold whose median offset over all
    lesions is closest to zero (lesions count equally, whatever their size).
    """
    from daemon.segment import load_model
    from daemon.segment.segmenter import probabilities

    model = load_model(folder, providers="cpu")
    offsets = []
    for s in range(N_CAL):
        grid = CAL_GRIDS[s % len(CAL_GRIDS)]
        image, labels, truth = phantom(CAL_SEED0 + s, grid)
        vol = as_volume(image, truth.affine)  # type: ignore[attr-defined]
        p = probabilities(vol, model)[0]
        offsets.append(boundary_offsets(p, labels, truth, vol.voxel_volume_mm3, THRESHOLDS))
    table = np.concatenate(offsets)
    median = np.median(table, axis=0)
    best = int(np.argmin(np.abs(median)))
    for n, t in enumerate(THRESHOLDS):
        print(f"threshold {t:.2f}: boundary offset median {median[n]:+.2f} mm "
              f"(quartiles {np.percentile(table[:, n], 25):+.2f} {np.percentile(table[:, n], 75):+.2f})", flush=True)
    return {"threshold": THRESHOLDS[best], "offset_mm": float(median[best]),
            "offset_at_0.5": float(median[THRESHOLDS.index(0.5)]), "cal_cases": N_CAL, "cal_lesions": len(table)}


def full_size_false_positives(folder: Path, n: int = N_FULL) -> tuple[int, int]:
    """False-positive components and lesions found (>= 5 mm) on full-size 512x512x208 phantoms."""
    from scipy import ndimage

    from daemon.segment import load_model, segment

    model = load_model(folder, providers="cpu")
    fps = missed = 0
    for s in range(n):
        image, labels, truth = phantom(FULL_SEED0 + s, FULL_GRID)
        pred = segment(as_volume(image, truth.affine), model).labels > 0  # type: ignore[attr-defined]
        gt = labels > 0
        comp, k = ndimage.label(pred, structure=np.ones((3, 3, 3)))
        hit = np.unique(comp[gt])
        fps += k - int(np.count_nonzero(hit))
        missed += sum(1 for les in truth.lesions if les.max_3d_diameter_mm >= 5.0  # type: ignore[attr-defined]
                      and not pred[labels == les.label].any())
        print(f"full-size {s}: {k} components, {k - int(np.count_nonzero(hit))} false positive", flush=True)
    return fps, missed


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


def _figures(metrics: dict[str, float]) -> dict[str, str]:
    keys = {"threshold": "{:.2f}", "offset_mm": "{:+.2f}", "offset_at_0.5": "{:+.2f}", "cal_cases": "{}",
            "cal_lesions": "{}",
            "full_fps": "{}", "full_cases": "{}", "full_missed": "{}"}
    return {k: fmt.format(metrics.get(k, 0)) for k, fmt in keys.items()}


def write_manifest(folder: Path, metrics: dict[str, Any], iterations: int, batch: int) -> None:
    values = {
        "dice": f"{metrics['dice']:.3f}", "dice_min": f"{metrics['dice_min']:.3f}", "found": str(metrics["found"]),
        "sensitivity": f"{metrics['found'] / max(1, metrics['lesions']):.3f}", "lesions": str(metrics["lesions"]),
        "fps": str(metrics["false_positives"]), "cases": str(metrics["cases"]),
        "n_wide": str(N_WIDE), "last_wide_seed": str(N_TRAIN + N_WIDE - 1), **_figures(metrics),
    }
    demo_training.write_manifest(folder, values, version=VERSION, iterations=iterations, batch=batch,
                                 n_train=N_TRAIN)


def measure(folder: Path) -> dict[str, Any]:
    """evaluate, and the false positives on full-size phantoms."""
    metrics: dict[str, Any] = evaluate(folder)
    fps, missed = full_size_false_positives(folder)
    return {**metrics, "full_fps": fps, "full_missed": missed, "full_cases": N_FULL}


def main() -> int:
    provisional: dict[str, Any] = {"dice": 0, "dice_min": 0, "found": 0, "lesions": 1, "false_positives": 0,
                                   "cases": 1, "threshold": 0.5, "cal_cases": N_CAL, "full_cases": N_FULL}
    return demo_training.main(__doc__ or "", HERE, iterations=1300, train=train, patch=(PATCH, PATCH, PATCH),
                              provisional=provisional, calibrate=calibrate, evaluate=measure,
                              manifest=write_manifest)


if __name__ == "__main__":
    raise SystemExit(main())
