"""Synthetic phantoms with known ground truth (pure numpy; no DICOM here).

Everything here is SYNTHETIC. A phantom is defined in an *anatomical* frame
(LPS millimetres, origin at the centre of the anatomy: the brain for MR, the
upper abdomen for CT/PET). A rigid `Pose` places the anatomy in the scanner's
patient frame (so the patient may lie differently at each timepoint), and a
`Grid` describes the acquisition (shape, spacing, orientation: axial, sagittal,
oblique or flipped all work). Lesions are ellipsoids given in the anatomical
frame; their truth is reported in the patient frame.

Quick start (e.g. to train a model)::

    import numpy as np
    from daemon.demo.phantom import Grid, brain_mr_phantom, random_brain_lesions

    rng = np.random.default_rng(0)
    grid = Grid(shape=(96, 128, 128), spacing=(2.0, 2.0, 2.0))
    lesions = random_brain_lesions(rng, count=4, diameter_mm=(4.0, 30.0))
    ph = brain_mr_phantom(grid, lesions, seed=1)
    image, labels, truth = ph          # image float32 (k, j, i); labels int16, 0 = background
    truth.affine                        # 4x4 (k, j, i, 1) -> patient LPS mm, as daemon.volume.Volume
    truth.lesions[0].longest_axial_diameter_mm

`labels` holds lesion number n (1..N, in the order of `lesions`) at every voxel
whose centre lies inside lesion n's ellipsoid; the image has partial-volume
edges. Pass `pose=random_pose(rng)` to move the head (rotation <= 10 deg,
translation <= 20 mm) and `Grid.oblique(...)` to tilt the acquisition.

Functions: `brain_mr_phantom` (post-gadolinium 3D T1 on the MNI152 2009a
template; MR signal, white matter about 880; enhancing lesions 1.45 x white
matter, optional necrotic core), `liver_ct_phantom` (portal-venous CT in HU,
hypodense metastases, lymph nodes in retroperitoneal fat), `torso_pet_phantom`
(FDG PET in SUVbw; `daemon.demo.dicom.pet_bqml` converts to Bq/ml),
`brain_pet_phantom` (amino-acid PET in SUVbw on the MNI grey/white maps, striatum),
`random_brain_lesions`, `random_liver_lesions` (with `chun_looks=True`, each metastasis
textured like a random Chun group 1/2/3: see CHUN_LOOKS), `organ_mask`, `random_pose`, and `phantom_volume`
(the phantom as a daemon.volume.Volume, no DICOM). Cost: a
96x128x128 brain is about 0.1 s; 208x512x512 about 9 s.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.volume import SliceRef, Volume

Vec3 = tuple[float, float, float]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

SYNTHETIC_NOTE = "SYNTHETIC PHANTOM - not patient data"


def rotation_matrix(angles_deg: Vec3) -> F64:
    """Rotation about x, then y, then z (degrees), as a 3x3 matrix."""
    ax, ay, az = (math.radians(a) for a in angles_deg)
    cx, sx, cy, sy, cz, sz = (
        math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=np.float64)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=np.float64)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=np.float64)
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


@dataclass(frozen=True)
class Pose:
    """Where the anatomy lies in the scanner: patient = R(rotation) @ anatomical + translation."""

    rotation_deg: Vec3 = (0.0, 0.0, 0.0)
    translation_mm: Vec3 = (0.0, 0.0, 0.0)

    def matrix(self) -> F64:
        m = np.eye(4)
        m[:3, :3] = rotation_matrix(self.rotation_deg)
        m[:3, 3] = self.translation_mm
        return m


def random_pose(rng: np.random.Generator, max_rotation_deg: float = 10.0, max_translation_mm: float = 20.0) -> Pose:
    """A pose with each rotation angle within +/- max_rotation_deg and a translation of at most max_translation_mm."""
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, size=3)
    direction = rng.normal(size=3)
    shift = direction / np.linalg.norm(direction) * rng.uniform(0.0, max_translation_mm)
    return Pose(
        rotation_deg=(float(angles[0]), float(angles[1]), float(angles[2])),
        translation_mm=(float(shift[0]), float(shift[1]), float(shift[2])),
    )


@dataclass(frozen=True)
class Grid:
    """An acquisition grid: array index (k, j, i) -> patient LPS mm.

    `row_direction` is DICOM's first ImageOrientationPatient triplet (increasing
    column index i), `column_direction` the second (increasing row index j);
    slices advance along `slice_direction` (default row x column). `centre` is
    the patient coordinate of the grid's centre.
    """

    shape: tuple[int, int, int]
    spacing: Vec3  # mm along (k, j, i)
    row_direction: Vec3 = (1.0, 0.0, 0.0)
    column_direction: Vec3 = (0.0, 1.0, 0.0)
    slice_direction: Vec3 | None = None
    centre: Vec3 = (0.0, 0.0, 0.0)

    def affine(self) -> F64:
        r = np.asarray(self.row_direction, dtype=np.float64)
        c = np.asarray(self.column_direction, dtype=np.float64)
        n = np.cross(r, c) if self.slice_direction is None else np.asarray(self.slice_direction, dtype=np.float64)
        m = np.eye(4)
        m[:3, 0] = n / np.linalg.norm(n) * self.spacing[0]
        m[:3, 1] = c / np.linalg.norm(c) * self.spacing[1]
        m[:3, 2] = r / np.linalg.norm(r) * self.spacing[2]
        half = (np.asarray(self.shape, dtype=np.float64) - 1.0) / 2.0
        m[:3, 3] = np.asarray(self.centre, dtype=np.float64) - m[:3, :3] @ half
        return m

    @staticmethod
    def oblique(shape: tuple[int, int, int], spacing: Vec3, angles_deg: Vec3, centre: Vec3 = (0.0, 0.0, 0.0)) -> Grid:
        """An axial grid rotated by `angles_deg` (x, y, z)."""
        r = rotation_matrix(angles_deg)
        return Grid(
            shape=shape,
            spacing=spacing,
            row_direction=tuple(float(v) for v in r[:, 0]),  # type: ignore[arg-type]
            column_direction=tuple(float(v) for v in r[:, 1]),  # type: ignore[arg-type]
            centre=centre,
        )


@dataclass(frozen=True)
class Ellipsoid:
    """A lesion: an ellipsoid in the anatomical frame (mm).

    `radii` are the semi-axes along the ellipsoid's own axes, which are the
    anatomical axes rotated by `angles_deg`. `intensity` is the value inside the
    lesion in the phantom's units (None: the phantom's default for `kind`);
    `core_fraction` > 0 gives a necrotic core of that fraction of the radii
    (ring enhancement in MR, a darker centre in CT, a cold centre in PET).
    """

    lesion_id: str
    centre: Vec3
    radii: Vec3
    angles_deg: Vec3 = (0.0, 0.0, 0.0)
    kind: str = "metastasis"  # "metastasis" | "node"
    intensity: float | None = None
    core_fraction: float = 0.0
    site: str = ""
    # texture (Chun's morphology on CT; 0 = none): SD of a smooth random texture added inside
    heterogeneity_hu: float = 0.0
    interface_mm: float = 0.0  # full width of the lesion-background ramp (below one voxel: one voxel)
    rim_hu: float = 0.0  # added to a peripheral rim inside the lesion, `rim_mm` thick (fading inwards)
    rim_mm: float = 3.0

    def scaled(self, factor: float) -> Ellipsoid:
        """The same lesion with its radii multiplied by `factor` (growth/shrinkage)."""
        r = self.radii
        return replace(self, radii=(r[0] * factor, r[1] * factor, r[2] * factor))

    def textured(self, look: Look) -> Ellipsoid:
        """The same lesion with a CT look: mean HU, texture, interface width and rim."""
        return replace(self, intensity=look.hu, heterogeneity_hu=look.heterogeneity_hu,
                       interface_mm=look.interface_mm, rim_hu=look.rim_hu)


@dataclass(frozen=True)
class Look:
    """How a liver metastasis looks on portal-venous CT (see CHUN_LOOKS)."""

    hu: float
    heterogeneity_hu: float
    interface_mm: float
    rim_hu: float


# Designed looks of Chun's morphologic groups (Chun 2009; chun.md section 1) on this phantom
# (liver 110 HU): group 1 homogeneous, hypodense, sharp, no rim; group 3 heterogeneous, thick
# ill-defined interface, enhancing rim; group 2 between. Every look stays hypodense to the liver.
CHUN_LOOKS: dict[int, Look] = {
    1: Look(hu=30.0, heterogeneity_hu=0.0, interface_mm=0.0, rim_hu=0.0),
    2: Look(hu=60.0, heterogeneity_hu=10.0, interface_mm=4.0, rim_hu=12.0),
    3: Look(hu=60.0, heterogeneity_hu=26.0, interface_mm=10.0, rim_hu=28.0),
}


@dataclass(frozen=True)
class LesionTruth:
    """The ground truth of one lesion, in the patient frame (LPS mm)."""

    label: int
    lesion_id: str
    kind: str
    site: str
    centre: Vec3
    semi_axes_mm: Vec3
    axes: tuple[Vec3, Vec3, Vec3]  # unit vectors (patient frame) of the semi-axes
    volume_mm3: float  # analytic: 4/3 pi a b c
    mask_volume_mm3: float  # voxel count x voxel volume on this grid
    voxel_count: int
    longest_axial_diameter_mm: float  # analytic, in the patient axial plane through the centre
    perpendicular_diameter_mm: float  # analytic, perpendicular to it in the same plane
    max_3d_diameter_mm: float
    value: float  # the lesion's true value (MR signal, HU or SUV)
    stats: dict[str, float] = field(default_factory=dict)  # measured on the image in the mask


@dataclass(frozen=True)
class PhantomTruth:
    modality: str  # "MR" | "CT" | "PT"
    units: str  # "MR signal" | "HU" | "SUVbw"
    affine: F64  # 4x4 (k, j, i, 1) -> patient LPS mm (as Volume.affine)
    pose: Pose
    lesions: tuple[LesionTruth, ...]
    reference: dict[str, float] = field(default_factory=dict)  # e.g. white matter, liver values
    # organ name -> where it lies, lesions excluded (CT: "liver", the parenchyma a model labels as the organ)
    organs: dict[str, NDArray[np.bool_]] = field(default_factory=dict)


class Phantom(NamedTuple):
    image: F32  # (k, j, i)
    labels: NDArray[np.int16]  # (k, j, i), lesion n at label n
    truth: PhantomTruth


# --------------------------------------------------------------------------- geometry


def _index_to_anatomical(grid: Grid, pose: Pose) -> F64:
    """4x4 mapping (k, j, i, 1) -> anatomical mm."""
    return np.asarray(np.linalg.inv(pose.matrix()) @ grid.affine(), dtype=np.float64)


def axial_diameters(quadric: F64) -> tuple[float, float]:
    """Longest diameter (and its perpendicular) of an ellipsoid x^T A x <= 1 in patient axial planes.

    The largest axial cross-section passes through the centre; its semi-axes
    are 1/sqrt(eigenvalues) of A's (x, y) block.
    """
    ev = np.linalg.eigvalsh(quadric[:2, :2])
    return float(2.0 / math.sqrt(ev[0])), float(2.0 / math.sqrt(ev[1]))


@dataclass(frozen=True)
class _Placed:
    centre: F64  # patient
    rot: F64  # columns: lesion axes in the patient frame
    radii: F64

    @property
    def quadric(self) -> F64:
        return np.asarray(self.rot @ np.diag(1.0 / self.radii**2) @ self.rot.T, dtype=np.float64)


def _place(lesion: Ellipsoid, pose: Pose) -> _Placed:
    pm = pose.matrix()
    rot = pm[:3, :3] @ rotation_matrix(lesion.angles_deg)
    centre = pm[:3, :3] @ np.asarray(lesion.centre) + pm[:3, 3]
    return _Placed(centre=centre, rot=rot, radii=np.asarray(lesion.radii, dtype=np.float64))


def _rho(grid_affine: F64, shape: tuple[int, int, int], placed: _Placed,
         margin_mm: float = 0.0) -> tuple[tuple[slice, ...], F64] | None:
    """Normalised ellipsoid radius sqrt(x^T A x) on the lesion's bounding box (None: off grid)."""
    inv = np.linalg.inv(grid_affine)
    rmax = float(placed.radii.max()) + 2.0 * float(np.linalg.norm(grid_affine[:3, :3], axis=0).max()) + margin_mm
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    pts = placed.centre + corners * rmax
    idx = pts @ inv[:3, :3].T + inv[:3, 3]
    lo = np.maximum(np.floor(idx.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 1, np.asarray(shape))
    if np.any(hi <= lo):
        return None
    kk, jj, ii = np.meshgrid(*(np.arange(a, b, dtype=np.float64) for a, b in zip(lo, hi, strict=True)), indexing="ij")
    kji = np.stack([kk, jj, ii], axis=-1)
    xyz = kji @ grid_affine[:3, :3].T + grid_affine[:3, 3] - placed.centre
    local = xyz @ placed.rot  # coordinates along the lesion's axes
    q = np.sum((local / placed.radii) ** 2, axis=-1)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return box, np.sqrt(q)


TEXTURE_MM = 2.0  # correlation length (Gaussian sigma) of a lesion's texture


def _texture(rng: np.random.Generator, shape: tuple[int, ...], spacing: F64) -> F32:
    """A smooth random field of unit SD (correlation TEXTURE_MM), on a lesion's box."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape), TEXTURE_MM / spacing)
    sd = float(field_.std())
    return np.asarray(field_ / sd if sd > 0 else field_, dtype=np.float32)


def _lesion_values(lesion: Ellipsoid, dist: F64, vox: float, value: float, texture: F32 | None) -> F32:
    """The value inside a lesion before the core and the blend into the background: texture, rim."""
    inner = np.full(dist.shape, value, dtype=np.float32)
    if texture is not None:
        inner += np.float32(lesion.heterogeneity_hu) * texture
    if lesion.rim_hu:  # full over the outer half of rim_mm, fading to nothing at 1.5 x rim_mm deep
        rim = np.clip((dist + 1.5 * lesion.rim_mm) / lesion.rim_mm, 0.0, 1.0).astype(np.float32)
        inner += np.float32(lesion.rim_hu) * rim
    return inner


def _paint(
    image: F32,
    labels: NDArray[np.int16],
    grid_affine: F64,
    lesions: Sequence[Ellipsoid],
    pose: Pose,
    value_of: dict[str, tuple[float, float]],
    seed: int = 0,
) -> list[_Placed]:
    """Paint each lesion (soft edge, optional core, texture, rim) into image and labels; return placements.

    value_of maps lesion_id -> (lesion value, core value). The edge is a linear ramp one voxel
    wide, or `interface_mm` wide when larger, centred on the surface; the texture of lesion n
    comes from the seed and n only.
    """
    spacing = np.linalg.norm(grid_affine[:3, :3], axis=0)
    vox = float(spacing.min())
    placed_all: list[_Placed] = []
    for n, lesion in enumerate(lesions, start=1):
        placed = _place(lesion, pose)
        placed_all.append(placed)
        width = max(vox, lesion.interface_mm)
        got = _rho(grid_affine, labels.shape, placed, width / 2.0)
        if got is None:
            continue
        box, rho = got
        reff = float(np.exp(np.mean(np.log(placed.radii))))
        dist = (rho - 1.0) * reff  # approximate signed distance (mm) to the surface
        weight = np.clip(0.5 - dist / width, 0.0, 1.0).astype(np.float32)
        value, core = value_of[lesion.lesion_id]
        texture = (_texture(np.random.default_rng([seed, n]), rho.shape, spacing)
                   if lesion.heterogeneity_hu > 0 else None)
        inner = _lesion_values(lesion, dist, vox, value, texture)
        if lesion.core_fraction > 0:
            cdist = (rho - lesion.core_fraction) * reff
            cw = np.clip(0.5 - cdist / vox, 0.0, 1.0).astype(np.float32)
            inner = inner * (1 - cw) + np.float32(core) * cw
        region = image[box]
        image[box] = region * (1 - weight) + inner * weight
        lab = labels[box]
        lab[rho <= 1.0] = n
    return placed_all


def _truths(
    grid_affine: F64,
    labels: NDArray[np.int16],
    image: F32,
    lesions: Sequence[Ellipsoid],
    placed: Sequence[_Placed],
    values: dict[str, tuple[float, float]],
) -> tuple[LesionTruth, ...]:
    voxel_mm3 = float(abs(np.linalg.det(grid_affine[:3, :3])))
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=len(lesions) + 1)
    out = []
    for n, (lesion, p) in enumerate(zip(lesions, placed, strict=True), start=1):
        long_d, short_d = axial_diameters(p.quadric)
        inside = image[labels == n] if counts[n] else np.zeros(0, dtype=np.float32)
        stats = {"mean": float(inside.mean()), "max": float(inside.max()), "min": float(inside.min())} if inside.size else {}
        out.append(
            LesionTruth(
                label=n,
                lesion_id=lesion.lesion_id,
                kind=lesion.kind,
                site=lesion.site,
                centre=(float(p.centre[0]), float(p.centre[1]), float(p.centre[2])),
                semi_axes_mm=(float(p.radii[0]), float(p.radii[1]), float(p.radii[2])),
                axes=tuple((float(p.rot[0, a]), float(p.rot[1, a]), float(p.rot[2, a])) for a in range(3)),  # type: ignore[arg-type]
                volume_mm3=float(4.0 / 3.0 * math.pi * np.prod(p.radii)),
                mask_volume_mm3=float(counts[n]) * voxel_mm3,
                voxel_count=int(counts[n]),
                longest_axial_diameter_mm=long_d,
                perpendicular_diameter_mm=short_d,
                max_3d_diameter_mm=float(2.0 * p.radii.max()),
                value=values[lesion.lesion_id][0],
                stats=stats,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- brain MR


_BRAIN_CENTRE_RAS = (0.0, -18.0, 15.0)  # mm in MNI space: the anatomical origin of the brain phantom


def _mni_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nilearn is not installed: the MNI152 template of the brain phantom ships "
                                "inside it (the extra nadir[demo]: pip install 'nadir[demo]', or make demo)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@dataclass(frozen=True, eq=False)
class MniTemplate:
    """MNI152 2009a (symmetric) at 1 mm: T1 and a brain probability (grey + white matter)."""

    t1: F32
    brain: F32  # 0..1
    grey: F32  # grey matter probability 0..1
    white: F32  # white matter probability 0..1
    affine_lps: F64  # 4x4 voxel -> anatomical LPS mm (origin at the brain centre)
    white_matter_t1: float  # mean T1 where white matter probability > 0.8


@lru_cache(maxsize=1)
def mni_template() -> MniTemplate:
    """Load the template once (about 0.1 s)."""
    import nibabel as nib

    d = _mni_dir()

    def load(name: str) -> tuple[F32, F64]:
        img: Any = nib.load(str(d / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"))
        return np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine, dtype=np.float64)

    t1, aff = load("t1")
    gm, _ = load("gm")
    wm, _ = load("wm")
    ras_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    shift = np.eye(4)
    shift[:3, 3] = -(ras_to_lps[:3, :3] @ np.asarray(_BRAIN_CENTRE_RAS))
    brain = np.clip((gm + wm) / 255.0, 0.0, 1.0).astype(np.float32)
    return MniTemplate(
        t1=t1,
        brain=brain,
        grey=(gm / np.float32(255.0)).astype(np.float32),
        white=(wm / np.float32(255.0)).astype(np.float32),
        affine_lps=np.asarray(shift @ ras_to_lps @ aff, dtype=np.float64),
        white_matter_t1=float(t1[wm > 0.8 * 255].mean()),
    )


def _sample_template(volume: F32, template_affine: F64, grid: Grid, pose: Pose, order: int = 1) -> F32:
    to_anat = _index_to_anatomical(grid, pose)
    m = np.linalg.inv(template_affine) @ to_anat  # output index -> template voxel index
    out = ndimage.affine_transform(
        volume, m[:3, :3], offset=m[:3, 3], output_shape=grid.shape, order=order, mode="constant", cval=0.0,
        prefilter=False,
    )
    return np.asarray(out, dtype=np.float32)


MR_SCALE = 4.0  # template uint8 -> MR signal units (white matter about 880)
MR_ENHANCING = 1.45  # enhancing lesion / white matter signal
MR_CORE = 0.35  # necrotic core / white matter signal


def brain_mr_phantom(
    grid: Grid,
    lesions: Sequence[Ellipsoid] = (),
    pose: Pose = Pose(),
    seed: int = 0,
    noise: float = 0.02,
) -> Phantom:
    """A post-gadolinium 3D T1 brain (MNI152 2009a background) with enhancing lesions.

    Units are MR signal (white matter about 880). Lesion intensity defaults to
    MR_ENHANCING x white matter (a lesion's `intensity` overrides it, in the same
    units); `core_fraction` gives ring enhancement. Gaussian noise of `noise` x
    white matter. Returns Phantom(image, labels, truth) (see the module doc).
    """
    tpl = mni_template()
    rng = np.random.default_rng(seed)
    image = _sample_template(tpl.t1, tpl.affine_lps, grid, pose) * np.float32(MR_SCALE)
    wm = tpl.white_matter_t1 * MR_SCALE
    values = {
        les.lesion_id: (les.intensity if les.intensity is not None else MR_ENHANCING * wm, MR_CORE * wm)
        for les in lesions
    }
    labels = np.zeros(grid.shape, dtype=np.int16)
    aff = grid.affine()
    placed = _paint(image, labels, aff, lesions, pose, values)
    image += rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise * wm)
    np.maximum(image, 0.0, out=image)
    truth = PhantomTruth(
        modality="MR", units="MR signal", affine=aff, pose=pose,
        lesions=_truths(aff, labels, image, lesions, placed, values),
        reference={"white_matter": wm},
    )
    return Phantom(image, labels, truth)


def _spread(rng: np.random.Generator, count: int, propose: Callable[[np.random.Generator, float], F64 | None],
            diameter_mm: tuple[float, float], tries: int = 400) -> list[tuple[F64, float]]:
    chosen: list[tuple[F64, float]] = []
    for _ in range(tries):
        if len(chosen) == count:
            break
        d = float(rng.uniform(*diameter_mm))
        c = propose(rng, d / 2.0)
        if c is None:
            continue
        if all(np.linalg.norm(c - c2) > (d / 2.0 + r2) * 1.3 + 2.0 for c2, r2 in chosen):
            chosen.append((c, d / 2.0))
    return chosen


def _ellipsoids(rng: np.random.Generator, chosen: list[tuple[F64, float]], prefix: str, kind: str,
                site: str, elongation: float, core_above_mm: float) -> list[Ellipsoid]:
    out = []
    for n, (c, r) in enumerate(chosen, start=1):
        stretch = rng.uniform(1.0 - elongation, 1.0 + elongation, size=3)
        stretch /= np.prod(stretch) ** (1 / 3)
        radii = tuple(float(r * s) for s in stretch)
        angles = tuple(float(a) for a in rng.uniform(-90, 90, size=3))
        out.append(Ellipsoid(
            lesion_id=f"{prefix}{n}", centre=(float(c[0]), float(c[1]), float(c[2])), radii=radii,  # type: ignore[arg-type]
            angles_deg=angles, kind=kind, site=site,  # type: ignore[arg-type]
            core_fraction=0.5 if 2 * r >= core_above_mm and rng.random() < 0.5 else 0.0,
        ))
    return out


@lru_cache(maxsize=1)
def _brain_voxels() -> NDArray[np.intp]:
    return np.argwhere(mni_template().brain > 0.5)


def random_brain_lesions(
    rng: np.random.Generator,
    count: int,
    diameter_mm: tuple[float, float] = (4.0, 30.0),
    elongation: float = 0.2,
    core_above_mm: float = 15.0,
) -> list[Ellipsoid]:
    """`count` non-overlapping ellipsoids inside the brain (grey + white matter), anatomical frame.

    Diameters (geometric mean) uniform in `diameter_mm`; axes stretched by up to
    +/- `elongation` and randomly oriented; lesions wider than `core_above_mm`
    have a necrotic core half the time. Fewer than `count` may come back if the
    brain is too crowded.
    """
    tpl = mni_template()
    inside = _brain_voxels()

    def propose(g: np.random.Generator, r: float) -> F64 | None:
        v = inside[int(g.integers(len(inside)))]
        c = tpl.affine_lps[:3, :3] @ v + tpl.affine_lps[:3, 3]
        for axis in np.vstack([np.eye(3), -np.eye(3)]):
            p = np.linalg.inv(tpl.affine_lps) @ np.append(c + axis * r * 1.1, 1.0)
            q = np.round(p[:3]).astype(int)
            if np.any(q < 0) or np.any(q >= tpl.brain.shape) or tpl.brain[tuple(q)] < 0.5:
                return None
        return np.asarray(c, dtype=np.float64)

    return _ellipsoids(rng, _spread(rng, count, propose, diameter_mm), "B", "metastasis", "brain",
                       elongation, core_above_mm)


# --------------------------------------------------------------------------- torso CT / PET


@dataclass(frozen=True)
class _Organ:
    name: str
    centre: Vec3
    radii: Vec3  # ellipsoid; for cylinders (along z) radii[2] <= 0
    hu: float
    suv: float


# Anatomical frame for the torso: origin mid upper abdomen; +x patient left, +y posterior, +z head.
_BODY = (165.0, 115.0)  # elliptic cylinder semi-axes (x, y)
_FAT_MM = 18.0
_ORGANS: tuple[_Organ, ...] = (
    _Organ("retroperitoneal_fat", (0.0, 42.0, 0.0), (62.0, 30.0, 0.0), -90.0, 0.3),  # painted first
    _Organ("liver", (-70.0, -5.0, 30.0), (85.0, 75.0, 80.0), 110.0, 2.2),
    _Organ("spleen", (95.0, 45.0, 40.0), (35.0, 45.0, 55.0), 120.0, 1.9),
    _Organ("kidney_right", (-70.0, 55.0, -45.0), (28.0, 30.0, 50.0), 170.0, 3.5),
    _Organ("kidney_left", (70.0, 55.0, -40.0), (28.0, 30.0, 50.0), 170.0, 3.5),
    _Organ("aorta", (12.0, 35.0, 0.0), (12.0, 12.0, 0.0), 160.0, 1.8),
    _Organ("ivc", (-25.0, 30.0, 0.0), (13.0, 11.0, 0.0), 140.0, 1.7),
    _Organ("vertebra", (0.0, 75.0, 0.0), (20.0, 18.0, 0.0), 450.0, 1.3),
)


def _organ(name: str) -> _Organ:
    return next(o for o in _ORGANS if o.name == name)


CT_TISSUE_HU = 40.0
CT_FAT_HU = -100.0
CT_AIR_HU = -1000.0
CT_METASTASIS_HU = 55.0  # hypodense in portal-venous phase
CT_NODE_HU = 45.0
CT_CORE_HU = 20.0
PET_TISSUE_SUV = 0.8
PET_FAT_SUV = 0.3


_AIR, _FAT, _TISSUE = 0, 1, 2  # torso region ids; organ n of _ORGANS is 3 + n


def _torso_slab(to_anat: F64, k0: int, k1: int, shape: tuple[int, int, int]) -> NDArray[np.uint8]:
    """The torso's region ids on slices k0..k1-1 (bounded memory for full-size grids)."""
    k = np.arange(k0, k1, dtype=np.float32)[:, None, None]
    j = np.arange(shape[1], dtype=np.float32)[None, :, None]
    i = np.arange(shape[2], dtype=np.float32)[None, None, :]
    m = to_anat.astype(np.float32)
    x, y, z = (m[a, 0] * k + m[a, 1] * j + m[a, 2] * i + m[a, 3] for a in range(3))
    out = np.full((k1 - k0, shape[1], shape[2]), _AIR, dtype=np.uint8)
    out[(x / _BODY[0]) ** 2 + (y / _BODY[1]) ** 2 <= 1.0] = _FAT
    inner = (x / (_BODY[0] - _FAT_MM)) ** 2 + (y / (_BODY[1] - _FAT_MM)) ** 2 <= 1.0
    out[inner] = _TISSUE
    for n, o in enumerate(_ORGANS):
        q = ((x - o.centre[0]) / o.radii[0]) ** 2 + ((y - o.centre[1]) / o.radii[1]) ** 2
        if o.radii[2] > 0:
            q = q + ((z - o.centre[2]) / o.radii[2]) ** 2
        out[(q <= 1.0) & inner] = 3 + n
    return out


def _torso_ids(grid: Grid, pose: Pose) -> NDArray[np.uint8]:
    to_anat = _index_to_anatomical(grid, pose)
    ids = np.empty(grid.shape, dtype=np.uint8)
    step = 16
    for k0 in range(0, grid.shape[0], step):
        k1 = min(k0 + step, grid.shape[0])
        ids[k0:k1] = _torso_slab(to_anat, k0, k1, grid.shape)
    return ids


def _torso(ids: NDArray[np.uint8], attr: str, tissue: float, fat: float, air: float) -> F32:
    """The torso's values (HU or SUV, organ attribute `attr`) from its region ids."""
    lut = np.array([air, fat, tissue, *(float(getattr(o, attr)) for o in _ORGANS)], dtype=np.float32)
    return np.asarray(lut[ids], dtype=np.float32)


def organ_mask(grid: Grid, name: str = "liver", pose: Pose = Pose()) -> NDArray[np.bool_]:
    """Where organ `name` of the torso phantom lies on the grid (before lesions are painted)."""
    n = next(n for n, o in enumerate(_ORGANS) if o.name == name)
    return np.asarray(_torso_ids(grid, pose) == 3 + n)


def liver_ct_phantom(
    grid: Grid,
    lesions: Sequence[Ellipsoid] = (),
    pose: Pose = Pose(),
    seed: int = 0,
    noise_hu: float = 12.0,
) -> Phantom:
    """A portal-venous abdominal CT (HU) with hypodense liver metastases and lymph nodes.

    Geometric anatomy: body with subcutaneous fat, liver (110 HU), spleen,
    kidneys, aorta, IVC, vertebra. Metastases default to CT_METASTASIS_HU,
    nodes (kind="node") to CT_NODE_HU; a lesion's texture fields (heterogeneity,
    interface width, rim; see `Ellipsoid.textured` and CHUN_LOOKS) give Chun's
    morphologic groups. Truth reference: liver HU; truth organs: the liver
    parenchyma (lesions excluded), e.g. an organ label for training.
    """
    rng = np.random.default_rng(seed)
    ids = _torso_ids(grid, pose)
    image = _torso(ids, "hu", CT_TISSUE_HU, CT_FAT_HU, CT_AIR_HU)
    values = {
        les.lesion_id: (
            les.intensity if les.intensity is not None else (CT_NODE_HU if les.kind == "node" else CT_METASTASIS_HU),
            CT_CORE_HU,
        )
        for les in lesions
    }
    labels = np.zeros(grid.shape, dtype=np.int16)
    aff = grid.affine()
    placed = _paint(image, labels, aff, lesions, pose, values, seed)
    image += rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise_hu)
    liver = ids == 3 + _ORGANS.index(_organ("liver"))
    truth = PhantomTruth(
        modality="CT", units="HU", affine=aff, pose=pose,
        lesions=_truths(aff, labels, image, lesions, placed, values),
        reference={"liver": _organ("liver").hu},
        organs={"liver": np.asarray(liver & (labels == 0))},
    )
    return Phantom(image, labels, truth)


