"""A DICOM series -> `daemon.volume.Volume` with exact geometry and per-slice provenance.

The affine maps the array index (k, j, i) to patient LPS mm: column 0 is the
step from one slice to the next (along the normal, slices sorted ascending),
column 1 the column direction x row spacing (increasing row j), column 2 the
row direction x column spacing (increasing column i), and the origin the
ImagePositionPatient of slice 0. Rescale slope/intercept are applied per frame
(float32 array): CT in HU, PET in the series' Units (Bq/ml for BQML) with a
`PetHeader`. Compressed transfer syntaxes decode through pydicom's plug-ins
(pylibjpeg, openjpeg, libjpeg, rle, pyjpegls).

Resampled volumes (messy series under the `resample` policy) have slices that
match no source instance: their SliceRef has an empty SOP Instance UID, and
`metadata["resampled"]` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from scipy import ndimage

from daemon.config import ImagingSettings
from daemon.imaging.frames import Frame, series_frames
from daemon.imaging.loader import SeriesFiles, scan
from daemon.imaging.messy import (
    MessyPolicy,
    Problem,
    SeriesRefused,
    StackPlan,
    Tolerances,
    plan_stack,
)
from daemon.imaging.pet import pet_header
from daemon.volume import SliceRef, Volume

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LoadedSeries:
    volume: Volume
    problems: tuple[Problem, ...]
    resampled: bool


def _read_frames(frames: Sequence[Frame]) -> F32:
    """Pixel data of the frames, rescaled, in order (each file read once)."""
    by_path: dict[Path, list[int]] = {}
    for idx, fr in enumerate(frames):
        by_path.setdefault(fr.instance.path, []).append(idx)
    first = frames[0]
    out = np.empty((len(frames), first.rows, first.columns), dtype=np.float32)
    for path, idxs in by_path.items():
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        for idx in idxs:
            fr = frames[idx]
            plane = arr[fr.frame_number - 1] if fr.frame_number is not None and arr.ndim == 3 else arr
            if plane.ndim != 2:
                raise SeriesRefused((Problem("not-monochrome", f"{path.name}: pixel data of shape {plane.shape}", "refused"),))
            out[idx] = plane.astype(np.float32) * np.float32(fr.slope) + np.float32(fr.intercept)
    return out


def _affine(first: Frame, step: F64) -> F64:
    m = np.eye(4)
    m[:3, 0] = step
    m[:3, 1] = first.col_dir * first.pixel_spacing[0]
    m[:3, 2] = first.row_dir * first.pixel_spacing[1]
    m[:3, 3] = first.position
    return m


def _ref(fr: Frame) -> SliceRef:
    return SliceRef(fr.sop_instance_uid, fr.sop_class_uid, fr.frame_number)


def _resample(plan: StackPlan, data: F32) -> tuple[F32, F64, tuple[SliceRef, ...]]:
    """Interpolate the planned stack onto a regular grid orthogonal to the slices."""
    first = plan.frames[0]
    normal = first.normal
    d0 = float(plan.depths[0])
    n = int(round((float(plan.depths[-1]) - d0) / plan.spacing)) + 1
    step = normal * plan.spacing
    affine = _affine(first, step)
    out = np.empty((n, first.rows, first.columns), dtype=np.float32)
    refs: list[SliceRef] = []
    for t in range(n):
        dt = d0 + t * plan.spacing
        origin = first.position + (dt - d0) * normal
        kb = int(np.clip(np.searchsorted(plan.depths, dt), 1, len(plan.depths) - 1))
        ka = kb - 1
        da, db = float(plan.depths[ka]), float(plan.depths[kb])
        w = 0.0 if db == da else float(np.clip((dt - da) / (db - da), 0.0, 1.0))
        acc = np.zeros((first.rows, first.columns), dtype=np.float32)
        for k, weight in ((ka, 1.0 - w), (kb, w)):
            if weight <= 1e-9:
                continue
            fr = plan.frames[k]
            off = origin - fr.position
            shift = (off @ fr.col_dir / fr.pixel_spacing[0], off @ fr.row_dir / fr.pixel_spacing[1])
            plane = data[k]
            if abs(shift[0]) > 1e-4 or abs(shift[1]) > 1e-4:
                plane = ndimage.shift(plane, (-shift[0], -shift[1]), order=1, mode="nearest")
            acc += np.float32(weight) * plane
        out[t] = acc
        exact = [fr for fr, d in zip(plan.frames, plan.depths, strict=True)
                 if abs(float(d) - dt) < 1e-3 and np.linalg.norm(fr.position - origin) < 1e-3]
        refs.append(_ref(exact[0]) if exact else SliceRef("", "", None))
    return out, affine, tuple(refs)


def _stack(plan: StackPlan, data: F32) -> tuple[F32, F64, tuple[SliceRef, ...]]:
    frames = plan.frames
    if len(frames) == 1:
        step = frames[0].normal * plan.spacing
    else:
        step = (frames[-1].position - frames[0].position) / (len(frames) - 1)
    return data, _affine(frames[0], step), tuple(_ref(f) for f in frames)


def load_volume(
    series: SeriesFiles,
    policy: MessyPolicy = MessyPolicy.RESAMPLE,
    tolerances: Tolerances | None = None,
) -> LoadedSeries:
    """Read the series' pixels into a Volume (raises SeriesRefused with the problems)."""
    plan = plan_stack(series_frames(series), policy, tolerances or Tolerances())
    data = _read_frames(plan.frames)
    if plan.needs_resampling:
        array, affine, refs = _resample(plan, data)
    else:
        array, affine, refs = _stack(plan, data)
    head = plan.frames[0].instance.header
    metadata = {
        "series_description": str(head.get("SeriesDescription", "")),
        "series_number": str(head.get("SeriesNumber", "")),
        "units": _units(head),
    }
    if plan.problems:
        metadata["problems"] = "; ".join(str(p) for p in plan.problems)
    if plan.needs_resampling:
        metadata["resampled"] = "; ".join(p.message for p in plan.problems if p.action == "resampled")
    for p in plan.problems:
        log.info("series %s: %s", series.series_instance_uid, p)
    modality = str(head.get("Modality", ""))
    volume = Volume(
        array=array,
        affine=affine,
        slices=refs,
        frame_of_reference_uid=str(head.get("FrameOfReferenceUID", "")),
        study_instance_uid=str(head.get("StudyInstanceUID", "")),
        series_instance_uid=series.series_instance_uid,
        modality=modality,
        pet=pet_header(head) if modality == "PT" else None,
        metadata=metadata,
    )
    return LoadedSeries(volume, plan.problems, plan.needs_resampling)


def options_from_settings(imaging: ImagingSettings) -> tuple[MessyPolicy, Tolerances]:
    """The messy-series policy and tolerances a Settings.imaging section asks for."""
    return MessyPolicy(imaging.messy_series), Tolerances(relative=imaging.spacing_tolerance)


def _units(ds: pydicom.Dataset) -> str:
    modality = str(ds.get("Modality", ""))
    if modality == "CT":
        return "HU"
    if modality == "PT":
        return str(ds.get("Units", ""))
    return str(ds.get("RescaleType", "")) or "signal"


def load_folder(source: Path | Sequence[Path], series_uid: str | None = None,
                policy: MessyPolicy = MessyPolicy.RESAMPLE) -> LoadedSeries:
    """Convenience: scan a folder (or files) and load one series (the only one, or `series_uid`)."""
    found = scan(source).series
    if series_uid is None:
        if len(found) != 1:
            raise ValueError(f"{len(found)} series found; name one of {sorted(found)}")
        series_uid = next(iter(found))
    return load_volume(found[series_uid], policy)
