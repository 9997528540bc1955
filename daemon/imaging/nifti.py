"""Our (k, j, i) -> LPS geometry as a NIfTI image (i, j, k) -> RAS, voxel for voxel."""

from __future__ import annotations

from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from daemon.volume import Volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_KJI_TO_IJK = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def nifti_affine(affine_kji_lps: NDArray[np.float64]) -> NDArray[np.float64]:
    """The NIfTI affine (i, j, k) -> RAS mm for an array index (k, j, i) -> LPS mm affine."""
    return np.asarray(_LPS_TO_RAS @ affine_kji_lps @ _KJI_TO_IJK, dtype=np.float64)


def array_to_nifti(array: NDArray[np.generic], affine_kji_lps: NDArray[np.float64]) -> nib.Nifti1Image:
    """A NIfTI image of `array` (k, j, i): data[i, j, k] == array[k, j, i], sform and qform set."""
    aff = nifti_affine(affine_kji_lps)
    img = nib.Nifti1Image(np.ascontiguousarray(np.transpose(array, (2, 1, 0))), aff)  # type: ignore[no-untyped-call]
    img.set_sform(aff, code=1)  # type: ignore[no-untyped-call]  # scanner
    img.set_qform(aff, code=1)  # type: ignore[no-untyped-call]
    img.header.set_xyzt_units("mm", "sec")  # type: ignore[no-untyped-call]
    return img


def volume_to_nifti(volume: Volume) -> nib.Nifti1Image:
    return array_to_nifti(volume.array, volume.affine)


def nifti_to_array(img: Any) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
    """Back to (array (k, j, i), affine (k, j, i) -> LPS)."""
    data = np.asarray(img.dataobj)
    aff = np.linalg.inv(_LPS_TO_RAS) @ np.asarray(img.affine, dtype=np.float64) @ np.linalg.inv(_KJI_TO_IJK)
    return np.transpose(data, (2, 1, 0)), np.asarray(aff, dtype=np.float64)