def torso_pet_phantom(
    grid: Grid,
    lesions: Sequence[Ellipsoid] = (),
    pose: Pose = Pose(),
    seed: int = 0,
    fwhm_mm: float = 5.0,
    noise: float = 0.05,
) -> Phantom:
    """An FDG PET of the same torso in SUVbw units, lesions of known SUV (their `intensity`).

    Background SUVs: liver 2.2, spleen 1.9, blood pool 1.8, kidneys 3.5, tissue
    0.8, fat 0.3. The image is blurred by a Gaussian PSF of `fwhm_mm` and has
    multiplicative noise; the truth's `value` is the true (unblurred) SUV and
    `stats` the SUV measured in the mask. Default lesion SUV 8, nodes 5.
    """
    rng = np.random.default_rng(seed)
    image = _torso(_torso_ids(grid, pose), "suv", PET_TISSUE_SUV, PET_FAT_SUV, 0.0)
    values = {
        les.lesion_id: (les.intensity if les.intensity is not None else (5.0 if les.kind == "node" else 8.0), 1.0)
        for les in lesions
    }
    labels = np.zeros(grid.shape, dtype=np.int16)
    aff = grid.affine()
    placed = _paint(image, labels, aff, lesions, pose, values)
    if fwhm_mm > 0:
        sigma = [fwhm_mm / 2.3548 / s for s in np.linalg.norm(aff[:3, :3], axis=0)]
        image = np.asarray(ndimage.gaussian_filter(image, sigma), dtype=np.float32)
    image *= 1.0 + rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise)
    np.maximum(image, 0.0, out=image)
    truth = PhantomTruth(
        modality="PT", units="SUVbw", affine=aff, pose=pose,
        lesions=_truths(aff, labels, image, lesions, placed, values),
        reference={"liver": _organ("liver").suv, "blood_pool": _organ("aorta").suv},
    )
    return Phantom(image, labels, truth)


