"""A pipeline used only by the tests (`web.model_pipeline:segmenting`): it runs the tiny
ONNX model of `model_dir` with `segment()` `runs` times on a synthetic volume, and returns
no dataset. Like every pipeline it does no I/O of its own beyond reading its model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from segment.tiny_models import blobs, volume

from daemon.pipelines.base import PipelineInput
from daemon.segment import load_model, segment


def segmenting(inp: PipelineInput) -> list[Dataset]:
    model = load_model(Path(inp.parameters["model_dir"]), providers="cpu")
    image, _truth = blobs((12, 12, 12), [(6.0, 6.0, 6.0)], 3.0)
    for _ in range(int(inp.parameters.get("runs", 1))):
        segment(volume(image, np.eye(4)), model)
    return []
