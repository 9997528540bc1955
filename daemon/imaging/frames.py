"""Per-frame geometry and pixel transforms, from single-frame and enhanced multi-frame headers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from daemon.imaging.loader import Instance, SeriesFiles

F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Frame:
    """One 2D image of a series: a single-frame instance or one frame of a multi-frame one."""

    instance: Instance
    frame_number: int | None  # 1-based for multi-frame instances, None for single-frame
    position: F64  # ImagePositionPatient (centre of the first transmitted pixel), LPS mm
    row_dir: F64  # first IOP triplet: direction of increasing column index
    col_dir: F64  # second IOP triplet: direction of increasing row index
    pixel_spacing: tuple[float, float]  # (between rows, between columns) mm
    rows: int
    columns: int
    slope: float
    intercept: float
    thickness: float | None
    image_type: tuple[str, ...]
    instance_number: int

    @property
    def normal(self) -> F64:
        n = np.cross(self.row_dir, self.col_dir)
        return np.asarray(n / np.linalg.norm(n), dtype=np.float64)

    @property
    def sop_instance_uid(self) -> str:
        return self.instance.sop_instance_uid

    @property
    def sop_class_uid(self) -> str:
        return str(self.instance.header.get("SOPClassUID", ""))

    @property
    def is_localizer(self) -> bool:
        return "LOCALIZER" in self.image_type


def _floats(v: object, n: int) -> F64 | None:
    if v is None:
        return None
    try:
        arr = np.asarray([float(x) for x in v], dtype=np.float64)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) else None


def _first(ds: Dataset | None, seq: str) -> Dataset | None:
    if ds is None or seq not in ds or not ds[seq].value:
        return None
    item: Dataset = ds[seq].value[0]
    return item


def _lookup(keyword: str, seq: str, per_frame: Dataset | None, shared: Dataset | None, top: Dataset) -> object:
    """A value from the per-frame group, then the shared group, then the top level."""
    for group in (per_frame, shared):
        item = _first(group, seq)
        if item is not None and keyword in item:
            return item[keyword].value
    return top.get(keyword)


def _image_type(ds: Dataset, per_frame: Dataset | None) -> tuple[str, ...]:
    item = _first(per_frame, "MRImageFrameTypeSequence") or _first(per_frame, "CTImageFrameTypeSequence")
    item = item or _first(per_frame, "PETFrameTypeSequence")
    src = item.get("FrameType") if item is not None else None
    v = src if src is not None else ds.get("ImageType", [])
    values = str(v).split("\\") if isinstance(v, str) else list(v)
    return tuple(str(x).upper() for x in values)


def iter_frames(instance: Instance) -> Iterator[Frame]:
    """The frames of an instance with their geometry (frames without geometry are skipped)."""
    ds = instance.header
    n = instance.number_of_frames
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frames = ds.get("PerFrameFunctionalGroupsSequence")
    multi = per_frames is not None
    for f in range(n if multi else 1):
        pf: Dataset | None = per_frames[f] if per_frames is not None and f < len(per_frames) else None
        pos = _floats(_lookup("ImagePositionPatient", "PlanePositionSequence", pf, shared, ds), 3)
        iop = _floats(_lookup("ImageOrientationPatient", "PlaneOrientationSequence", pf, shared, ds), 6)
        ps = _floats(_lookup("PixelSpacing", "PixelMeasuresSequence", pf, shared, ds), 2)
        if pos is None or iop is None or ps is None:
            continue
        slope = _lookup("RescaleSlope", "PixelValueTransformationSequence", pf, shared, ds)
        icpt = _lookup("RescaleIntercept", "PixelValueTransformationSequence", pf, shared, ds)
        thick = _lookup("SliceThickness", "PixelMeasuresSequence", pf, shared, ds)
        yield Frame(
            instance=instance,
            frame_number=f + 1 if multi else None,
            position=pos,
            row_dir=iop[:3] / np.linalg.norm(iop[:3]),
            col_dir=iop[3:] / np.linalg.norm(iop[3:]),
            pixel_spacing=(float(ps[0]), float(ps[1])),
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            slope=float(slope) if slope not in (None, "") else 1.0,  # type: ignore[arg-type]
            intercept=float(icpt) if icpt not in (None, "") else 0.0,  # type: ignore[arg-type]
            thickness=float(thick) if thick not in (None, "") else None,  # type: ignore[arg-type]
            image_type=_image_type(ds, pf),
            instance_number=int(ds.get("InstanceNumber", 0) or 0),
        )


def series_frames(series: SeriesFiles) -> list[Frame]:
    return [fr for inst in series.instances for fr in iter_frames(inst)]
