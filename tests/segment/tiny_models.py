"""Tiny ONNX models built with onnx.helper, model folders around them, synthetic volumes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from onnx import TensorProto, helper, numpy_helper

from daemon.volume import SliceRef, Volume

MANIFEST: dict[str, Any] = {
    "name": "tiny",
    "version": "1",
    "intended_use": "tests only",
    "file": "model.onnx",
    "sha256": "0" * 64,
    "modality": "MR",
    "input": {
        "orientation": "LPS",
        "spacing_mm": [1.0, 1.0, 1.0],
        "patch_size": [8, 8, 8],
        "normalisation": {"method": "none"},
    },
    "output": {
        "activation": "sigmoid",
        "decision": "threshold",
        "threshold": 0.5,
        "labels": [
            {
                "value": 1,
                "channel": 0,
                "name": "lesion",
                "role": "lesion",
                "category": {"value": "49755003", "scheme": "SCT", "meaning": "Morphologically Altered Structure"},
                "type": {"value": "14799000", "scheme": "SCT", "meaning": "Neoplasm, Metastatic"},
            }
        ],
    },
    "licence": {"name": "Apache-2.0"},
    "provenance": {"training": "none: weights set by hand in the test"},
}


def conv_model(kernel: int = 1, scale: float = 1.0, bias: float = 0.0, ir_version: int = 8, opset: int = 17,
               seed: int = 0) -> bytes:
    """y = Conv3d(1 -> 1, kernel, zero 'same' padding)(x): pointwise when kernel is 1; random weights otherwise."""
    if kernel == 1:
        w = np.full((1, 1, 1, 1, 1), scale, dtype=np.float32)
    else:
        w = np.random.default_rng(seed).normal(0, 0.3, (1, 1, kernel, kernel, kernel)).astype(np.float32)
    pad = kernel // 2
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[pad] * 6, kernel_shape=[kernel] * 3)
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "d", "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "d", "h", "w"])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([bias], np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return bytes(model.SerializeToString())


def channels_model(channels: int, ir_version: int = 8, opset: int = 17) -> bytes:
    """y = Conv3d(1 -> channels, pointwise), channel c = c * x: a fixed channel count."""
    w = np.arange(channels, dtype=np.float32).reshape(channels, 1, 1, 1, 1)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1, 1])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, "d", "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", channels, "d", "h", "w"])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return bytes(model.SerializeToString())


def write_model(folder: Path, onnx_bytes: bytes, **overrides: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_bytes)
    manifest = {**MANIFEST, "sha256": hashlib.sha256(onnx_bytes).hexdigest()}
    for key, value in overrides.items():
        node = manifest
        parts = key.split(".")
        for p in parts[:-1]:
            node[p] = dict(node[p])
            node = node[p]
        node[parts[-1]] = value
    (folder / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def volume(array: np.ndarray, affine: np.ndarray | None = None) -> Volume:
    """A synthetic Volume with made-up instance UIDs."""
    aff = np.eye(4) if affine is None else affine
    slices = tuple(SliceRef(f"2.25.{k + 1}", "1.2.840.10008.5.1.4.1.1.4") for k in range(array.shape[0]))
    return Volume(array=array, affine=aff, slices=slices, frame_of_reference_uid="2.25.9", modality="MR")


def blobs(shape: tuple[int, int, int], centres: list[tuple[float, float, float]], radius: float,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bright spheres (value 10) in noise (sd 1) and their truth mask. Synthetic."""
    grid = np.indices(shape, dtype=np.float32)
    truth = np.zeros(shape, dtype=bool)
    for c in centres:
        d2 = sum((grid[a] - c[a]) ** 2 for a in range(3))
        truth |= d2 <= radius**2
    noise = np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)
    return np.where(truth, 10.0, 0.0).astype(np.float32) + noise, truth
