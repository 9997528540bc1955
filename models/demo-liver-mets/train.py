"""Train, export and evaluate the DEMO liver-metastasis segmenter for portal-venous CT (NOT FOR CLINICAL USE).

Everything here is SYNTHETIC: the network is trained and evaluated only on the
torso phantoms of `daemon.demo.phantom.liver_ct_phantom` (geometric anatomy:
ellipsoid liver, spleen, kidneys, vessels, vertebra in HU; hypodense ellipsoid
metastases with textures, soft interfaces and rims; round lymph nodes in the
retroperitoneal fat), and on the mean of the frames of CT-perfusion phantoms
(`daemon.demo.perfusion_phantom`), the image the perfusion route segments. It exists
so that the liver route, its tests and the demo run end to end with a real network;
it has never seen a patient, and a real liver (lobes, vessels, cysts, perfusion
artefacts) would defeat it.

    .venv/bin/python models/demo-liver-mets/train.py            # train, export, calibrate, evaluate, write model.yaml
    .venv/bin/python models/demo-liver-mets/train.py --evaluate # calibrate and evaluate the committed model.onnx only

Three sigmoid outputs, region-based as nnU-Net's regions: the liver (parenchyma and
the metastases in it), the metastases, the lymph nodes. daemon.segment decides by
threshold with lesions over the organ, so the "Liver" label is the parenchyma and
each lesion label is its channel above its threshold. The thresholds are measured,
not assumed, one per output: on calibration phantoms (seeds 20000+) the
probabilities are computed through daemon.segment; per lesion >= 10 mm and
threshold, the long axis (the short axis for nodes) is read by daemon.measure on
the prediction and on the true mask alike, and the threshold whose median
difference is closest to zero is kept (the liver: the threshold of the best Dice). Dice per label, detection and long/short
axes (daemon.measure, as the pipeline measures) are then measured with them on
held-out phantoms (seeds 10000+).

The U-Net (batch norm, three outputs), the training loop, the export and the command
line are models/demo_training.py's, shared with the brain model; what is this model's is
here. PyTorch (CPU build) is needed here only; the daemon runs the exported ONNX file
with ONNX Runtime. Deterministic with fixed seeds on one thread; the committed model was
trained with --threads 2 (about 12 minutes here), which may round differently.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from daemon.demo import phantom as ph  # noqa: E402
from daemon.demo.phantom import Ellipsoid, Grid, liver_ct_phantom, phantom_volume, random_pose  # noqa: E402
from daemon.segment.manifest import Normalisation  # noqa: E402
from daemon.segment.preprocess import model_shape, normalise, resample  # noqa: E402
from models import demo_training  # noqa: E402

NAME = "demo-liver-mets"
VERSION = "0.2.0"
SEED = 20261204
SPACING_KJI = (2.5, 2.0, 2.0)  # mm, model grid along (k, j, i); the manifest lists (i, j, k)
PATCH = (48, 96, 96)  # inference patch (k, j, i)
CROP = (24, 40, 40)  # training crop (60 x 80 x 80 mm)
WINDOW = (-200.0, 300.0)  # HU window, scaled to [0, 1]
CHANNELS = ("liver", "metastasis", "node")  # sigmoid outputs; liver = parenchyma + metastases
POS_WEIGHT = (1.0, 1.0, 8.0)  # BCE weight of the positives, per output (nodes are rare and small)
FREEZE_NORM = 0.5  # from this fraction of the steps on, batch norm uses its running statistics
N_TRAIN = 30
N_PERFUSION = 8  # averaged CT-perfusion phantoms (seeds PERFUSION_SEED0+), as the perfusion route segments them
PERFUSION_SEED0 = 30_000
PERFUSION_SPACINGS = [(2.5, 3.5, 3.5), (2.5, 5.0, 5.0), (2.5, 2.0, 2.0), (5.0, 2.5, 2.5)]
WIDTH = 16  # channels of the first level (16-32-64)
SOURCE_SPACINGS = [(2.0, 1.5, 1.5), (3.0, 2.8, 2.8), (2.5, 2.0, 2.0), (1.5, 1.2, 1.2), (5.0, 1.0, 1.0),
                   (2.5, 0.78125, 0.78125)]
EVAL_SEED0 = 10_000  # held-out phantoms (training uses 0..N_TRAIN-1)
N_EVAL = 6
EVAL_SPACINGS = [(2.5, 0.78125, 0.78125), (3.0, 2.8, 2.8), (2.0, 1.0, 1.0)]
CAL_SEED0 = 20_000  # calibration phantoms (threshold), neither trained nor evaluated on
N_CAL = 6
CAL_SPACINGS = [(2.5, 1.5, 1.5), (3.0, 2.8, 2.8)]
THRESHOLDS = tuple(round(0.15 + 0.05 * n, 2) for n in range(15))  # 0.15 .. 0.85
FOV_MM = (250.0, 400.0, 400.0)  # k, j, i: the upper abdomen, liver dome to kidneys


def network() -> demo_training.DemoUNet:
    """The U-Net with batch norm (folded at export), one output per channel of CHANNELS.

    Batch norm rather than instance norm: with fixed statistics each voxel's output does not
    depend on what else the window holds, and CT's absolute HU (liver 110 vs spleen 120) stay
    meaningful.
    """
    net = demo_training.DemoUNet(nn.BatchNorm3d, out=len(CHANNELS), c=WIDTH)
    assert net.head.bias is not None
    with torch.no_grad():  # prior probabilities: lesions are rare (RetinaNet's trick; no early flood)
        net.head.bias.copy_(torch.tensor([-2.0] + [-4.6] * (len(CHANNELS) - 1)))
    return net


# --------------------------------------------------------------------------- phantoms


def _look(rng: np.random.Generator, les: Ellipsoid) -> Ellipsoid:
    """A random portal-venous look: Chun's groups 1-3 (daemon.demo.phantom.random_look) or sharp at any HU."""
    if les.kind == "node":
        return dataclasses.replace(les, intensity=float(rng.uniform(30, 60)))
    if rng.random() < 0.85:
        return les.textured(ph.random_look(rng)[1])
    return dataclasses.replace(les, intensity=float(rng.uniform(25, 85)))


