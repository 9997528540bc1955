"""ONNX Runtime sessions: checked at load, on the best provider present, cached per process.

`load_model(folder)` validates the manifest, verifies the file's sha256 and that
this runtime loads its IR version and opset, then opens a session that prefers
TensorRT, then CUDA, then the CPU. Which provider runs is logged once per model;
sessions are cached per process (one per worker).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from daemon.segment.manifest import Manifest, ModelError, load_manifest
from daemon.segment.onnx_header import OnnxHeaderError, read_header, runtime_limits

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"]

_lock = threading.Lock()
_sessions: dict[tuple[str, str, ProviderChoice, int], LoadedModel] = {}


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A checked manifest and its open session."""

    folder: Path
    manifest: Manifest
    session: Any  # onnxruntime.InferenceSession
    input_name: str
    output_name: str
    provider: str  # the provider that runs the first node
    fixed_batch: int | None  # the model's batch dimension when it is not dynamic


def _loadable(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


@functools.cache
def gpu_present() -> bool:
    """Whether an NVIDIA driver is loadable here (without it, GPU providers cannot run)."""
    return _loadable("libcuda.so.1")


def choose_providers(
    choice: ProviderChoice, available: Sequence[str], gpu: bool, tensorrt_libs: bool
) -> list[str]:
    """The providers to ask for, best first; CPU always last as the fallback."""
    wanted: list[str] = []
    if choice in ("auto", "tensorrt") and gpu and tensorrt_libs and TENSORRT in available:
        wanted.append(TENSORRT)
    if choice in ("auto", "tensorrt", "cuda") and gpu and CUDA in available:
        wanted.append(CUDA)
    wanted.append(CPU)
    return wanted


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_model_file(folder: Path, manifest: Manifest, lines: dict[tuple[str | int, ...], int]) -> Path:
    """The ONNX file exists, matches its sha256 and declares an IR/opset this runtime loads."""
    manifest_path = folder / "model.yaml"
    path = folder / manifest.file
    if not path.is_file():
        raise ModelError(f"{manifest_path}:{lines.get(('file',), 1)}: file: {path} does not exist")
    digest = sha256_of(path)
    if digest != manifest.sha256:
        raise ModelError(
            f"{manifest_path}:{lines.get(('sha256',), 1)}: sha256: {path.name} has sha256 {digest}, "
            f"the manifest says {manifest.sha256} (file changed or manifest stale)"
        )
    try:
        header = read_header(path)
    except OnnxHeaderError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    limits = runtime_limits()
    if header.ir_version > limits.max_ir_version:
        raise ModelError(
            f"{path}: ONNX IR version {header.ir_version} is newer than this ONNX Runtime "
            f"{ort.__version__} loads (at most IR {limits.max_ir_version}); re-export with an older IR "
            "(set model.ir_version) or upgrade onnxruntime"
        )
    if header.default_opset > limits.max_opset:
        raise ModelError(
            f"{path}: ONNX opset {header.default_opset} is newer than this ONNX Runtime "
            f"{ort.__version__} supports (at most opset {limits.max_opset}); re-export with opset_version <= "
            f"{limits.max_opset} or upgrade onnxruntime"
        )
    return path


def _open_session(path: Path, providers: list[str], threads: int) -> Any:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # no busy-waiting between operators: on a node that also receives and stores, and with several
    # workers on a few cores, a spinning idle thread takes the CPU another needs
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:
        if providers != [CPU]:
            log.warning("model %s: providers %s failed (%s); using the CPU", path, providers, exc)
            return ort.InferenceSession(str(path), opts, providers=[CPU])
        raise ModelError(f"{path}: ONNX Runtime cannot load this model: {exc}") from exc


def _fixed_batch(session: Any) -> int | None:
    dim = session.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) and dim > 0 else None


def _io_names(session: Any, manifest: Manifest, path: Path) -> tuple[str, str]:
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    input_name = manifest.input.name or inputs[0]
    output_name = manifest.output.name or outputs[0]
    if input_name not in inputs:
        raise ModelError(f"{path}: no input named {input_name!r} (the model has {inputs})")
    if output_name not in outputs:
        raise ModelError(f"{path}: no output named {output_name!r} (the model has {outputs})")
    return input_name, output_name


def _check_channels(session: Any, manifest: Manifest, output_name: str, path: Path) -> None:
    """With argmax, every foreground channel has a label (when the export's channel count is fixed).

    A channel without a label does not compete in the argmax: its voxels would go to
    whichever listed label is more probable than the background (the spleen to the liver).
    """
    spec = manifest.output
    shape = next(o.shape for o in session.get_outputs() if o.name == output_name)
    count = shape[1] if len(shape) > 1 else None
    if spec.decision != "argmax" or not isinstance(count, int):
        return
    missing = sorted(set(range(1, count)) - {lab.channel for lab in spec.labels})
    if missing:
        raise ModelError(
            f"{path}: output {output_name!r} has {count} channels and decision: argmax, but channels {missing} "
            "have no label; give every foreground channel a label (role: organ for structures the route does "
            "not use), or their voxels go to the labels listed"
        )


def load_model(folder: Path, providers: ProviderChoice = "auto", threads: int = 0) -> LoadedModel:
    """Check a model folder and open its session; cached per process and folder."""
    folder = folder.resolve()
    manifest, lines = load_manifest(folder)
    key = (str(folder), manifest.sha256, providers, threads)
    with _lock:
        cached = _sessions.get(key)
        if cached is not None:
            return cached
        path = check_model_file(folder, manifest, lines)
        wanted = choose_providers(
            providers, ort.get_available_providers(), gpu_present(), _loadable("libnvinfer.so.10")
        )
        session = _open_session(path, wanted, threads)
        running = session.get_providers()[0]
        input_name, output_name = _io_names(session, manifest, path)
        _check_channels(session, manifest, output_name, path)
        model = LoadedModel(
            folder=folder,
            manifest=manifest,
            session=session,
            input_name=input_name,
            output_name=output_name,
            provider=running,
            fixed_batch=_fixed_batch(session),
        )
        if providers != "cpu" and running == CPU:
            log.info("model %s %s runs on %s (no GPU provider usable here)", manifest.name, manifest.version, running)
        else:
            log.info("model %s %s runs on %s", manifest.name, manifest.version, running)
        _sessions[key] = model
        return model


def clear_cache() -> None:
    """Forget every cached session (tests, hot reload of models)."""
    with _lock:
        _sessions.clear()
