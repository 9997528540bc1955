"""Whole-body PET features (NEMO-PET style): TMTV, lesion count, Dmax, TLG.

Lesions are the connected components (26-connectivity) of voxels with SUV at or
above a threshold, optionally restricted to a model's lesion mask (which keeps
physiological uptake out). The threshold comes from the rules file
(rules/percist.yaml, `tmtv.suv_threshold`, 4.0 in seed 002); this code holds no
clinical number. Definitions: ../shared/criteria/percist_suv.md section 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.volume import Vec3, Volume

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class HotLesion:
    """One connected component at or above the threshold (daemon.criteria.tmtv's input)."""

    voxels: int
    volume_ml: float
    centroid: Vec3  # patient LPS mm
    suv_mean: float
    suv_max: float


@dataclass(frozen=True)
class WholeBodyPet:
    suv_threshold: float
    inclusive: bool  # SUV >= threshold (True) or > threshold
    tmtv_ml: float  # total metabolic tumour volume
    tlg: float  # total lesion glycolysis: sum of SUVmean x MTV
    lesion_count: int
    dmax_mm: float  # largest distance between two lesion centroids; 0 with < 2 lesions
    dmax_between: tuple[Vec3, Vec3] | None
    lesion_volumes_ml: tuple[float, ...]  # largest first
    min_voxels: int
    connectivity: int = 26
    lesions: tuple[HotLesion, ...] = ()  # largest first


def wholebody_features(
    suv: Volume,
    suv_threshold: float,
    *,
    within: BoolArray | None = None,
    inclusive: bool = True,
    min_voxels: int = 1,
    connectivity: int = 26,
) -> WholeBodyPet:
    """TMTV, TLG, lesion count and Dmax of an SUV volume at the given threshold."""
    arr = np.asarray(suv.array, dtype=np.float64)
    hot = arr >= suv_threshold if inclusive else arr > suv_threshold
    if within is not None:
        hot &= within
    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    labelled, n = ndimage.label(hot, structure=ndimage.generate_binary_structure(3, rank))
    counts = np.bincount(labelled.ravel(), minlength=n + 1)
    keep = [c for c in range(1, n + 1) if counts[c] >= min_voxels]
    voxel_ml = suv.voxel_volume_mm3 / 1000.0
    volumes: list[float] = []
    centroids: list[Vec3] = []
    hot_lesions: list[HotLesion] = []
    tlg = 0.0
    if keep:
        com = ndimage.center_of_mass(hot, labelled, keep)
        means = np.atleast_1d(ndimage.mean(arr, labelled, keep))
        maxima = np.atleast_1d(ndimage.maximum(arr, labelled, keep))
        for n_c, c in enumerate(keep):
            ml = float(counts[c]) * voxel_ml
            volumes.append(ml)
            tlg += float(means[n_c]) * ml
            p = suv.index_to_patient(tuple(float(v) for v in com[n_c]))  # type: ignore[arg-type]
            centre: Vec3 = (float(p[0]), float(p[1]), float(p[2]))
            centroids.append(centre)
            hot_lesions.append(HotLesion(int(counts[c]), ml, centre, float(means[n_c]), float(maxima[n_c])))
    dmax, pair = 0.0, None
    if len(centroids) >= 2:
        pts = np.asarray(centroids)
        d = np.sqrt(np.sum((pts[:, None, :] - pts[None, :, :]) ** 2, axis=-1))
        a, b = np.unravel_index(int(np.argmax(d)), d.shape)
        dmax, pair = float(d[a, b]), (centroids[int(a)], centroids[int(b)])
    return WholeBodyPet(
        suv_threshold=suv_threshold,
        inclusive=inclusive,
        tmtv_ml=float(sum(volumes)),
        tlg=tlg,
        lesion_count=len(volumes),
        dmax_mm=dmax,
        dmax_between=pair,
        lesion_volumes_ml=tuple(sorted(volumes, reverse=True)),
        min_voxels=min_voxels,
        connectivity=connectivity,
        lesions=tuple(sorted(hot_lesions, key=lambda h: -h.voxels)),
    )
