"""Motion correction of a dynamic series (SimpleITK): each frame onto the reference frame.

Rigid first (Euler 3D, Mattes mutual information: contrast changes the intensities from
frame to frame, so the metric must not assume equal values), on a coarsened copy of each
frame (block means on voxels of about `coarse_mm`: respiratory shifts are several mm and the
optimiser interpolates below the voxel), each frame started from its neighbour's
result, `iterations` at most; the transform is then applied to the full-resolution frame
by B-spline interpolation (`interpolation`; a linear one blurs each frame by its own
sub-voxel shift, which reads as enhancement at tissue edges).
With `deformable: auto`, a coarse B-spline whose result is kept only when it improves the
metric by `deformable_min_gain` (respiration deforms the liver, but a B-spline fitted where
nothing moved only adds interpolation). A rigid shift beyond `max_translation_mm` is a
failed registration: the frame is kept as it is, said so. Voxels that leave the field of
view in some frame are marked (`valid`): their curves are not measured.
Deterministic: the metric's random samples have a fixed seed and the registrations run on
one thread (a multithreaded metric sums in a varying order), so the same study gives the
same frames, hence the same lesions and names, every time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from daemon.measure.perfusion_params import MotionParams
from daemon.measure.registration import single_threaded, sitk, to_sitk
from daemon.volume import Volume

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Corrected:
    frames: F32  # (t, z, y, x) on the reference frame's grid
    valid: BoolArray  # (z, y, x): inside the field of view of every frame
    shifts_mm: tuple[float, ...]  # rigid translation of each frame
    deformable: tuple[bool, ...]  # whether a B-spline was kept for each frame
    notes: tuple[str, ...]


# B-spline by default: a linear interpolation blurs each frame by its own sub-voxel shift, and that
# frame-to-frame change of blur at tissue edges reads as enhancement (noise-free phantom: healthy-liver HAP
# +12 %, P1 HPP +16 % linear; within 2.4 % quadratic or cubic B-spline); see rules/perfusion_dynamic.yaml for the cost
_INTERPOLATORS: dict[str, Any] = {"quadratic_bspline": sitk.sitkBSpline2, "cubic_bspline": sitk.sitkBSpline,
                                  "linear": sitk.sitkLinear}
SEED = 20091  # [impl] the metric's random sampling: fixed, for reproducible results
SAMPLING = 0.25  # [impl] fraction of the coarse fixed image's voxels sampled by the metric


def _registration(mask: Any) -> Any:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(SAMPLING, SEED)
    reg.SetMetricFixedMask(mask)
    reg.SetInterpolator(sitk.sitkLinear)
    return reg


def coarsened(image: Any, coarse_mm: float) -> Any:
    """`image` on voxels of about `coarse_mm` (never finer than the original): the mean of each
    block of whole voxels (a box filter, one pass: cheaper than a Gaussian then a resampling)."""
    factors = [max(1, int(round(coarse_mm / float(s)))) for s in image.GetSpacing()]
    return sitk.BinShrink(sitk.Cast(image, sitk.sitkFloat32), factors)


def _inner(fixed: Any) -> Any:
    """The fixed image without its two end slices at each side (a shifted frame has no data there)."""
    arr = np.zeros(fixed.GetSize()[::-1], dtype=np.uint8)
    arr[2:-2] = 1
    if not arr.any():
        arr[:] = 1
    mask = sitk.GetImageFromArray(arr)
    mask.CopyInformation(fixed)
    return mask


def _rigid(fixed: Any, moving: Any, mask: Any, start: Any, iterations: int) -> Any:
    reg = _registration(mask)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=iterations,
                                                 gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    transform = sitk.Euler3DTransform(start)
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(fixed, moving)
    return transform


def _bspline(fixed: Any, moving: Any, rigid: Any, mask: Any) -> tuple[Any, float]:
    reg = _registration(mask)
    mesh = [max(2, int(n * s / 80.0)) for n, s in zip(fixed.GetSize(), fixed.GetSpacing(), strict=True)]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh)
    reg.SetMovingInitialTransform(rigid)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=10)
    reg.Execute(fixed, moving)
    return sitk.CompositeTransform([rigid, bspline]), float(reg.GetMetricValue())


def _metric(fixed: Any, moving: Any, transform: Any, mask: Any) -> float:
    reg = _registration(mask)
    reg.SetInitialTransform(transform, inPlace=False)
    return float(reg.MetricEvaluate(fixed, moving))


def _translation_mm(transform: Any, centre: tuple[float, ...]) -> float:
    moved = np.asarray(transform.TransformPoint(centre))
    return float(np.linalg.norm(moved - np.asarray(centre)))


def correct(frames: tuple[Volume, ...], reference: int, params: MotionParams) -> Corrected:
    """Every frame registered onto frame `reference` and resampled on its grid."""
    ref = frames[reference]
    full_fixed = to_sitk(ref)
    fixed = coarsened(full_fixed, params.coarse_mm)
    mask = _inner(fixed)
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in fixed.GetSize()])
    identity = sitk.Euler3DTransform()
    identity.SetCenter(centre)
    out = np.empty((len(frames), *ref.shape), dtype=np.float32)
    valid = np.ones(ref.shape, dtype=bool)
    shifts: list[float] = [0.0] * len(frames)
    kept: list[bool] = [False] * len(frames)
    notes: list[str] = []
    out[reference] = np.asarray(ref.array, dtype=np.float32)
    # outwards from the reference, each frame started from its neighbour's result (breathing is smooth)
    start = identity
    for n in (*range(reference + 1, len(frames)), *range(reference - 1, -1, -1)):
        if n == reference - 1:
            start = identity
        if not params.rigid:
            out[n] = np.asarray(frames[n].array, dtype=np.float32)
            continue
        full_moving = to_sitk(frames[n])
        moving = coarsened(full_moving, params.coarse_mm)
        with single_threaded():  # reproducible (see the module's docstring); cheap on the coarse images
            transform = _rigid(fixed, moving, mask, start, params.iterations)
        shift = _translation_mm(transform, centre)
        if shift > params.max_translation_mm:
            notes.append(f"frame {n + 1}: registration implausible ({shift:.1f} mm), frame used as acquired")
            transform, shift = identity, 0.0
        start = transform
        final: Any = transform
        if params.deformable != "off" and shift > 0.0:
            with single_threaded():
                final, kept[n] = _deformable(fixed, moving, transform, mask, params, n, notes)
        resampled = sitk.Resample(full_moving, full_fixed, final, _INTERPOLATORS[params.interpolation],
                                  float("nan"), sitk.sitkFloat32)
        arr = sitk.GetArrayFromImage(resampled)
        missing = np.isnan(arr)
        valid &= ~missing
        out[n] = np.where(missing, np.asarray(ref.array, dtype=np.float32), arr)
        shifts[n] = shift
    log.info("motion correction: shifts up to %.1f mm, deformable kept on %d frame(s)", max(shifts, default=0.0),
             sum(kept))
    return Corrected(out, valid, tuple(shifts), tuple(kept), tuple(notes))


def _deformable(fixed: Any, moving: Any, rigid: Any, mask: Any, params: MotionParams, n: int,
                notes: list[str]) -> tuple[Any, bool]:
    """The rigid transform followed by a B-spline when that is kept (see the module's docstring)."""
    try:
        warped, warped_metric = _bspline(fixed, moving, rigid, mask)
    except RuntimeError as exc:
        notes.append(f"frame {n + 1}: deformable registration failed ({exc}); rigid kept")
        return rigid, False
    rigid_metric = _metric(fixed, moving, rigid, mask)
    gain = (rigid_metric - warped_metric) / abs(rigid_metric) if rigid_metric else 0.0
    if params.deformable == "always" or gain >= params.deformable_min_gain:
        return warped, True
    return rigid, False