# Amino-acid (FDOPA-like) brain PET, SUVbw. Striatum approximated by ellipsoids placed on the
# MNI152 putamen and caudate head (anatomical frame = MNI LPS shifted to the brain centre).
PET_GREY_SUV = 1.3
PET_WHITE_SUV = 0.9
PET_OUTSIDE_SUV = 0.3
PET_STRIATUM_SUV = 2.8
STRIATUM: tuple[Ellipsoid, ...] = (
    Ellipsoid("putamen_right", (-25.0, -20.0, -13.0), (5.5, 12.0, 8.0)),
    Ellipsoid("putamen_left", (25.0, -20.0, -13.0), (5.5, 12.0, 8.0)),
    Ellipsoid("caudate_right", (-13.0, -31.0, -7.0), (4.5, 8.0, 8.0)),
    Ellipsoid("caudate_left", (13.0, -31.0, -7.0), (4.5, 8.0, 8.0)),
)


def brain_pet_phantom(
    grid: Grid,
    lesions: Sequence[Ellipsoid] = (),
    pose: Pose = Pose(),
    seed: int = 0,
    fwhm_mm: float = 5.0,
    noise: float = 0.05,
) -> Phantom:
    """An amino-acid (FDOPA-like) brain PET in SUVbw on the MNI152 grey/white matter maps.

    Grey matter 1.3, white matter 0.9, striatum 2.8, outside the brain 0.3;
    lesions default to SUV 3.0 (core 0.8). Blurred by `fwhm_mm`, multiplicative
    noise. Truth reference: normal brain (grey/white) and striatum SUVs.
    """
    tpl = mni_template()
    rng = np.random.default_rng(seed)
    grey = _sample_template(tpl.grey, tpl.affine_lps, grid, pose)
    white = _sample_template(tpl.white, tpl.affine_lps, grid, pose)
    image = (PET_OUTSIDE_SUV * np.clip(1.0 - grey - white, 0.0, 1.0) + PET_GREY_SUV * grey
             + PET_WHITE_SUV * white).astype(np.float32)
    aff = grid.affine()
    scratch = np.zeros(grid.shape, dtype=np.int16)
    _paint(image, scratch, aff, STRIATUM, pose, {s.lesion_id: (PET_STRIATUM_SUV, PET_STRIATUM_SUV) for s in STRIATUM})
    values = {les.lesion_id: (les.intensity if les.intensity is not None else 3.0, 0.8) for les in lesions}
    labels = np.zeros(grid.shape, dtype=np.int16)
    placed = _paint(image, labels, aff, lesions, pose, values)
    if fwhm_mm > 0:
        sigma = [fwhm_mm / 2.3548 / s for s in np.linalg.norm(aff[:3, :3], axis=0)]
        image = np.asarray(ndimage.gaussian_filter(image, sigma), dtype=np.float32)
    image *= 1.0 + rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(noise)
    np.maximum(image, 0.0, out=image)
    truth = PhantomTruth(
        modality="PT", units="SUVbw", affine=aff, pose=pose,
        lesions=_truths(aff, labels, image, lesions, placed, values),
        reference={"grey_matter": PET_GREY_SUV, "white_matter": PET_WHITE_SUV, "striatum": PET_STRIATUM_SUV},
    )
    return Phantom(image, labels, truth)


