"""From network output to a label volume: activation, decision, minimum lesion size."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.segment.manifest import OutputSpec

FloatArray = NDArray[np.float32]
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-connected, as lesions are counted


def activate(logits: FloatArray, activation: str) -> FloatArray:
    """Sigmoid or softmax over channel axis 0, in place where possible."""
    if activation == "sigmoid":
        np.clip(logits, -80.0, 80.0, out=logits)  # exp stays finite in float32 (no overflow warning)
        np.negative(logits, out=logits)
        np.exp(logits, out=logits)
        logits += 1.0
        np.reciprocal(logits, out=logits)
    elif activation == "softmax":
        logits -= logits.max(axis=0, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=0, keepdims=True)
    return logits


def needed_channels(spec: OutputSpec) -> list[int]:
    """The output channels the decision reads (channel 0, the background, for argmax)."""
    chans = [lab.channel for lab in spec.labels]
    return [0, *chans] if spec.decision == "argmax" else chans


def decide(channels: dict[int, FloatArray], spec: OutputSpec) -> NDArray[np.uint16]:
    """Label values from per-channel probabilities (`channels[c]` is output channel c).

    argmax: the most probable channel, background included. threshold: among the labels whose
    probability reaches the threshold the most probable, lesion labels taking precedence over
    organ labels.
    """
    shape = next(iter(channels.values())).shape
    labels = np.zeros(shape, dtype=np.uint16)
    if spec.decision == "argmax":
        best = channels[0].copy()
        for lab in spec.labels:
            p = channels[lab.channel]
            win = p > best
            labels[win] = lab.value
            np.maximum(best, p, out=best)
        return labels
    # organs first, then lesions over them: a voxel whose lesion channel passes the threshold is
    # a lesion whatever the organ channels say (region-based outputs, where the organ's channel
    # includes its lesions, as nnU-Net's regions and TotalSegmentator's organs)
    for role in ("organ", "lesion"):
        best = np.full(shape, -1.0, dtype=np.float32)
        for lab in spec.labels:
            if lab.role != role:
                continue
            p = channels[lab.channel]
            threshold = spec.threshold if lab.threshold is None else lab.threshold
            win = (p >= threshold) & (p > best)
            labels[win] = lab.value
            np.maximum(best, p, out=best)
    return labels


def remove_small(labels: NDArray[np.uint16], voxel_volume_mm3: float, min_volume_mm3: float) -> NDArray[np.uint16]:
    """Drop connected components (26-connectivity) smaller than `min_volume_mm3`, per label value."""
    if min_volume_mm3 <= 0:
        return labels
    min_voxels = min_volume_mm3 / voxel_volume_mm3
    for value in np.unique(labels):
        if value == 0:
            continue
        comp, n = ndimage.label(labels == value, structure=_CONNECTIVITY)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel())
        small = np.flatnonzero(sizes < min_voxels)
        small = small[small != 0]
        if small.size:
            labels[np.isin(comp, small)] = 0
    return labels


def count_components(mask: NDArray[np.bool_]) -> int:
    return int(ndimage.label(mask, structure=_CONNECTIVITY)[1])
