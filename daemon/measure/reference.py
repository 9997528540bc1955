"""Reference regions (healthy liver, normal brain, striatum, white matter) and ratios to them.

A reference region comes either from a label of a mask (a model's organ label) or
from a rule of the criterion's rules file: a sphere of a set diameter, either at a
given point or at the deepest point of an organ label (farthest from its edge,
away from lesions) -- e.g. PERCIST's 3 cm sphere in normal liver. The region
records which, in words, and that text travels with every ratio built on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.findings import Measurements
from daemon.measure.intensity import basic_stats
from daemon.volume import LesionMask, Vec3, Volume

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ReferenceRegion:
    name: str  # e.g. "liver", "normal_brain", "striatum", "white_matter"
    source: str  # how it was defined, e.g. "label 'liver' (value 2)" or "sphere 30 mm ..."
    mask: BoolArray
    centre: Vec3 | None = None


@dataclass(frozen=True)
class ReferenceStats:
    name: str
    source: str
    stats: dict[str, float] = field(default_factory=dict)  # e.g. suv_mean, suv_sd, suv_max
    voxels: int = 0


def region_from_label(name: str, mask: LesionMask, label_value: int) -> ReferenceRegion:
    """The voxels of one label of a mask."""
    label_name = next((s.name for s in mask.label_info if s.value == label_value), str(label_value))
    return ReferenceRegion(
        name=name,
        source=f"label '{label_name}' (value {label_value})",
        mask=np.asarray(mask.labels == label_value),
    )


def sphere_mask(volume: Volume, centre: Vec3, diameter_mm: float) -> BoolArray:
    """Voxels whose centres lie within the sphere (patient coordinates)."""
    c = volume.patient_to_index(centre)
    sk, sj, si = volume.spacing
    r = diameter_mm / 2.0
    reach = [int(np.ceil(r / s)) + 1 for s in (sk, sj, si)]
    out = np.zeros(volume.shape, dtype=bool)
    lo = [max(int(np.floor(c[n])) - reach[n], 0) for n in range(3)]
    hi = [min(int(np.ceil(c[n])) + reach[n] + 1, volume.shape[n]) for n in range(3)]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        return out
    k, j, i = np.meshgrid(*(np.arange(lo[n], hi[n]) for n in range(3)), indexing="ij")
    kji = np.stack([k, j, i], axis=-1).astype(np.float64)
    pts = volume.index_to_patient(kji.reshape(-1, 3)).reshape(kji.shape)
    d2 = np.sum((pts - np.asarray(centre)) ** 2, axis=-1)
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = d2 <= r * r
    return out


def sphere_at(name: str, volume: Volume, centre: Vec3, diameter_mm: float) -> ReferenceRegion:
    """A sphere of set diameter at a given point."""
    c = ", ".join(f"{v:.1f}" for v in centre)
    return ReferenceRegion(
        name=name,
        source=f"sphere {diameter_mm:g} mm diameter at ({c}) mm",
        mask=sphere_mask(volume, centre, diameter_mm),
        centre=centre,
    )


def sphere_in_organ(
    name: str,
    volume: Volume,
    organ: BoolArray,
    diameter_mm: float,
    *,
    organ_name: str,
    exclude: BoolArray | None = None,
) -> ReferenceRegion | None:
    """A sphere at the organ point farthest from the organ's edge and from any excluded voxel.

    None when no point of the organ is that deep (the sphere would not fit).
    """
    allowed = organ & ~exclude if exclude is not None else organ
    if not allowed.any():
        return None
    depth = ndimage.distance_transform_edt(allowed, sampling=volume.spacing)
    best = np.unravel_index(int(np.argmax(depth)), depth.shape)
    if float(depth[best]) < diameter_mm / 2.0:
        return None
    p = volume.index_to_patient(tuple(float(v) for v in best))  # type: ignore[arg-type]
    centre: Vec3 = (float(p[0]), float(p[1]), float(p[2]))
    region = sphere_at(name, volume, centre, diameter_mm)
    return ReferenceRegion(
        name=name,
        source=f"{region.source}, deepest point of '{organ_name}' away from lesions",
        mask=region.mask & allowed,
        centre=centre,
    )


def reference_stats(image: Volume, region: ReferenceRegion, quantity: str) -> ReferenceStats:
    """Mean, SD, min, max of the image in the region."""
    values = np.asarray(image.array)[region.mask]
    return ReferenceStats(
        name=region.name,
        source=region.source,
        stats=basic_stats(values, quantity),
        voxels=int(values.size),
    )


def ratios(
    lesion: Mapping[str, float],
    reference: ReferenceStats,
    definitions: Mapping[str, tuple[str, str]],
) -> tuple[dict[str, float], dict[str, str]]:
    """Named ratios lesion[stat] / reference[stat], and for each the reference's source.

    definitions: ratio name -> (lesion statistic, reference statistic), e.g.
    {"l_n_max": ("suv_max", "suv_mean")}. A ratio whose inputs are missing or whose
    denominator is not positive is left out (not measured), never 0.
    """
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for ratio_name, (num_key, den_key) in definitions.items():
        num = lesion.get(num_key)
        den = reference.stats.get(den_key)
        if num is None or den is None or den <= 0:
            continue
        values[ratio_name] = num / den
        sources[ratio_name] = f"{reference.name} {den_key}: {reference.source}"
    return values, sources


def with_ratios(
    measurements: Measurements,
    reference: ReferenceStats,
    definitions: Mapping[str, tuple[str, str]],
) -> Measurements:
    """The measurements with the ratios to this reference added, each with its source."""
    values, sources = ratios(measurements.intensity, reference, definitions)
    return replace(
        measurements,
        ratios={**measurements.ratios, **values},
        ratio_references={**measurements.ratio_references, **sources},
    )
