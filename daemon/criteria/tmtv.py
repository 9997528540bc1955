"""Whole-body FDG metrics of seed 002 (NEMO-PET): TMTV, TLG and Dmax from segmented lesions.

The lesions are connected components of voxels at or above the SUV threshold of
rules/percist.yaml (tmtv.suv_threshold), found by measure/; here only their sizes
and centroids are combined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations

from daemon.criteria.assessment import Assessment
from daemon.criteria.exact import f, fmt, q
from daemon.criteria.params import TmtvParams

CRITERION = "TMTV"


@dataclass(frozen=True)
class MetabolicLesion:
    lesion_id: str
    voxels: int | None = None  # voxel count of the component
    volume_ml: float | None = None  # or its volume directly
    centroid_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # patient coordinates
    suv_mean: float | None = None


def _volume(les: MetabolicLesion, voxel_volume_ml: float | None) -> Fraction:
    if les.volume_ml is not None:
        return q(les.volume_ml)
    if les.voxels is None or voxel_volume_ml is None:
        raise ValueError(f"lesion {les.lesion_id}: needs volume_ml, or voxels and voxel_volume_ml")
    return les.voxels * q(voxel_volume_ml)


def assess(lesions: Sequence[MetabolicLesion], params: TmtvParams, voxel_volume_ml: float | None = None) -> Assessment:
    volumes = [_volume(les, voxel_volume_ml) for les in lesions]
    total = sum(volumes, Fraction(0))
    dmax = max((math.dist(a.centroid_mm, b.centroid_mm) for a, b in combinations(lesions, 2)), default=0.0)
    tlg = None
    if lesions and all(les.suv_mean is not None for les in lesions):
        tlg = sum((q(les.suv_mean or 0) * v for les, v in zip(lesions, volumes, strict=True)), Fraction(0))
    return Assessment(
        criterion=CRITERION,
        citation=params.citation.to_citation(),
        category="measured",
        numbers={"tmtv_ml": f(total), "dmax_mm": dmax, "n_lesions": float(len(lesions)), "tlg": f(tlg),
                 "suv_threshold": float(params.suv_threshold)},
        reasons=(f"{len(lesions)} lesions at SUV >= {fmt(q(params.suv_threshold))}: TMTV {fmt(total, ' mL')}, "
                 f"Dmax {dmax:.1f} mm (0 with fewer than 2 lesions)",),
        classified=False,
    )
