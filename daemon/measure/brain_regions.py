"""Reference regions of a brain PET, drawn from the MNI152 tissue maps registered to it
(measure/brain_atlas.py) and the placements of rules/amino_pet_route.yaml: striatum (FDOPA
L/S), normal-appearing contralateral brain (L/N, FET TBR), white matter (T/WM) and grey matter
at the level of the thalamus (dual-phase FDG). Pure: arrays in, masks out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.measure.brain_atlas import AtlasFit, TissueMaps, sample
from daemon.measure.brain_pet_rules import RegionRules, StriatumRules, Uptake
from daemon.volume import Volume

BoolArray = NDArray[np.bool_]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Region:
    name: str  # striatum | normal_brain | white_matter | grey_matter_thalamus
    mask: BoolArray
    method: str  # how it was drawn, with its source


def striatum_of(ras: F64, rules: StriatumRules, side: int = 0) -> BoolArray:
    """Voxels (MNI RAS coordinates `ras`) inside the rule-placed striatum; side +1 right, -1 left, 0 both."""
    out = np.zeros(ras.shape[:-1], dtype=bool)
    for e in rules.ellipsoids:
        c = np.asarray([float(v) for v in e.centre_mni])
        r = np.asarray([float(v) for v in e.radii_mm])
        for s in ((1, -1) if side == 0 else (side,)):
            centre = c * np.asarray([s, 1.0, 1.0])
            out |= np.sum(((ras - centre) / r) ** 2, axis=-1) <= 1.0
    return out


def pseudo_pet(maps: TissueMaps, uptake: Uptake, striatum: StriatumRules) -> F32:
    """The tracer's expected uptake on the template grid (for the registration)."""
    image = maps.grey * float(uptake.grey) + maps.white * float(uptake.white)
    stri = striatum_of(maps.ras_of_indices(), striatum)
    image[stri] = float(uptake.striatum)
    return np.asarray(image, dtype=np.float32)


def _grow(mask: BoolArray, mm: float, spacing: tuple[float, float, float]) -> BoolArray:
    if mm <= 0 or not mask.any():
        return mask
    r = [max(int(round(mm / s)), 0) for s in spacing]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    ball = (zz * spacing[0]) ** 2 + (yy * spacing[1]) ** 2 + (xx * spacing[2]) ** 2 <= mm * mm
    return np.asarray(ndimage.binary_dilation(mask, ball), dtype=bool)


def _erode(mask: BoolArray, mm: float, spacing: tuple[float, float, float]) -> BoolArray:
    return ~_grow(~mask, mm, spacing) if mm > 0 else mask


def _mirrored(volume: Volume, fit: AtlasFit, ras: F64, lesion: BoolArray) -> BoolArray:
    """The lesion mirrored across the MNI midsagittal plane, on the PET grid."""
    mirror = ras * np.asarray([-1.0, 1.0, 1.0])
    idx = volume.patient_to_index(fit.to_patient(mirror.reshape(-1, 3)))
    got = ndimage.map_coordinates(lesion.astype(np.float32), idx.T, order=0, mode="constant", cval=0.0)
    return np.asarray(got.reshape(lesion.shape) > 0.5, dtype=bool)


def _side(ras: F64, lesion: BoolArray | None) -> int:
    """The hemisphere opposite the lesion (+1 right, -1 left); 0 (both) without a lesion."""
    if lesion is None or not lesion.any():
        return 0
    x = float(ras[lesion][:, 0].mean())
    return -1 if x > 0 else 1


def _hemisphere(ras: F64, side: int) -> BoolArray:
    x = ras[..., 0]
    return np.ones(x.shape, dtype=bool) if side == 0 else np.asarray(x * side > 0, dtype=bool)


def _words(side: int) -> str:
    return {1: "right", -1: "left", 0: "both"}[side]


def regions(volume: Volume, fit: AtlasFit, maps: TissueMaps, ras: F64, rules: RegionRules,
            lesion: BoolArray | None) -> dict[str, Region]:
    """Every reference region on the PET grid (`ras`: MNI RAS of each PET voxel)."""
    spacing = volume.spacing
    grey, white = sample(maps.grey, maps, ras), sample(maps.white, maps, ras)
    brain = grey + white >= float(rules.brain_probability_min)
    side = _side(ras, lesion)
    hemi = _hemisphere(ras, side) & brain
    les = lesion if lesion is not None else np.zeros(volume.shape, dtype=bool)
    nb = rules.normal_brain
    away = ~_grow(les, float(nb.lesion_exclusion_mm), spacing)
    mirror = _mirrored(volume, fit, ras, les) if les.any() else les
    away &= ~_grow(mirror, float(nb.lesion_exclusion_mm), spacing) if nb.method == "hemisphere_slab" else away
    stri_all = striatum_of(ras, rules.striatum)
    stri_near = _grow(stri_all, float(nb.striatum_exclusion_mm), spacing)  # its blurred spill-over too
    stri = striatum_of(ras, rules.striatum, side) & away
    z = ras[..., 2]
    z0 = float(z[les].mean()) if les.any() else 10.0
    if nb.method == "mirrored" and les.any():
        normal = _grow(mirror, float(nb.mirrored_margin_mm), spacing) & brain & ~stri_near & ~les
        normal_how = f"lesion mirrored across the midline, grown {nb.mirrored_margin_mm} mm"
    else:
        normal = hemi & ~stri_near & away & (np.abs(z - z0) <= float(nb.slab_mm) / 2.0)
        normal_how = (f"{_words(side)} hemisphere, {nb.slab_mm} mm slab at the lesion's level, lesion and striatum "
                      f"(grown {nb.striatum_exclusion_mm} mm) excluded")
    wm = rules.white_matter
    white_m = _erode(white >= float(wm.probability_min), float(wm.erode_mm), spacing) & hemi & away
    gm = rules.grey_matter_thalamus_level
    lo, hi = (float(v) for v in gm.mni_z_mm)
    grey_m = (grey >= float(gm.probability_min)) & hemi & ~stri_all & away & (z >= lo) & (z <= hi)
    out = {
        "striatum": Region("striatum", stri, f"{_words(side)} striatum, rule-placed on MNI152 ({rules.striatum.citation.text})"),
        "normal_brain": Region("normal_brain", normal, f"{normal_how} ({nb.citation.text})"),
        "white_matter": Region("white_matter", white_m,
                               f"{_words(side)} white matter, probability >= {wm.probability_min}, eroded "
                               f"{wm.erode_mm} mm ({wm.citation.text})"),
        "grey_matter_thalamus": Region("grey_matter_thalamus", grey_m,
                                       f"{_words(side)} grey matter, MNI z {lo:g} to {hi:g} mm ({gm.citation.text})"),
    }
    return out


def brain_mask(maps: TissueMaps, ras: F64, rules: RegionRules) -> BoolArray:
    return np.asarray(sample(maps.grey + maps.white, maps, ras) >= float(rules.brain_probability_min), dtype=bool)


def grey_mask(maps: TissueMaps, ras: F64, probability: float) -> BoolArray:
    return np.asarray(sample(maps.grey, maps, ras) >= probability, dtype=bool)


def region_stats(suv: NDArray[Any], mask: BoolArray, voxel_ml: float) -> dict[str, float]:
    """SUVmax, SUVmean and the region's volume (empty region: volume 0 only)."""
    if not mask.any():
        return {"volume_ml": 0.0}
    v = np.asarray(suv, dtype=np.float64)[mask]
    return {"suv_max": float(v.max()), "suv_mean": float(v.mean()), "volume_ml": float(mask.sum()) * voxel_ml}