def random_liver_lesions(
    rng: np.random.Generator,
    count: int,
    diameter_mm: tuple[float, float] = (8.0, 40.0),
    nodes: int = 0,
    node_short_axis_mm: tuple[float, float] = (8.0, 20.0),
    chun_looks: bool = False,
) -> list[Ellipsoid]:
    """`count` metastases inside the liver and `nodes` retroperitoneal lymph nodes (anatomical frame).

    chun_looks: each metastasis also gets the look of a random Chun group (`random_look`),
    drawn after the geometry, so the lesions are where they would be without it.
    """
    liver = _organ("liver")
    lc, lr = np.asarray(liver.centre), np.asarray(liver.radii)

    def in_liver(g: np.random.Generator, r: float) -> F64 | None:
        u = g.uniform(-1, 1, size=3)
        if np.sum(u**2) > 1:
            return None
        c = lc + u * np.maximum(lr - r * 1.2, 1.0)
        return np.asarray(c, dtype=np.float64) if np.sum(((c - lc) / (lr - r * 1.2)) ** 2) <= 1 else None

    mets = _ellipsoids(rng, _spread(rng, count, in_liver, diameter_mm), "H", "metastasis", "liver", 0.2, 30.0)

    def near_aorta(g: np.random.Generator, r: float) -> F64 | None:
        side = 1 if g.random() < 0.5 else -1
        return np.array([12.0 + side * (12.0 + r + 4.0), 35.0, float(g.uniform(-60, 60))])

    chosen = _spread(rng, nodes, near_aorta, node_short_axis_mm)
    out: list[Ellipsoid] = list(mets)
    for n, (c, r) in enumerate(chosen, start=1):
        out.append(Ellipsoid(f"N{n}", (float(c[0]), float(c[1]), float(c[2])), (r, r, r * 1.6),
                             kind="node", site="retroperitoneal lymph node"))
    if chun_looks:
        out = [les.textured(random_look(rng)[1]) if les.kind == "metastasis" else les for les in out]
    return out


