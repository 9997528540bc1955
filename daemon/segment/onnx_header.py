"""What an ONNX file declares (IR version, operator sets) and what this runtime loads.

The header is read by scanning the top-level protobuf fields of the ModelProto,
skipping the graph without parsing it, so checking a 400 MB model costs nothing.
The runtime's limits are probed once per process by loading tiny models built
here byte by byte, so an upgrade of ONNX Runtime moves them without a code change.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import onnxruntime as ort

_IR_VERSION = 1  # ModelProto field numbers
_GRAPH = 7
_OPSET_IMPORT = 8


@dataclass(frozen=True)
class OnnxHeader:
    ir_version: int
    opsets: dict[str, int]  # domain ("" is the default ai.onnx domain) -> version

    @property
    def default_opset(self) -> int:
        return self.opsets.get("", self.opsets.get("ai.onnx", 0))


@dataclass(frozen=True)
class RuntimeLimits:
    max_ir_version: int
    max_opset: int


class OnnxHeaderError(ValueError):
    """The file is not an ONNX model this reader understands."""


def _varint(f: BinaryIO) -> int | None:
    shift = 0
    value = 0
    while True:
        b = f.read(1)
        if not b:
            if shift == 0:
                return None
            raise OnnxHeaderError("truncated varint")
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise OnnxHeaderError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    f = io.BytesIO(data)
    while (key := _varint(f)) is not None:
        number, wire = key >> 3, key & 7
        if wire == 0:
            v = _varint(f)
            out.append((number, v if v is not None else 0))
        elif wire == 2:
            n = _varint(f) or 0
            out.append((number, f.read(n)))
        else:
            raise OnnxHeaderError(f"unexpected wire type {wire}")
    return out


def read_header(path: Path) -> OnnxHeader:
    """The IR version and operator-set imports of an ONNX file, without loading the graph."""
    ir = 0
    opsets: dict[str, int] = {}
    with path.open("rb") as f:
        while (key := _varint(f)) is not None:
            number, wire = key >> 3, key & 7
            if wire == 0:
                v = _varint(f) or 0
                if number == _IR_VERSION:
                    ir = v
            elif wire == 2:
                n = _varint(f) or 0
                if number == _OPSET_IMPORT:
                    domain, version = "", 0
                    for fn, fv in _fields(f.read(n)):
                        if fn == 1 and isinstance(fv, bytes):
                            domain = fv.decode("utf-8", "replace")
                        elif fn == 2 and isinstance(fv, int):
                            version = fv
                    opsets[domain] = version
                else:
                    f.seek(n, 1)
            elif wire == 5:
                f.seek(4, 1)
            elif wire == 1:
                f.seek(8, 1)
            else:
                raise OnnxHeaderError(f"{path}: not an ONNX model (wire type {wire})")
    if ir == 0:
        raise OnnxHeaderError(f"{path}: not an ONNX model (no IR version)")
    return OnnxHeader(ir_version=ir, opsets=opsets)


def _enc_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(payload)) + payload


# A graph y = Identity(x) with x, y float tensors of shape [1].
_TENSOR_1 = _len_field(1, _enc_varint(1 << 3) + b"\x01" + _len_field(2, _len_field(1, b"\x08\x01")))
_GRAPH_BYTES = (
    _len_field(1, _len_field(1, b"x") + _len_field(2, b"y") + _len_field(4, b"Identity"))
    + _len_field(2, b"g")
    + _len_field(11, _len_field(1, b"x") + _len_field(2, _TENSOR_1))
    + _len_field(12, _len_field(1, b"y") + _len_field(2, _TENSOR_1))
)


def probe_model(ir_version: int, opset: int) -> bytes:
    """A minimal ONNX model with the given IR version and default-domain opset."""
    return (
        _enc_varint(_IR_VERSION << 3) + _enc_varint(ir_version)
        + _len_field(_GRAPH, _GRAPH_BYTES)
        + _len_field(_OPSET_IMPORT, _len_field(1, b"") + _enc_varint(2 << 3) + _enc_varint(opset))
    )


def _loads(ir_version: int, opset: int) -> bool:
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    try:
        ort.InferenceSession(probe_model(ir_version, opset), opts, providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


@functools.cache
def runtime_limits() -> RuntimeLimits:
    """The highest IR version and default-domain opset this ONNX Runtime loads (probed once)."""
    ir = 7
    while ir < 64 and _loads(ir + 1, 7):
        ir += 1
    opset = 7
    while opset < 128 and _loads(min(ir, 10), opset + 1):
        opset += 1
    return RuntimeLimits(max_ir_version=ir, max_opset=opset)
