"""Map the frames of a DICOM Segmentation onto a source Volume's grid.

Pure: a read highdicom Segmentation (a pydicom dataset) and a Volume in, a
LesionMask out. A frame is placed by the source instance (and frame) it was
derived from; when that reference is missing or unknown, by its plane position,
which must fall on a slice of the volume with the same in-plane grid.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from daemon.volume import Code, LesionMask, SegmentLabel, Volume

log = logging.getLogger(__name__)

_POSITION_TOLERANCE = 0.01  # in voxels


class SegMappingError(ValueError):
    """A SEG frame cannot be placed on the volume's grid (the message says which and why)."""


def _code(item: Any) -> Code:
    return Code(str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.CodeMeaning))


def segment_labels(seg: Any) -> tuple[SegmentLabel, ...]:
    out = []
    for item in seg.SegmentSequence:
        category = _code(item.SegmentedPropertyCategoryCodeSequence[0])
        prop = _code(item.SegmentedPropertyTypeCodeSequence[0])
        out.append(SegmentLabel(int(item.SegmentNumber), str(item.SegmentLabel), category, prop))
    return tuple(out)


def _frame_source(group: Any) -> tuple[str, int | None] | None:
    for deriv in getattr(group, "DerivationImageSequence", []) or []:
        for src in getattr(deriv, "SourceImageSequence", []) or []:
            uid = str(src.ReferencedSOPInstanceUID)
            frame = getattr(src, "ReferencedFrameNumber", None)
            number = int(frame[0] if isinstance(frame, list | tuple) else frame) if frame else None
            return uid, number
    return None


def _frame_position(group: Any, shared: Any) -> NDArray[np.float64] | None:
    for source in (group, shared):
        seq = getattr(source, "PlanePositionSequence", None) if source is not None else None
        if seq:
            return np.asarray([float(v) for v in seq[0].ImagePositionPatient])
    return None


def _slice_by_position(volume: Volume, position: NDArray[np.float64]) -> int | None:
    kji = volume.patient_to_index(position)
    k = int(round(float(kji[0])))
    if abs(kji[0] - k) > _POSITION_TOLERANCE or np.any(np.abs(kji[1:]) > _POSITION_TOLERANCE):
        return None
    return k if 0 <= k < volume.shape[0] else None


def _frames(seg: Any) -> NDArray[np.float64]:
    pixels = np.asarray(seg.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if str(seg.SegmentationType) == "FRACTIONAL":
        return pixels.astype(np.float64) / float(seg.MaximumFractionalValue)
    return pixels.astype(np.float64)


def seg_to_masks(seg: Any, volume: Volume) -> dict[int, NDArray[np.bool_]]:
    """Segment number -> its voxels on the volume's grid (segments may overlap)."""
    if int(seg.Rows) != volume.shape[1] or int(seg.Columns) != volume.shape[2]:
        raise SegMappingError(
            f"SEG frames are {seg.Rows}x{seg.Columns}, the series {volume.shape[1]}x{volume.shape[2]}"
        )
    by_ref = {(s.sop_instance_uid, s.frame_number): k for k, s in enumerate(volume.slices)}
    by_uid = {s.sop_instance_uid: k for k, s in enumerate(volume.slices)}
    shared_seq = getattr(seg, "SharedFunctionalGroupsSequence", None)
    shared = shared_seq[0] if shared_seq else None
    frames = _frames(seg)
    masks = {lab.value: np.zeros(volume.shape, dtype=bool) for lab in segment_labels(seg)}
    for n, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        # per frame, or shared by all frames (highdicom writes a one-segment SEG that way)
        ident = getattr(group, "SegmentIdentificationSequence", None) or getattr(shared, "SegmentIdentificationSequence", None)
        if not ident:
            raise SegMappingError(f"SEG frame {n + 1} names no segment")
        segment = int(ident[0].ReferencedSegmentNumber)
        k = None
        source = _frame_source(group)
        if source is not None:
            k = by_ref.get(source, by_uid.get(source[0]) if source[1] is None else None)
        if k is None:
            position = _frame_position(group, shared)
            k = _slice_by_position(volume, position) if position is not None else None
        if k is None:
            raise SegMappingError(f"SEG frame {n + 1} matches no slice of the series")
        target = masks.setdefault(segment, np.zeros(volume.shape, dtype=bool))
        target[k] |= frames[n] >= 0.5
    return masks


def seg_to_mask(seg: Any, volume: Volume) -> LesionMask:
    """A label volume on the volume's grid: each voxel holds its segment number (0: none).

    Where segments overlap the higher segment number wins; use seg_to_masks to keep both.
    """
    labels = np.zeros(volume.shape, dtype=np.int16)
    for number, mask in sorted(seg_to_masks(seg, volume).items()):
        labels[mask] = number
    return LesionMask(volume=volume, labels=labels, label_info=segment_labels(seg))