def random_look(rng: np.random.Generator) -> tuple[int, Look]:
    """A random Chun group and a look around its design (CHUN_LOOKS), still hypodense to the liver."""
    group = int(rng.integers(1, 4))
    base = CHUN_LOOKS[group]
    hu = float(base.hu + rng.uniform(-10.0, 10.0))
    interface = {1: rng.uniform(0.0, 1.5), 2: rng.uniform(3.0, 5.0), 3: rng.uniform(8.0, 12.0)}[group]
    rim = min(float(base.rim_hu * rng.uniform(0.7, 1.2)), _organ("liver").hu - 15.0 - hu)
    het = float(rng.uniform(0.0, 4.0)) if group == 1 else float(base.heterogeneity_hu * rng.uniform(0.7, 1.3))
    return group, Look(hu=hu, heterogeneity_hu=het, interface_mm=float(interface), rim_hu=max(rim, 0.0))


def phantom_volume(ph: Phantom, name: str = "phantom") -> Volume:
    """The phantom image as a `daemon.volume.Volume` without writing DICOM (slice UIDs are made up)."""
    from pydicom.uid import generate_uid

    sop_class = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2",
                 "PT": "1.2.840.10008.5.1.4.1.1.128"}[ph.truth.modality]
    refs = tuple(
        SliceRef(str(generate_uid(entropy_srcs=[name, str(k)])), sop_class) for k in range(ph.image.shape[0])
    )
    return Volume(
        array=ph.image, affine=ph.truth.affine, slices=refs,
        frame_of_reference_uid=str(generate_uid(entropy_srcs=[name, "for"])),
        modality=ph.truth.modality, metadata={"synthetic": "true", "units": ph.truth.units},
    )
