"""FDG-avid lesions without a model: hot connected components, physiological uptake set aside.

A component is the 26-connected set of voxels at or above an SUV threshold (seed 002: 4.0),
optionally redrawn at a percentage of its own SUVmax (the 41 % isocontour variant). A
component is physiological when an organ mask (brain, heart, kidney, bladder: a model's
organ labels) holds most of it, or else when it lies where the rules file says that organ
lies in the body outline and is big enough (`OrganWhere`). Thresholds are arguments; the
numbers live in rules/wholebody_fdg.yaml and rules/percist.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.volume import Volume

BoolArray = NDArray[np.bool_]
Labels = NDArray[np.int32]
ORGANS = ("brain", "heart", "kidney", "bladder")


@dataclass(frozen=True)
class OrganWhere:
    """Where a physiological hot spot lies: its centroid between these fractions of the trunk
    (0 = its top, 1 = its bottom), at these distances (mm) from the body's midline, in the
    posterior half when `posterior`, and at least `min_ml`."""

    trunk_from_top: tuple[float, float]
    lateral_mm: tuple[float, float] | None
    posterior: bool
    min_ml: float


@dataclass(frozen=True)
class BodyFrame:
    """The body outline on the PET grid, per slice: area, centre (patient x, y), and the trunk."""

    area: NDArray[np.int64]  # voxels per slice
    centre_xy: NDArray[np.float64]  # (k, 2) patient x, y of each slice's body centre
    neck_z: float | None  # patient z of the neck (None: not in the field)
    trunk_z: tuple[float, float]  # patient z of the trunk's top and bottom (top > bottom)


def body_frame(body: BoolArray, grid: Volume, neck_k: int | None) -> BodyFrame:
    """The trunk: from the neck (or the top of the body) down to where the body splits into
    two legs (or its bottom)."""
    nk = body.shape[0]
    area = body.reshape(nk, -1).sum(axis=1).astype(np.int64)
    centre = np.zeros((nk, 2), dtype=np.float64)
    legs_at: list[int] = []
    for k in np.flatnonzero(area):
        idx = np.argwhere(body[k])
        kji = np.column_stack([np.full(len(idx), k, dtype=np.float64), idx.astype(np.float64)])
        p = grid.index_to_patient(kji.mean(axis=0))
        centre[k] = p[:2]
        parts, n = ndimage.label(body[k])
        if n >= 2:
            sizes = np.sort(np.bincount(parts.ravel())[1:])[::-1]
            if sizes[1] * 3 >= sizes[0]:  # two comparable parts: the legs
                legs_at.append(int(k))
    z = grid.index_to_patient(np.column_stack([np.arange(nk, dtype=np.float64), np.zeros((nk, 2))]))[:, 2]
    shown = np.flatnonzero(area)
    top = float(z[neck_k]) if neck_k is not None else float(z[shown].max()) if len(shown) else 0.0
    legs = [float(z[k]) for k in legs_at if z[k] < top]
    bottom = max(legs) if legs else (float(z[shown].min()) if len(shown) else 0.0)
    return BodyFrame(area, centre, float(z[neck_k]) if neck_k is not None else None, (top, bottom))


def hot_components(suv: Volume, threshold: float, *, percent_of_max: float | None = None,
                   min_volume_ml: float = 0.0, connectivity: int = 26) -> tuple[Labels, int]:
    """Label volume of the components at SUV >= threshold (each redrawn at percent_of_max % of
    its own SUVmax when given), components under min_volume_ml dropped; labels 1..n."""
    arr = np.asarray(suv.array, dtype=np.float32)
    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    structure = ndimage.generate_binary_structure(3, rank)
    labelled, n = ndimage.label(arr >= threshold, structure=structure)
    voxel_ml = suv.voxel_volume_mm3 / 1000.0
    out = np.zeros(arr.shape, dtype=np.int32)
    count = 0
    for c, box in enumerate(ndimage.find_objects(labelled), start=1):
        if box is None:
            continue
        part = labelled[box] == c
        if percent_of_max is not None:
            grown = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in box)
            local = arr[grown]
            peak = float(arr[box][part].max())
            at = np.unravel_index(int(np.argmax(np.where(labelled[grown] == c, local, -np.inf))), local.shape)
            iso, _ = ndimage.label(local >= peak * percent_of_max / 100.0, structure=structure)
            part, box = iso == iso[at], grown
        if np.count_nonzero(part) * voxel_ml < min_volume_ml:
            continue
        count += 1
        out[box][part & (out[box] == 0)] = count
    return out, count


def _by_rule(where: OrganWhere, frame: BodyFrame, centroid: NDArray[np.float64], ml: float, k: int) -> bool:
    top, bottom = frame.trunk_z
    if ml < where.min_ml or top <= bottom:
        return False
    fraction = (top - float(centroid[2])) / (top - bottom)
    if not where.trunk_from_top[0] <= fraction <= where.trunk_from_top[1]:
        return False
    cx, cy = frame.centre_xy[k]
    lateral = abs(float(centroid[0]) - cx)
    if where.lateral_mm is not None and not where.lateral_mm[0] <= lateral <= where.lateral_mm[1]:
        return False
    return not where.posterior or float(centroid[1]) > cy  # LPS: +y is posterior


def physiological(labels: Labels, n: int, grid: Volume, frame: BodyFrame | None,
                  organs: Mapping[str, BoolArray], rules: Mapping[str, OrganWhere]) -> dict[int, str]:
    """Component label -> the organ whose physiological uptake it is, and how it was told
    ("kidney (organ mask)", "brain (above the neck)", "bladder (rule)")."""
    out: dict[int, str] = {}
    if n == 0:
        return out
    index = list(range(1, n + 1))
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    centroids = ndimage.center_of_mass(labels > 0, labels, index)
    masks = {name: mask for name, mask in organs.items() if any(name.startswith(o) for o in ORGANS)}
    for c in index:
        for name, mask in masks.items():
            if np.count_nonzero(mask[labels == c]) * 2 > counts[c]:
                out[c] = f"{name} (organ mask)"
                break
        if c in out or frame is None:
            continue
        kji = np.asarray(centroids[c - 1], dtype=np.float64)
        p = grid.index_to_patient(kji)
        k = int(np.clip(round(float(kji[0])), 0, labels.shape[0] - 1))
        if frame.neck_z is not None and float(p[2]) > frame.neck_z:
            out[c] = "brain (above the neck)"
            continue
        ml = float(counts[c]) * grid.voxel_volume_mm3 / 1000.0
        for name, where in rules.items():
            if _by_rule(where, frame, p, ml, k):
                out[c] = f"{name} (rule)"
                break
    return out
