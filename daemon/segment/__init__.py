"""Segmentation: ONNX models described by a manifest, run by ONNX Runtime.

`load_model(models/<name>)` checks and opens a model (cached per process);
`segment(volume, model)` returns a `LesionMask` on the volume's own grid;
`split_roles(mask, model.manifest)` separates the lesions from the organs.
"""

from daemon.segment.manifest import Manifest, ModelError, load_manifest
from daemon.segment.roles import split_roles
from daemon.segment.runtime import LoadedModel, load_model
from daemon.segment.segmenter import probabilities, segment

__all__ = ["LoadedModel", "Manifest", "ModelError", "load_manifest", "load_model", "probabilities", "segment",
           "split_roles"]