# where lymph nodes may lie: the phantom's retroperitoneal fat (what remains of it once the organs are
# painted), on a 2 mm grid in the anatomical frame
_FAT_GRID = Grid(shape=(81, 50, 80), spacing=(2.0, 2.0, 2.0), centre=(0.0, 42.0, 0.0))


@functools.lru_cache(maxsize=1)
def _retroperitoneal_fat() -> np.ndarray:
    return ph.organ_mask(_FAT_GRID, "retroperitoneal_fat")


def _in_fat(centre: np.ndarray, radii: np.ndarray, angle_deg: float) -> bool:
    """The node's ellipsoid, grown by 2 mm, lies in the retroperitoneal fat."""
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    u = np.random.default_rng(0).normal(size=(64, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    points = centre + (u * (radii + 2.0)) @ rot.T
    idx = np.rint(np.c_[points, np.ones(len(points))] @ np.linalg.inv(_FAT_GRID.affine()).T)[:, :3].astype(int)
    fat = _retroperitoneal_fat()
    inside = np.all((idx >= 0) & (idx < fat.shape), axis=1)
    return bool(inside.all() and fat[idx[:, 0], idx[:, 1], idx[:, 2]].all())


def _nodes(rng: np.random.Generator, count: int) -> list[Ellipsoid]:
    """Lymph nodes anywhere in the retroperitoneal fat (never in an organ or a vessel), 5-20 mm short axis."""
    out: list[Ellipsoid] = []
    for _ in range(300):
        if len(out) == count:
            break
        short = float(rng.uniform(5.0, 20.0))
        radii = np.array([short / 2, short / 2 * rng.uniform(1.0, 1.3), short / 2 * rng.uniform(1.0, 1.8)])
        centre = np.array([rng.uniform(-62, 62), rng.uniform(12, 72), rng.uniform(-70, 70)])
        angle = float(rng.uniform(-40, 40))
        if not _in_fat(centre, radii, angle) or any(
                np.linalg.norm(centre - np.array(n.centre)) < radii.max() + max(n.radii) + 3 for n in out):
            continue
        out.append(Ellipsoid(f"N{len(out) + 1}", tuple(float(c) for c in centre),  # type: ignore[arg-type]
                             tuple(float(r) for r in radii), (0.0, 0.0, angle),  # type: ignore[arg-type]
                             kind="node", site="retroperitoneal lymph node"))
    return out


def lesions(rng: np.random.Generator, mets: int | None = None, nodes: int | None = None,
            diameter_mm: tuple[float, float] = (5.0, 45.0)) -> list[Ellipsoid]:
    count = int(rng.integers(0, 8)) if mets is None else mets
    found = ph.random_liver_lesions(rng, count=count, diameter_mm=diameter_mm)
    found += _nodes(rng, int(rng.integers(0, 4)) if nodes is None else nodes)
    return [_look(rng, les) for les in found]


def grid_for(rng: np.random.Generator, spacing: tuple[float, float, float]) -> Grid:
    fov = np.array(FOV_MM) * rng.uniform(0.85, 1.15, 3)
    shape = tuple(int(round(f / s)) for f, s in zip(fov, spacing, strict=True))
    centre = (float(rng.uniform(-15, 15)), float(rng.uniform(-15, 15)), float(rng.uniform(-10, 40)))
    return Grid(shape=shape, spacing=spacing, centre=centre)  # type: ignore[arg-type]


def phantom(seed: int, spacing: tuple[float, float, float], **kw: Any) -> ph.Phantom:
    rng = np.random.default_rng(seed)
    grid = grid_for(rng, spacing)
    les = lesions(rng, **kw)
    pose = random_pose(rng, max_rotation_deg=8.0, max_translation_mm=15.0)
    return liver_ct_phantom(grid, les, pose=pose, seed=seed, noise_hu=float(rng.uniform(6.0, 20.0)))


def classes(p: ph.Phantom) -> np.ndarray:
    """0 background, 1 liver parenchyma, 2 metastasis, 3 lymph node (exclusive, on the phantom's grid)."""
    kinds = np.array([0] + [2 if les.kind != "node" else 3 for les in p.truth.lesions], dtype=np.uint8)
    out = kinds[p.labels]
    out[(out == 0) & p.truth.organs["liver"]] = 1
    return out


def _norm() -> Normalisation:
    return Normalisation(method="window", low=WINDOW[0], high=WINDOW[1])


def perfusion_average(seed: int, spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of a CT-perfusion phantom's frames (no motion: what motion correction gives) and its classes.

    What the perfusion route segments: the liver and lesions through all phases at once, ribs
    at 450 HU, a thin slab of the upper abdomen. Random liver metastases near the slab,
    hypo- or hyper-perfused (the flows of the perfusion phantom's own lesions).
    """
    from daemon.demo import perfusion_phantom as pp

    rng = np.random.default_rng(seed)
    slab = float(rng.uniform(60.0, 90.0))
    centre = (float(rng.uniform(-30, -10)), float(rng.uniform(-10, 10)), float(rng.uniform(50, 75)))
    grid = Grid(shape=(int(round(slab / spacing[0])), int(round(392 / spacing[1])), int(round(392 / spacing[2]))),
                spacing=spacing, centre=centre)
    mets = [m for m in ph.random_liver_lesions(rng, count=int(rng.integers(2, 7)), diameter_mm=(6.0, 40.0))
            if abs(m.centre[2] - centre[2]) < slab / 2 + 10.0]
    flows = [pp.DEFAULT_LESIONS[0].flows, pp.DEFAULT_LESIONS[1].flows]
    lesions = tuple(pp.PerfusionLesion(m, flows[int(rng.integers(2))]) for m in mets)
    times = pp.DENSE_TIMES_S if rng.random() < 0.5 else pp.SEED_TIMES_S
    p = pp.perfusion_phantom(pp.Protocol(grid=grid, times_s=times, lesions=lesions, max_shift_mm=(0.0, 0.0),
                                         noise_hu=float(rng.uniform(3.0, 15.0)), seed=seed))
    cls = np.where(p.labels > 0, 2, np.where(p.truth.regions["liver"], 1, 0)).astype(np.uint8)
    return p.frames.mean(axis=0), cls


def to_model_grid(image: np.ndarray, cls: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Image (normalised) and classes on the model grid, by the daemon's own resampling.

    `cls` holds the source grid's classes as `classes` does; out, the same, and 4 where another
    organ denser than 60 HU lies (background for the network; only where crops are taken).
    """
    target = model_shape(image.shape, spacing, SPACING_KJI)
    x = normalise(resample(image.astype(np.float32), target), _norm())
    region = resample((cls == 1).astype(np.float32) + (cls == 2), target) >= 0.5
    out = np.where(region, 1, 0).astype(np.uint8)
    out[(out == 0) & (x > (60.0 - WINDOW[0]) / (WINDOW[1] - WINDOW[0]))] = 4  # other dense organs, for sampling
    for value in (2, 3):
        out[resample((cls == value).astype(np.float32), target) >= 0.5] = value
    return x, out


Sample = tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, int]]]  # image, classes, (lesion centre, class)


def lesion_centres(cls: np.ndarray) -> list[tuple[np.ndarray, int]]:
    out = []
    for value in (2, 3):
        comp, n = ndimage.label(cls == value)
        for c in ndimage.center_of_mass(comp > 0, comp, range(1, n + 1)):
            out.append((np.round(np.asarray(c)).astype(int), value))
    return out


def training_set() -> list[Sample]:
    data = []
    for s in range(N_TRAIN):
        sp = SOURCE_SPACINGS[s % len(SOURCE_SPACINGS)]
        p = phantom(s, sp)
        x, cls = to_model_grid(p.image, classes(p), sp)
        data.append((x, cls, lesion_centres(cls)))
    for s in range(N_PERFUSION):
        sp = PERFUSION_SPACINGS[s % len(PERFUSION_SPACINGS)]
        x, cls = to_model_grid(*perfusion_average(PERFUSION_SEED0 + s, sp), sp)
        data.append((x, cls, lesion_centres(cls)))
    return data


# --------------------------------------------------------------------------- training


def _crop_centre(rng: np.random.Generator, cls: np.ndarray, centres: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Near a lesion (metastases and nodes alike, each lesion equally), in the liver, or anywhere."""
    u = rng.random()
    if u < 0.65 and centres:
        kind = 3 if rng.random() < 0.5 and any(v == 3 for _, v in centres) else 2
        pool = [c for c, v in centres if v == kind] or [c for c, _ in centres]
        jitter = rng.integers(-np.array(CROP) // 3, np.array(CROP) // 3 + 1)
        return pool[int(rng.integers(len(pool)))] + jitter
    if u < 0.93:  # in the liver, or in another dense organ (the spleen is only 10 HU brighter)
        fg = np.flatnonzero(cls.ravel()[::7] == (1 if u < 0.85 else 4)) * 7
        if fg.size:
            return np.array(np.unravel_index(int(fg[int(rng.integers(fg.size))]), cls.shape))
    return np.array([int(rng.integers(0, n)) for n in cls.shape])


def sample(rng: np.random.Generator, data: list[Sample], batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    crop = np.array(CROP)
    for _ in range(batch):
        image, cls, centres = data[int(rng.integers(len(data)))]
        shape = np.array(image.shape)
        lo = np.clip(_crop_centre(rng, cls, centres) - crop // 2, 0, shape - crop)
        sl = tuple(slice(int(a), int(a) + n) for a, n in zip(lo, crop, strict=True))
        x, c = image[sl], cls[sl]
        # HU calibration drift of a few HU (the window maps 500 HU to 1)
        x = x + np.float32(rng.normal(0, 5.0 / (WINDOW[1] - WINDOW[0])))
        y = np.stack([(c == 1) | (c == 2), c == 2, c == 3]).astype(np.float32)
        xs.append(np.ascontiguousarray(x)[None])
        ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


# lesions are a small fraction of any crop: their positives weigh more (the threshold is calibrated after)
_BCE = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(POS_WEIGHT).view(-1, 1, 1, 1))


def objective(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted binary cross-entropy plus the mean of the soft Dice losses per output (and those)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: about 1.6x faster on this CPU
        logits = net(x).float()
    p = torch.sigmoid(logits)
    inter = (p * y).sum(dim=(0, 2, 3, 4))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(0, 2, 3, 4)) + y.sum(dim=(0, 2, 3, 4)) + 1)
    return _BCE(logits, y) + dice.mean(), dice


def train(iterations: int, batch: int) -> nn.Module:
    return demo_training.train(SEED, training_set, network, sample, objective, iterations, batch, lr=5e-3,
                               freeze_norm=FREEZE_NORM)


# --------------------------------------------------------------------------- calibration and evaluation


def _axis(volume: Any, mask: np.ndarray, node: bool) -> float | None:
    """The long axis (short axis for a node) daemon.measure reads on a mask, mm."""
    from daemon.measure.geometry import axial_axes

    axes = axial_axes(volume, mask)
    if axes is None:
        return 0.0
    cal = axes.short_axis if node else axes.long_axis
    return None if cal is None else cal.length_mm


def axis_offsets(probs: dict[int, np.ndarray], p: ph.Phantom, volume: Any, kind: str) -> np.ndarray:
    """Per lesion of this kind >= 10 mm and threshold: predicted minus true axis, in mm.

    The axis is what the route reports (the long axis; the short axis for nodes), read by
    daemon.measure on the predicted mask and on the phantom's true mask alike, so that the
    measurement's own voxel effects cancel and only the segmentation's error remains.
    Predicted voxels count for a lesion within 3 voxels of it.
    """
    from daemon.measure.lesions import crop

    node = kind == "node"
    channel = 2 if node else 1
    rows = []
    for les in p.truth.lesions:
        if les.kind != kind or les.max_3d_diameter_mm < 10.0 or les.voxel_count == 0:
            continue
        own = p.labels == les.label
        near = ndimage.binary_dilation(own, iterations=3) & ((p.labels == 0) | own)
        box = ndimage.find_objects(near.astype(np.int8))[0]
        sub = crop(volume, box)
        truth = _axis(sub, own[box], node)
        if truth is None or truth < 10.0:
            continue
        prob, where = probs[channel][box], near[box]
        row = [_axis(sub, (prob >= t) & where, node) for t in THRESHOLDS]
        rows.append([np.nan if a is None else a - truth for a in row])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(THRESHOLDS))


def _closest_to_zero(name: str, table: np.ndarray) -> dict[str, float]:
    """The threshold whose median axis error over the lesions is closest to zero."""
    median = np.nanmedian(table, axis=0)
    best = int(np.argmin(np.abs(median)))
    for n, t in enumerate(THRESHOLDS):
        print(f"{name} threshold {t:.2f}: axis error median {median[n]:+.2f} mm (quartiles "
              f"{np.nanpercentile(table[:, n], 25):+.2f} {np.nanpercentile(table[:, n], 75):+.2f})", flush=True)
    return {f"threshold_{name}": THRESHOLDS[best], f"offset_{name}": float(median[best]),
            f"offset_{name}_at_0.5": float(median[THRESHOLDS.index(0.5)]), f"cal_{name}": len(table)}


def calibrate(folder: Path) -> dict[str, float]:
    """Per output, the threshold at which predicted boundaries lie on the true ones.

    Metastases and nodes: the median axis error (axis_offsets) over lesions closest to zero.
    The liver (its region: parenchyma and metastases): the threshold of the best Dice.
    """
    from daemon.segment import load_model
    from daemon.segment.segmenter import probabilities

    model = load_model(folder, providers="cpu")
    offsets: dict[str, list[np.ndarray]] = {"metastasis": [], "node": []}
    inter, total = np.zeros(len(THRESHOLDS)), np.zeros(len(THRESHOLDS))
    for s in range(N_CAL):
        sp = CAL_SPACINGS[s % len(CAL_SPACINGS)]
        p = phantom(CAL_SEED0 + s, sp, mets=int(3 + s % 4), nodes=2)
        vol = phantom_volume(p, f"cal{s}")
        probs = probabilities(vol, model)
        for kind, rows in offsets.items():
            rows.append(axis_offsets(probs, p, vol, kind))
        region = np.isin(classes(p), (1, 2))
        for n, t in enumerate(THRESHOLDS):
            pred = probs[0] >= t
            inter[n] += float((pred & region).sum())
            total[n] += float(pred.sum() + region.sum())
    out: dict[str, float] = {"cal_cases": N_CAL}
    for kind, rows in offsets.items():
        out.update(_closest_to_zero(kind, np.concatenate(rows)))
    dice = 2 * inter / total
    out.update(threshold_liver=THRESHOLDS[int(np.argmax(dice))], dice_liver_cal=float(dice.max()))
    print(f"liver region Dice by threshold: {np.round(dice, 4).tolist()}", flush=True)
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def axes_errors(image: Any, lesion_mask: Any, p: ph.Phantom) -> list[tuple[str, float, float, float, float]]:
    """Per true lesion >= 10 mm found: (kind, analytic, measured, error, error against the true mask).

    The axis is the long axis (the short axis for nodes) daemon.measure reads on the predicted
    component that overlaps the lesion most; the last figure compares it with the same
    measurement of the phantom's true mask (the segmentation's own error).
    """
    from daemon.measure.lesions import MeasureOptions, measure_mask

    measured = measure_mask(image, lesion_mask, MeasureOptions(quantity="hu", intensity_statistics=False))
    out = []
    for les in p.truth.lesions:
        node = les.kind == "node"
        truth = les.perpendicular_diameter_mm if node else les.longest_axial_diameter_mm
        if truth < 10.0 or les.voxel_count == 0:
            continue
        own = p.labels == les.label
        best = max(measured, key=lambda m: int(m.full_mask(own.shape)[own].sum()), default=None)
        if best is None or not best.full_mask(own.shape)[own].any():
            continue
        cal = best.measurements.short_axis if node else best.measurements.long_axis
        true_mask = _axis(image, own, node)
        if cal is not None and true_mask is not None:
            out.append((les.kind, truth, cal.length_mm, cal.length_mm - truth, cal.length_mm - true_mask))
    return out


def evaluate(folder: Path) -> dict[str, Any]:
    """Dice per label, detection and axes on held-out phantoms, through daemon.segment and daemon.measure."""
    from daemon.segment import load_model, segment, split_roles

    model = load_model(folder, providers="cpu")
    dices: dict[str, list[float]] = {k: [] for k in CHANNELS}
    found = total = found10 = total10 = fps = 0
    errors: list[tuple[str, float, float, float, float]] = []
    secs = []
    for s in range(N_EVAL):
        sp = EVAL_SPACINGS[s % len(EVAL_SPACINGS)]
        p = phantom(EVAL_SEED0 + s, sp, mets=int(3 + s % 4), nodes=1 + s % 3)
        vol = phantom_volume(p, f"eval{s}")
        t0 = time.time()
        mask = segment(vol, model)
        secs.append(time.time() - t0)
        cls = classes(p)
        for value, key in enumerate(CHANNELS, start=1):
            dices[key].append(_dice(mask.labels == value, cls == value))
        lesion_mask, _ = split_roles(mask, model.manifest)
        pred = lesion_mask.labels > 0
        for les in p.truth.lesions:
            if les.max_3d_diameter_mm >= 5.0 and les.voxel_count:
                hit = bool(pred[p.labels == les.label].any())
                total, found = total + 1, found + hit
                if les.max_3d_diameter_mm >= 10.0:
                    total10, found10 = total10 + 1, found10 + hit
        comp, k = ndimage.label(pred, structure=np.ones((3, 3, 3)))
        fps += k - int(np.count_nonzero(np.unique(comp[p.labels > 0])))
        errors += axes_errors(vol, lesion_mask, p)
        print(f"held-out {s}: dice " + " ".join(f"{k} {v[-1]:.3f}" for k, v in dices.items())
              + f" ({secs[-1]:.1f} s)", flush=True)
    for e in errors:
        print(f"  {e[0]:10s} true {e[1]:5.1f} measured {e[2]:5.1f} error {e[3]:+.2f} mm "
              f"(against the true mask {e[4]:+.2f})", flush=True)
    axes: dict[str, float] = {}
    for kind in ("metastasis", "node"):
        err = np.array([abs(e[3]) for e in errors if e[0] == kind] or [np.nan])
        seg = np.array([abs(e[4]) for e in errors if e[0] == kind] or [np.nan])
        axes.update({f"axis_{kind}_median": float(np.median(err)), f"axis_{kind}_max": float(err.max()),
                     f"axis_{kind}_within": int((err <= 1.5).sum()), f"axes_{kind}": int(np.isfinite(err).sum()),
                     f"seg_{kind}_median": float(np.median(seg)), f"seg_{kind}_within": int((seg <= 1.5).sum())})
    return {
        **{f"dice_{k}": float(np.mean(v)) for k, v in dices.items()},
        **{f"dice_{k}_min": float(np.min(v)) for k, v in dices.items()},
        "found": found, "lesions": total, "found10": found10, "lesions10": total10, "false_positives": fps,
        **axes, "cases": N_EVAL, "seconds": float(np.mean(secs)),
    }


# --------------------------------------------------------------------------- manifest


def write_manifest(folder: Path, metrics: dict[str, Any], iterations: int, batch: int) -> None:
    fmt = {**{f"threshold_{k}": "{:.2f}" for k in CHANNELS}, "cal_cases": "{}", "dice_liver_cal": "{:.3f}",
           **{f"offset_{k}": "{:+.2f}" for k in CHANNELS[1:]}, **{f"offset_{k}_at_0.5": "{:+.2f}" for k in CHANNELS[1:]},
           **{f"cal_{k}": "{}" for k in CHANNELS[1:]}, "found": "{}", "lesions": "{}", "found10": "{}", "lesions10": "{}",
           "false_positives": "{}", **{f"axis_{k}_{q}": "{:.2f}" for k in CHANNELS[1:] for q in ("median", "max")},
           **{f"axis_{k}_within": "{}" for k in CHANNELS[1:]}, **{f"axes_{k}": "{}" for k in CHANNELS[1:]},
           **{f"seg_{k}_median": "{:.2f}" for k in CHANNELS[1:]}, **{f"seg_{k}_within": "{}" for k in CHANNELS[1:]},
           "cases": "{}", **{f"dice_{k}": "{:.3f}" for k in CHANNELS}, **{f"dice_{k}_min": "{:.3f}" for k in CHANNELS}}
    values = {k: f.format(metrics.get(k, 0)) for k, f in fmt.items()}
    values.update(
        n_perfusion=str(N_PERFUSION),
        sensitivity=f"{metrics.get('found', 0) / max(1, metrics.get('lesions', 1)):.3f}",
        sensitivity10=f"{metrics.get('found10', 0) / max(1, metrics.get('lesions10', 1)):.3f}",
    )
    demo_training.write_manifest(folder, values, version=VERSION, iterations=iterations, batch=batch,
                                 n_train=N_TRAIN)


def main() -> int:
    provisional: dict[str, Any] = {**{f"threshold_{k}": 0.5 for k in CHANNELS}, "cases": N_EVAL, "cal_cases": N_CAL}
    return demo_training.main(__doc__ or "", HERE, iterations=6000, train=train, patch=PATCH,
                              provisional=provisional, calibrate=calibrate, evaluate=evaluate,
                              manifest=write_manifest)


if __name__ == "__main__":
    raise SystemExit(main())
