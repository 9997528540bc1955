"""A SYNTHETIC whole-body FDG PET/CT phantom with known SUL, volumes and body composition.

The anatomy (anatomical frame, mm: +x patient left, +y posterior, +z head) is made of
simple shapes: a head (brain), a neck, a trunk with layers from the skin inwards --
subcutaneous fat, a muscle wall, a thin ring of visceral fat, the viscera -- and two
thighs (subcutaneous fat, muscle, femur). Inside the trunk: lungs, heart, liver,
spleen, kidneys, aorta, vertebra, retroperitoneal fat and the bladder. Physiological
FDG uptake at or above SUV 4 lies in the brain, heart, kidneys and bladder; lesions of
designed SUL (lean-body-mass SUV) and radius lie in the liver, a para-aortic node, the
right lung and the pelvic soft tissue.

Ground truth: the lesions' SUL and volumes, the TMTV at the SUV threshold on the
noise-free image (physiological uptake left out), the compartments' volumes on the
CT grid, and the organ masks. Everything here is SYNTHETIC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.demo.phantom import (
    Ellipsoid,
    Grid,
    Phantom,
    PhantomTruth,
    Pose,
    _index_to_anatomical,
    _paint,
    _truths,
)

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]

# the demo patient (daemon.demo.dicom.StudyInfo): female, 72 kg, 1.68 m
WEIGHT_KG, HEIGHT_M = 72.0, 1.68
# Janmahasatian 2005 (rules/percist.yaml): LBM = 9270 W / (8780 + 244 BMI) for a woman
LBM_KG = 9270.0 * WEIGHT_KG / (8780.0 + 244.0 * WEIGHT_KG / HEIGHT_M**2)
SUV_PER_SUL = WEIGHT_KG / LBM_KG

GRIDS: dict[tuple[str, str], Grid] = {
    ("PT", "small"): Grid(shape=(180, 96, 96), spacing=(4.0, 4.0, 4.0), centre=(0.0, 0.0, 10.0)),
    ("CT", "small"): Grid(shape=(144, 128, 128), spacing=(5.0, 3.0, 3.0), centre=(0.0, 0.0, 10.0)),
    # the end-to-end test's (tests/e2e): the same body on coarse grids, enough for the categories
    ("PT", "tiny"): Grid(shape=(120, 64, 64), spacing=(6.0, 6.0, 6.0), centre=(0.0, 0.0, 10.0)),
    ("CT", "tiny"): Grid(shape=(120, 96, 96), spacing=(6.0, 4.0, 4.0), centre=(0.0, 0.0, 10.0)),
    ("PT", "full"): Grid(shape=(300, 200, 200), spacing=(2.5, 2.0, 2.0), centre=(0.0, 0.0, 10.0)),
    ("CT", "full"): Grid(shape=(300, 512, 512), spacing=(2.5, 0.9765625, 0.9765625), centre=(0.0, 0.0, 10.0)),
}


@dataclass(frozen=True)
class Region:
    name: str
    hu: float
    suv: float


# region id = index; painted in this order by `_ids`
REGIONS: tuple[Region, ...] = (
    Region("air", -1000.0, 0.0),
    Region("subcutaneous_fat", -100.0, 0.3),
    Region("muscle", 50.0, 0.7),
    Region("visceral_fat", -100.0, 0.3),
    Region("viscera", 20.0, 0.8),
    Region("brain", 35.0, 7.0),  # physiological
    Region("neck", 20.0, 0.9),
    Region("lung", -800.0, 0.4),
    Region("heart", 45.0, 5.0),  # physiological
    Region("liver", 60.0, 1.6 * SUV_PER_SUL),  # liver SUL 1.6
    Region("spleen", 50.0, 2.0),
    Region("kidney", 30.0, 6.0),  # physiological (urine)
    Region("aorta", 40.0, 1.8),
    Region("vertebra", 450.0, 1.2),
    Region("bladder", 10.0, 20.0),  # physiological (urine)
    Region("femur", 700.0, 0.5),
)
ID = {r.name: n for n, r in enumerate(REGIONS)}
PHYSIOLOGICAL = ("brain", "heart", "kidney", "bladder")
LIVER_SUL = 1.6

TRUNK = (165.0, 115.0, -160.0, 180.0)  # semi-axes x, y; z bottom, top
SAT_MM, MUSCLE_MM, INNER_FAT_MM = 18.0, 12.0, 9.0
HEAD = ((0.0, 0.0, 265.0), (75.0, 90.0, 90.0))
NECK = (50.0, 165.0, 200.0)  # radius, z from, z to
THIGHS = ((-80.0, 0.0), (80.0, 0.0), 70.0, 12.0, 14.0)  # centres (x, y), radius, fat, femur radius
# (name, centre, radii): organs inside the trunk's viscera, painted in order
ORGANS: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...] = (
    ("visceral_fat", (0.0, 42.0, -20.0), (60.0, 28.0, 120.0)),  # retroperitoneal fat
    ("lung", (-75.0, 0.0, 120.0), (45.0, 60.0, 60.0)),
    ("lung", (75.0, 0.0, 120.0), (45.0, 60.0, 60.0)),
    ("heart", (20.0, -10.0, 110.0), (50.0, 45.0, 50.0)),
    ("liver", (-60.0, -5.0, 20.0), (55.0, 55.0, 75.0)),
    ("spleen", (75.0, 30.0, 30.0), (30.0, 35.0, 45.0)),
    ("kidney", (-65.0, 45.0, -40.0), (25.0, 25.0, 45.0)),
    ("kidney", (65.0, 45.0, -40.0), (25.0, 25.0, 45.0)),
    ("bladder", (0.0, -10.0, -125.0), (35.0, 30.0, 30.0)),
)
CYLINDERS = (("aorta", (20.0, 25.0), (11.0, 11.0)), ("vertebra", (0.0, 55.0), (20.0, 18.0)))

# lesion id -> (centre, radius mm (16: the 1 cm3 peak sphere sees the plateau through the PSF), site, kind, SUL at t0, t1, t2; 0 = absent)
# the site is the coarse site the route's CT rule must give (rules/wholebody_fdg.yaml lesion_sites):
# L2 a para-aortic node (in the midline band), L4 a pelvic soft-tissue deposit beside the bladder
LESIONS: dict[str, tuple[tuple[float, float, float], float, str, str, tuple[float, float, float]]] = {
    "L1": ((-75.0, 0.0, 10.0), 16.0, "liver", "metastasis", (6.0, 3.5, 8.5)),
    "L2": ((45.0, 0.0, 10.0), 16.0, "lymph node region", "node", (4.5, 2.8, 5.0)),
    "L3": ((-75.0, 0.0, 130.0), 16.0, "lung", "metastasis", (5.0, 3.0, 5.5)),
    "L4": ((-70.0, 20.0, -110.0), 16.0, "other soft tissue", "metastasis", (0.0, 0.0, 6.0)),
}
# PERCIST 1.0 as designed: hottest SULpeak 6.0 -> 3.5 (-42 %, -2.5 SUL) -> 8.5 (+42 %, +2.5) and a new lesion
EXPECTED: tuple[dict[str, str], ...] = ({"PERCIST1.0": "BASELINE"}, {"PERCIST1.0": "PMR"}, {"PERCIST1.0": "PMD"})
# the patient lies a little differently at each visit (translations only: the body-outline rules are per slice)
POSES = (Pose(), Pose(translation_mm=(3.0, -4.0, 6.0)), Pose(translation_mm=(-4.0, 3.0, -5.0)))
SUV_THRESHOLD = 4.0  # seed 002 (rules/percist.yaml tmtv.suv_threshold)


def lesions_at(t: int) -> list[Ellipsoid]:
    return [Ellipsoid(lid, centre, (r, r, r), kind=kind, intensity=sul[t] * SUV_PER_SUL, site=site)
            for lid, (centre, r, site, kind, sul) in LESIONS.items() if sul[t] > 0]


def _inside(x: F32, y: F32, z: F32 | None, centre: Sequence[float], radii: Sequence[float]) -> NDArray[np.bool_]:
    q = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
    if z is not None:
        q = q + ((z - centre[2]) / radii[2]) ** 2
    return np.asarray(q <= 1.0)


def _slab(to_anat: NDArray[np.float64], k0: int, k1: int, shape: tuple[int, int, int]) -> U8:
    k = np.arange(k0, k1, dtype=np.float32)[:, None, None]
    j = np.arange(shape[1], dtype=np.float32)[None, :, None]
    i = np.arange(shape[2], dtype=np.float32)[None, None, :]
    m = to_anat.astype(np.float32)
    x, y, z = (m[a, 0] * k + m[a, 1] * j + m[a, 2] * i + m[a, 3] for a in range(3))
    x, y, z = (np.broadcast_to(v, (k1 - k0, shape[1], shape[2])) for v in (x, y, z))
    out = np.zeros((k1 - k0, shape[1], shape[2]), dtype=np.uint8)
    ax, ay, zb, zt = TRUNK
    in_trunk = (z >= zb) & (z < zt)

    def ring(d: float) -> NDArray[np.bool_]:
        return in_trunk & _inside(x, y, None, (0.0, 0.0), (ax - d, ay - d))

    out[ring(0.0)] = ID["subcutaneous_fat"]
    out[ring(SAT_MM)] = ID["muscle"]
    out[ring(SAT_MM + MUSCLE_MM)] = ID["visceral_fat"]
    viscera = ring(SAT_MM + MUSCLE_MM + INNER_FAT_MM)
    out[viscera] = ID["viscera"]
    for name, centre, radii in ORGANS:
        out[viscera & _inside(x, y, z, centre, radii)] = ID[name]
    for name, (cx, cy), (rx, ry) in CYLINDERS:
        out[viscera & (z > zb + 40.0) & _inside(x, y, None, (cx, cy), (rx, ry))] = ID[name]
    r_neck, n0, n1 = NECK
    out[(z >= max(n0, zt)) & (z < n1) & _inside(x, y, None, (0.0, 0.0), (r_neck, r_neck))] = ID["neck"]
    out[_inside(x, y, z, *HEAD)] = ID["brain"]
    (lx, ly), (rx_, ry_), radius, fat, femur = THIGHS
    legs = z < zb
    for cx, cy in ((lx, ly), (rx_, ry_)):
        out[legs & _inside(x, y, None, (cx, cy), (radius, radius))] = ID["subcutaneous_fat"]
        out[legs & _inside(x, y, None, (cx, cy), (radius - fat, radius - fat))] = ID["muscle"]
        out[legs & _inside(x, y, None, (cx, cy), (femur, femur))] = ID["femur"]
    return out


def region_ids(grid: Grid, pose: Pose | None = None) -> U8:
    """The region id (index of REGIONS) of every voxel of the grid, before lesions."""
    to_anat = _index_to_anatomical(grid, pose or Pose())
    ids = np.empty(grid.shape, dtype=np.uint8)
    for k0 in range(0, grid.shape[0], 16):
        k1 = min(k0 + 16, grid.shape[0])
        ids[k0:k1] = _slab(to_anat, k0, k1, grid.shape)
    return ids


def _values(ids: U8, attr: str) -> F32:
    lut = np.array([float(getattr(r, attr)) for r in REGIONS], dtype=np.float32)
    return np.asarray(lut[ids], dtype=np.float32)


def wholebody_ct(grid: Grid, lesions: Sequence[Ellipsoid] = (), pose: Pose | None = None, seed: int = 0,
                 noise_hu: float = 15.0) -> Phantom:
    """The low-dose CT (HU) of the phantom; truth organs: every region's mask (before lesions)."""
    pose = pose or Pose()
    rng = np.random.default_rng(seed)
    ids = region_ids(grid, pose)
    image = _values(ids, "hu")
    labels = np.zeros(grid.shape, dtype=np.int16)
    aff = grid.affine()
    values = {les.lesion_id: (40.0, 40.0) for les in lesions}
    placed = _paint(image, labels, aff, lesions, pose, values, seed)
    image += rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise_hu)
    organs = {r.name: np.asarray(ids == n) for n, r in enumerate(REGIONS) if r.name != "air"}
    truth = PhantomTruth(modality="CT", units="HU", affine=aff, pose=pose,
                         lesions=_truths(aff, labels, image, lesions, placed, values), organs=organs)
    return Phantom(image, labels, truth)


