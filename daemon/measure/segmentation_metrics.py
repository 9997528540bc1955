"""How well a predicted mask agrees with a reader's: Dice, 95 % Hausdorff distance, lesion-wise
detection, and the mean and SD of a metric over cases (pure: arrays and an affine in).

- Dice: 2|A n B| / (|A| + |B|) over the whole mask; both empty is not computable (None).
- HD95 (mm): surface-based in patient space, as MONAI's `compute_hausdorff_distance(percentile=95)`:
  the surface voxels of each mask (the mask minus its 6-connected erosion; the grid's edge counts as
  outside), their centres mapped through the affine, the 95th percentile of each directed set of
  nearest-surface distances, the larger of the two. Not computable (None) when either mask is empty.
- Lesions: connected components (26-connected, as the route counts lesions). A reference lesion is
  detected when the prediction covers at least `min_overlap` of its voxels, and at least one voxel
  (min_overlap 0: one voxel in common); its match is the predicted lesion covering most of it. A
  predicted lesion with no voxel in common with any reference lesion is a false positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.integer]
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
_FACES = ndimage.generate_binary_structure(3, 1)


def dice(reference: BoolArray, predicted: BoolArray) -> float | None:
    total = int(np.count_nonzero(reference)) + int(np.count_nonzero(predicted))
    if total == 0:
        return None
    return 2.0 * int(np.count_nonzero(reference & predicted)) / total


def _box(mask: BoolArray) -> tuple[slice, ...]:
    found = ndimage.find_objects(mask.astype(np.uint8))[0]
    assert found is not None
    return tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in found)


def surface_points(mask: BoolArray, affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """Patient coordinates (mm) of the centres of the mask's surface voxels; (0, 3) when empty."""
    if not mask.any():
        return np.zeros((0, 3))
    box = _box(mask)
    local = mask[box]
    surface = local & ~ndimage.binary_erosion(local, structure=_FACES, border_value=0)
    kji = np.argwhere(surface).astype(np.float64) + np.array([s.start for s in box], dtype=np.float64)
    return np.asarray(kji @ affine[:3, :3].T + affine[:3, 3])


def hd95(reference: BoolArray, predicted: BoolArray, affine: NDArray[np.float64]) -> float | None:
    """95 % Hausdorff distance in mm (see the module doc); None when either mask is empty."""
    a, b = surface_points(reference, affine), surface_points(predicted, affine)
    if len(a) == 0 or len(b) == 0:
        return None
    ab = cKDTree(b).query(a)[0]
    ba = cKDTree(a).query(b)[0]
    return float(max(np.percentile(ab, 95.0), np.percentile(ba, 95.0)))


def lesions(mask: BoolArray) -> tuple[NDArray[np.int32], int]:
    """Connected components (26-connected), numbered from 1."""
    labelled, n = ndimage.label(mask, structure=_CONNECTIVITY)
    return np.asarray(labelled, dtype=np.int32), int(n)


@dataclass(frozen=True)
class LesionMatch:
    reference: int  # the reference lesion's number (1-based)
    reference_voxels: int
    covered_fraction: float  # of its voxels inside the prediction
    detected: bool
    predicted: int | None  # the predicted lesion covering most of it (1-based); None: none touches it


@dataclass(frozen=True)
class Detection:
    matches: tuple[LesionMatch, ...]
    predicted_lesions: int
    false_positives: tuple[int, ...]  # predicted lesions with no voxel in a reference lesion
    min_overlap: float

    @property
    def detected(self) -> int:
        return sum(m.detected for m in self.matches)

    @property
    def sensitivity(self) -> float | None:
        """Detected / reference lesions; None without a reference lesion."""
        return self.detected / len(self.matches) if self.matches else None


def detect(reference: IntArray, predicted: IntArray, min_overlap: float = 0.0) -> Detection:
    """Lesion-wise detection between two lesion label images (0 background, lesions 1..n)."""
    n_ref, n_pred = int(reference.max(initial=0)), int(predicted.max(initial=0))
    both = (reference > 0) & (predicted > 0)
    pairs = np.zeros((n_ref + 1, n_pred + 1), dtype=np.int64)
    np.add.at(pairs, (reference[both], predicted[both]), 1)
    sizes = np.bincount(reference.ravel(), minlength=n_ref + 1)
    matches = []
    for r in range(1, n_ref + 1):
        covered = int(pairs[r].sum())
        fraction = covered / int(sizes[r]) if sizes[r] else 0.0
        best = int(np.argmax(pairs[r])) if covered else None
        matches.append(LesionMatch(r, int(sizes[r]), fraction, covered > 0 and fraction >= min_overlap, best))
    touched = pairs.sum(axis=0)
    fps = tuple(p for p in range(1, n_pred + 1) if touched[p] == 0)
    return Detection(tuple(matches), n_pred, fps, min_overlap)


@dataclass(frozen=True)
class Summary:
    """A metric over cases, as a study tabulates it: mean and sample SD of the computable values."""

    n: int
    mean: float | None
    sd: float | None  # sample standard deviation (n - 1); None below two values
    not_computable: int = 0  # cases where the metric had no value


def summarise(values: Sequence[float | None]) -> Summary:
    have = [float(v) for v in values if v is not None and math.isfinite(v)]
    missing = len(values) - len(have)
    if not have:
        return Summary(0, None, None, missing)
    sd = float(np.std(have, ddof=1)) if len(have) > 1 else None
    return Summary(len(have), float(np.mean(have)), sd, missing)
