"""The MNI152 template's tissue maps registered to a brain PET: where each voxel of the PET lies
in MNI space, and the grey/white matter probabilities there.

The MNI152 2009a symmetric grey- and white-matter probability maps ship inside nilearn (no
download): `nilearn.datasets.load_mni152_gm_template` / `load_mni152_wm_template`. A
tracer-specific pseudo-PET of the maps (relative uptake of grey matter, white matter and the
rule-placed striatum, from the rules file) is registered to the PET by a similarity transform
(rotation, translation, isotropic scale; SimpleITK, Mattes mutual information). The result maps
PET patient coordinates to MNI (RAS mm), from which measure/brain_regions.py draws the regions.

Pure: the maps are read by daemon/imaging/mni_templates.py (nilearn, the extra nadir[pet]).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as _sitk
from numpy.typing import NDArray
from scipy import ndimage

from daemon.measure.registration import to_sitk, transform_matrix
from daemon.volume import Volume

log = logging.getLogger(__name__)
sitk: Any = _sitk

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
@dataclass(frozen=True, eq=False)
class TissueMaps:
    """Grey and white matter probabilities (0..1) on an MNI grid; `affine`: (k, j, i, 1) -> MNI RAS mm."""

    grey: F32
    white: F32
    affine: F64

    def ras_of_indices(self) -> F64:
        """(z, y, x, 3) MNI RAS coordinates of every voxel."""
        k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in self.grey.shape), indexing="ij")
        kji = np.stack([k, j, i], axis=-1)
        return np.asarray(kji @ self.affine[:3, :3].T + self.affine[:3, 3], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class AtlasFit:
    """PET patient (LPS mm) -> MNI RAS mm, and how good the fit is."""

    matrix: F64  # 4x4
    scale: float  # isotropic scale of the fit (1 = the template's size)
    correlation: float  # pseudo-PET vs PET inside the fitted brain
    note: str

    def to_mni(self, xyz: F64) -> F64:
        p = np.asarray(xyz, dtype=np.float64)
        return np.asarray(p @ self.matrix[:3, :3].T + self.matrix[:3, 3], dtype=np.float64)

    def to_patient(self, ras: F64) -> F64:
        inv = np.linalg.inv(self.matrix)
        p = np.asarray(ras, dtype=np.float64)
        return np.asarray(p @ inv[:3, :3].T + inv[:3, 3], dtype=np.float64)


def mni_of_grid(volume: Volume, fit: AtlasFit) -> F64:
    """(z, y, x, 3) MNI RAS coordinates of every voxel of `volume`."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in volume.shape), indexing="ij")
    xyz = np.stack([k, j, i], axis=-1) @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    return fit.to_mni(xyz)


def sample(maps_array: F32, maps: TissueMaps, ras: F64) -> F32:
    """A map sampled (linear) at MNI RAS coordinates (any leading shape)."""
    inv = np.linalg.inv(maps.affine)
    idx = ras @ inv[:3, :3].T + inv[:3, 3]
    flat = idx.reshape(-1, 3).T
    out = ndimage.map_coordinates(maps_array, flat, order=1, mode="constant", cval=0.0)
    return np.asarray(out.reshape(ras.shape[:-1]), dtype=np.float32)


def _lps_volume(array: F32, maps: TissueMaps) -> Volume:
    from daemon.volume import SliceRef

    affine = RAS_TO_LPS @ maps.affine
    slices = tuple(SliceRef(f"mni.{k}", "", None) for k in range(array.shape[0]))
    return Volume(array=array, affine=np.asarray(affine, dtype=np.float64), slices=slices, frame_of_reference_uid="mni")


def fit_template(pet: Volume, pseudo_pet: F32, maps: TissueMaps, *, iterations: int, sampling: float,
                 seed: int = 20091) -> AtlasFit:
    """Register the pseudo-PET (on the maps' grid) to the PET: similarity transform, Mattes MI."""
    fixed = to_sitk(pet)
    moving = to_sitk(_lps_volume(pseudo_pet, maps))
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=iterations,
                                                 gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([4.0, 2.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(initial, inPlace=False)
    final = reg.Execute(fixed, moving)
    lps_to_lps = transform_matrix(final)  # PET LPS -> MNI LPS
    matrix = RAS_TO_LPS @ lps_to_lps  # RAS_TO_LPS is its own inverse
    scale = float(abs(np.linalg.det(lps_to_lps[:3, :3])) ** (1.0 / 3.0))
    fit = AtlasFit(matrix, scale, 0.0, reg.GetOptimizerStopConditionDescription())
    ras = mni_of_grid(pet, fit)
    expected = sample(pseudo_pet, maps, ras)
    brain = sample(maps.grey + maps.white, maps, ras) > 0.5
    a, b = np.asarray(pet.array, dtype=np.float64)[brain], expected[brain].astype(np.float64)
    corr = float(np.corrcoef(a, b)[0, 1]) if a.size > 10 and a.std() > 0 and b.std() > 0 else 0.0
    log.info("MNI template fitted to the PET: scale %.3f, correlation %.3f (%s)", scale, corr, fit.note)
    return AtlasFit(matrix, scale, corr, fit.note)
