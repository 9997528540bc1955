"""A dynamic (4D) series -> one Volume per time frame, with each frame's time.

`daemon.imaging.messy.plan_stack` reads one volume per series: when every slice
position repeats (a perfusion or multi-phase acquisition) it keeps the first frame
of each position. The perfusion route needs every frame, so this module splits the
series into temporal frames first and plans each one as a stack of its own.

Frames are told apart by, in order: TemporalPositionIdentifier (or the enhanced
TemporalPositionIndex), AcquisitionNumber, then the acquisition time of each image
(AcquisitionDateTime, AcquisitionTime, ContentTime). A series whose slices each sit
at one position only is one frame. Every frame must have the same grid; a frame
with another geometry refuses the whole series (`DynamicRefused`, with the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from daemon.imaging.frames import Frame, series_frames
from daemon.imaging.loader import SeriesFiles
from daemon.imaging.messy import MessyPolicy, SeriesRefused, Tolerances, plan_stack
from daemon.imaging.series import _read_frames, _resample, _stack
from daemon.volume import Volume

log = logging.getLogger(__name__)

F64 = NDArray[np.float64]
_POSITION_MM = 0.01  # two slices closer than this along the normal share a position
_GEOMETRY_MM = 0.05  # frames whose grids differ by more than this are not one 4D series


class DynamicRefused(ValueError):
    """The series cannot be read as a dynamic series; the message says why."""


@dataclass(frozen=True, eq=False)
class DynamicSeries:
    """The frames of a dynamic series on one grid, oldest first, with their times."""

    frames: tuple[Volume, ...]
    times_s: F64  # seconds from the first frame
    series_instance_uid: str
    notes: tuple[str, ...] = ()

    @property
    def reference(self) -> Volume:
        return self.frames[0]


def _seconds(value: str, date: str = "") -> float | None:
    """DICOM TM (HHMMSS.ffffff) or DT (YYYYMMDDHHMMSS.ffffff) -> seconds (since 0001-01-01 with a date)."""
    v = value.strip()
    if not v:
        return None
    try:
        if len(v) >= 14 and "." not in v[:14]:
            dt = datetime.strptime(v[:14], "%Y%m%d%H%M%S")
            frac = float("0" + v[14:]) if len(v) > 14 and v[14] == "." else 0.0
            return dt.timestamp() + frac
        hh, mm = int(v[0:2]), int(v[2:4]) if len(v) >= 4 else 0
        ss = float(v[4:]) if len(v) > 4 else 0.0
        base = datetime.strptime(date, "%Y%m%d").timestamp() if len(date) == 8 and date.isdigit() else 0.0
        return base + hh * 3600 + mm * 60 + ss
    except ValueError:
        return None


def frame_time(ds: Dataset) -> float | None:
    """When one image was acquired, in seconds (None when the header does not say)."""
    for keyword in ("AcquisitionDateTime",):
        t = _seconds(str(ds.get(keyword, "") or ""))
        if t is not None:
            return t
    for keyword, date_kw in (("AcquisitionTime", "AcquisitionDate"), ("ContentTime", "ContentDate")):
        t = _seconds(str(ds.get(keyword, "") or ""), str(ds.get(date_kw, "") or ""))
        if t is not None:
            return t
    return None


def _temporal_key(fr: Frame) -> tuple[int, float]:
    ds = fr.instance.header
    for keyword in ("TemporalPositionIdentifier", "TemporalPositionIndex", "AcquisitionNumber"):
        v = ds.get(keyword)
        if v not in (None, ""):
            return int(v), frame_time(ds) or 0.0
    return -1, frame_time(ds) or 0.0


def positions_repeat(frames: Sequence[Frame]) -> int:
    """How many times the most repeated slice position appears (1: a plain 3D series)."""
    if not frames:
        return 0
    normal = frames[0].normal
    depths = np.round(np.array([float(f.position @ normal) for f in frames]) / _POSITION_MM).astype(np.int64)
    _, counts = np.unique(depths, return_counts=True)
    return int(counts.max()) if counts.size else 0


def _split(frames: list[Frame]) -> list[list[Frame]]:
    """Frames grouped by temporal position, oldest first."""
    if positions_repeat(frames) <= 1:
        return [frames]
    keys = [_temporal_key(f) for f in frames]
    ids = {k[0] for k in keys}
    if -1 not in ids and len(ids) > 1:
        groups: dict[int, list[Frame]] = {}
        for f, k in zip(frames, keys, strict=True):
            groups.setdefault(k[0], []).append(f)
        return [groups[k] for k in sorted(groups, key=lambda g: (min(_temporal_key(f)[1] for f in groups[g]), g))]
    # no identifier: the n-th acquisition at each position belongs to frame n
    normal = frames[0].normal
    by_position: dict[int, list[Frame]] = {}
    for f in frames:
        by_position.setdefault(int(round(float(f.position @ normal) / _POSITION_MM)), []).append(f)
    n = max(len(v) for v in by_position.values())
    out: list[list[Frame]] = [[] for _ in range(n)]
    for stack in by_position.values():
        for idx, f in enumerate(sorted(stack, key=lambda fr: (_temporal_key(fr)[1], fr.instance_number))):
            out[idx].append(f)
    return out


def _volume(frames: list[Frame], series: SeriesFiles, policy: MessyPolicy) -> Volume:
    plan = plan_stack(frames, policy, Tolerances())
    data = _read_frames(plan.frames)
    array, affine, refs = _resample(plan, data) if plan.needs_resampling else _stack(plan, data)
    head = plan.frames[0].instance.header
    return Volume(array=array, affine=affine, slices=refs,
                  frame_of_reference_uid=str(head.get("FrameOfReferenceUID", "")),
                  study_instance_uid=str(head.get("StudyInstanceUID", "")),
                  series_instance_uid=series.series_instance_uid, modality=str(head.get("Modality", "")),
                  metadata={"series_description": str(head.get("SeriesDescription", "")), "units": "HU"})


def _same_grid(a: Volume, b: Volume) -> str:
    if a.shape != b.shape:
        return f"{a.shape} voxels, then {b.shape}"
    corners = np.array([[0, 0, 0], [s - 1 for s in a.shape]], dtype=np.float64)
    worst = float(np.abs(a.index_to_patient(corners) - b.index_to_patient(corners)).max())
    return "" if worst <= _GEOMETRY_MM else f"grids {worst:.2f} mm apart"


def load_dynamic(series: SeriesFiles, policy: MessyPolicy = MessyPolicy.RESAMPLE) -> DynamicSeries:
    """Every time frame of `series` (raises DynamicRefused with the reason)."""
    frames = [f for f in series_frames(series) if not f.is_localizer]
    if not frames:
        raise DynamicRefused("no image with position and orientation")
    groups = _split(frames)
    volumes: list[Volume] = []
    times: list[float] = []
    for n, group in enumerate(groups, start=1):
        try:
            volumes.append(_volume(group, series, policy))
        except SeriesRefused as exc:
            raise DynamicRefused(f"frame {n} of {len(groups)}: {exc}") from exc
        found = [t for t in (frame_time(f.instance.header) for f in group) if t is not None]
        times.append(min(found) if found else float("nan"))
    for n, v in enumerate(volumes[1:], start=2):
        why = _same_grid(volumes[0], v)
        if why:
            raise DynamicRefused(f"frames of different geometry: frame {n} of {len(volumes)} differs from frame 1 "
                                 f"({why})")
    t = np.asarray(times, dtype=np.float64)
    if np.isnan(t).any():
        raise DynamicRefused("the acquisition time of some frames is missing (AcquisitionTime / ContentTime)")
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order][0]
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        raise DynamicRefused("two frames share one acquisition time")
    log.info("series %s: %d time frames over %.0f s", series.series_instance_uid, len(t), t[-1] if len(t) else 0.0)
    return DynamicSeries(tuple(volumes[i] for i in order), t, series.series_instance_uid)


def is_dynamic(series: SeriesFiles) -> bool:
    """Some slice position of the series is acquired more than once."""
    return positions_repeat([f for f in series_frames(series) if not f.is_localizer]) > 1