def wholebody_pet(grid: Grid, lesions: Sequence[Ellipsoid] = (), pose: Pose | None = None, seed: int = 0,
                  fwhm_mm: float = 6.0, noise: float = 0.02) -> tuple[Phantom, F32]:
    """The FDG PET (SUVbw) of the phantom, and its noise-free (blurred) image.

    Lesions are uniform at their `intensity` (SUVbw = SUL x SUV_PER_SUL). Truth organs: the
    physiological regions (before blurring) and the liver.
    """
    pose = pose or Pose()
    rng = np.random.default_rng(seed)
    ids = region_ids(grid, pose)
    image = _values(ids, "suv")
    labels = np.zeros(grid.shape, dtype=np.int16)
    aff = grid.affine()
    values = {les.lesion_id: (float(les.intensity or 0.0), float(les.intensity or 0.0)) for les in lesions}
    placed = _paint(image, labels, aff, lesions, pose, values)
    sigma = [fwhm_mm / 2.3548 / s for s in np.linalg.norm(aff[:3, :3], axis=0)]
    clean = np.asarray(ndimage.gaussian_filter(image, sigma), dtype=np.float32)
    noisy = clean * (1.0 + rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise))
    np.maximum(noisy, 0.0, out=noisy)
    organs = {name: np.asarray(ids == ID[name]) for name in (*PHYSIOLOGICAL, "liver")}
    truth = PhantomTruth(modality="PT", units="SUVbw", affine=aff, pose=pose,
                         lesions=_truths(aff, labels, noisy, lesions, placed, values),
                         reference={"liver_sul": LIVER_SUL, "suv_per_sul": SUV_PER_SUL}, organs=organs)
    return Phantom(noisy, labels, truth), clean


