"""The manifest's preprocessing steps, before the normalisation: what a site's training did.

`input.preprocessing` lists steps that run in the manifest's order on the model's grid
(after reorientation and resampling, before `input.normalisation`), as the UNETR seed
study (Dessoude 2025) prepared its images:

- `n4`: N4 bias-field correction (SimpleITK, Tustison 2010), fitted on a shrunk copy;
- `rescale`: percentiles to a fixed range (0-255 in the seed study), clipped;
- `background`: voxels outside the head (threshold, largest component, holes filled) set to a value.

A manifest without steps runs exactly as before. Each step takes a float32 array (k, j, i)
and returns a new one; the caller's array is never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as _sitk
from numpy.typing import NDArray
from scipy import ndimage

from daemon.segment.manifest import BackgroundStep, N4Step, PreprocessingStep, RescaleStep

sitk: Any = _sitk  # SimpleITK ships partial type hints; treat it as untyped
FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def _image(a: FloatArray, spacing: tuple[float, float, float]) -> Any:
    img = sitk.GetImageFromArray(np.asarray(a, dtype=np.float32))
    img.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))  # SimpleITK: x, y, z
    return img


def _otsu(a: FloatArray) -> BoolArray:
    """Above Otsu's threshold (256 bins)."""
    mask = sitk.OtsuThreshold(_image(a, (1.0, 1.0, 1.0)), 0, 1, 256)
    return np.asarray(sitk.GetArrayFromImage(mask), dtype=bool)


def n4(a: FloatArray, step: N4Step, spacing: tuple[float, float, float]) -> FloatArray:
    """The image divided by the N4 bias field (fitted on positive voxels; zeros stay zero)."""
    image = _image(a, spacing)
    mask = sitk.OtsuThreshold(image, 0, 1, 200) if step.mask == "otsu" else sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    mask.CopyInformation(image)
    factors = [max(1, min(step.shrink_factor, n // 4 or 1)) for n in image.GetSize()]
    small, small_mask = sitk.Shrink(image, factors), sitk.Shrink(mask, factors)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(n) for n in step.iterations])
    corrector.SetConvergenceThreshold(step.convergence_threshold)
    corrector.SetNumberOfControlPoints([step.control_points] * 3)
    corrector.Execute(small, small_mask)
    log_field = np.asarray(sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(image)), dtype=np.float32)
    return np.asarray(a / np.exp(log_field), dtype=np.float32)


def rescale(a: FloatArray, step: RescaleStep) -> FloatArray:
    """The `percentiles` mapped linearly onto `range`, values beyond clipped."""
    sel = a[a != 0] if step.mask == "nonzero" else a.ravel()
    if sel.size == 0:
        sel = a.ravel()
    lo, hi = (float(v) for v in np.percentile(sel, step.percentiles))
    low, high = step.range
    if hi <= lo:  # a constant image: everything at the bottom of the range
        return np.full(a.shape, low, dtype=np.float32)
    out = (np.clip(a.astype(np.float64), lo, hi) - lo) / (hi - lo) * (high - low) + low  # float64: ends exact
    return np.asarray(out, dtype=np.float32)


def foreground(a: FloatArray, step: BackgroundStep) -> BoolArray:
    """The head (or body): above the threshold, its largest component, holes filled."""
    if step.threshold == "otsu":
        mask = _otsu(a)
    else:
        mask = a > step.fraction * float(np.percentile(a, 99.0))
    if step.largest_component and mask.any():
        comp, n = ndimage.label(mask, structure=_CONNECTIVITY)
        if n > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            mask = comp == int(np.argmax(sizes))
    if step.fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    return np.asarray(mask, dtype=bool)


def remove_background(a: FloatArray, step: BackgroundStep) -> FloatArray:
    out = np.array(a, dtype=np.float32, copy=True)
    out[~foreground(a, step)] = np.float32(step.value)
    return out


def prepare(a: FloatArray, steps: Sequence[PreprocessingStep], spacing: tuple[float, float, float]) -> FloatArray:
    """The steps in order on `a` (k, j, i) with voxel `spacing` (mm, k, j, i); `a` itself unchanged."""
    out = a
    for step in steps:
        if isinstance(step, N4Step):
            out = n4(out, step, spacing)
        elif isinstance(step, RescaleStep):
            out = rescale(out, step)
        else:
            out = remove_background(out, step)
    return out
