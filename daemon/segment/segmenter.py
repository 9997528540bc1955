"""Segment a Volume with a loaded model: preprocess, sliding window, postprocess, back to the source grid."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from daemon.segment.manifest import ModelError
from daemon.segment.postprocess import activate, decide, needed_channels, remove_small
from daemon.segment.preparation import prepare
from daemon.segment.preprocess import (
    model_shape,
    normalise,
    reorientation,
    resample,
    spacing_in_array_order,
)
from daemon.segment.runtime import LoadedModel
from daemon.segment.sliding_window import FloatArray, sliding_window
from daemon.segment.timing import record_inference
from daemon.volume import LesionMask, Volume

log = logging.getLogger(__name__)


def predictor(model: LoadedModel) -> Any:
    """A function running one batch of patches through the model's session."""
    session, inp, out = model.session, model.input_name, model.output_name

    def run(batch: FloatArray) -> FloatArray:
        return np.asarray(session.run([out], {inp: batch})[0], dtype=np.float32)

    return run


def probabilities(volume: Volume, model: LoadedModel) -> dict[int, FloatArray]:
    """Per output channel the network's probability on the source grid (the channels the decision reads)."""
    m = model.manifest
    spec = m.input
    if spec.channels != 1:
        raise ModelError(f"model {m.name} expects {spec.channels} input channels; one volume was given")
    ro = reorientation(volume.affine, spec.orientation)
    src = np.asarray(ro.apply(volume.array), dtype=np.float32)
    src_shape = (int(src.shape[0]), int(src.shape[1]), int(src.shape[2]))
    spacing = volume.spacing
    src_spacing = tuple(spacing[p] for p in ro.perm)
    x = resample(src, model_shape(src_shape, src_spacing, spacing_in_array_order(spec)))
    if np.shares_memory(x, volume.array):
        x = x.copy()  # normalisation works in place; never on the caller's volume
    del src
    x = prepare(x, spec.preprocessing, spacing_in_array_order(spec))  # the manifest's steps, in order
    x = normalise(x, spec.normalisation)
    xyz = spec.tensor_axes == "xyz"
    if xyz:
        x = np.ascontiguousarray(x.transpose(2, 1, 0))
    batch = model.fixed_batch or m.inference.batch_size
    logits = sliding_window(
        x[None],
        spec.patch_size,
        predictor(model),
        overlap=m.inference.overlap,
        batch_size=batch,
        blending=m.inference.blending,
        sigma_scale=m.inference.sigma_scale,
    )
    del x
    probs = activate(logits, m.output.activation)
    if xyz:
        probs = probs.transpose(0, 3, 2, 1)
    out: dict[int, FloatArray] = {}
    for c in needed_channels(m.output):
        if c >= probs.shape[0]:
            raise ModelError(f"model {m.name}: label channel {c} but the network gives {probs.shape[0]} channels")
        back = resample(np.ascontiguousarray(probs[c]), src_shape)
        out[c] = np.ascontiguousarray(ro.undo(back))
    return out


def segment(volume: Volume, model: LoadedModel) -> LesionMask:
    """The model's lesion mask on the volume's own grid."""
    started = time.monotonic()
    channels = probabilities(volume, model)
    spec = model.manifest.output
    labels: NDArray[np.uint16] = decide(channels, spec)
    del channels
    labels = remove_small(labels, volume.voxel_volume_mm3, spec.min_lesion_volume_mm3)
    took = time.monotonic() - started
    record_inference(model.manifest.name, model.manifest.version, took)  # for /metrics (daemon.segment.timing)
    log.info(
        "segmented %s with %s %s on %s in %.1f s",
        "x".join(str(n) for n in volume.shape),
        model.manifest.name,
        model.manifest.version,
        model.provider,
        took,
    )
    return LesionMask(volume=volume, labels=labels, label_info=model.manifest.segment_labels())