def metabolic_truth(clean: F32, labels: NDArray[np.int16], organs: dict[str, NDArray[np.bool_]],
                    voxel_ml: float) -> dict[str, float]:
    """TMTV (mL) and TLG at SUV >= SUV_THRESHOLD on the noise-free image, lesion by lesion
    (the hot voxels connected to a lesion), physiological regions left out."""
    physiological = np.zeros(clean.shape, dtype=bool)
    for name in PHYSIOLOGICAL:
        physiological |= ndimage.binary_dilation(organs[name], iterations=3)
    hot = (clean >= SUV_THRESHOLD) & ~physiological
    comp, _ = ndimage.label(hot, structure=np.ones((3, 3, 3), dtype=bool))
    keep = np.unique(comp[(labels > 0) & hot])
    lesion_hot = np.isin(comp, keep[keep > 0])
    return {"tmtv_ml": float(np.count_nonzero(lesion_hot)) * voxel_ml,
            "tlg": float(clean[lesion_hot].sum()) * voxel_ml}


def composition_truth(ids: U8, voxel_ml: float) -> dict[str, float]:
    """Compartment volumes (mL) on the CT grid: subcutaneous fat, visceral fat, skeletal muscle."""
    counts = np.bincount(ids.ravel(), minlength=len(REGIONS))
    return {"subcutaneous_fat_ml": float(counts[ID["subcutaneous_fat"]]) * voxel_ml,
            "visceral_fat_ml": float(counts[ID["visceral_fat"]]) * voxel_ml,
            "skeletal_muscle_ml": float(counts[ID["muscle"]]) * voxel_ml}
