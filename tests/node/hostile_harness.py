"""A hostile or broken peer, played with raw sockets against a real `nadir serve`
(tests/node/test_hostile_*.py and bench/hostile.py). Everything sent is synthetic."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from node_harness import Node
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

PROBE_SOURCE = "127.0.0.2"  # the probes' address; legitimate callers use 127.0.0.1
A_ASSOCIATE_RQ = 0x01
P_DATA_TF = 0x04


@dataclass
class HostileNode(Node):
    """`nadir serve` with extra NADIR_* settings."""

    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        # the web console is not under test here (and its fixed port may be taken)
        return {**super().env(), "NADIR_WEB__ENABLED": "false", **self.extra}


def pdu_header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, length)


def half_open(port: int, count: int, send: bytes = b"", source: str = PROBE_SOURCE) -> list[socket.socket]:
    """`count` connections that send `send` (e.g. a bare PDU header) and then nothing."""
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        if send:
            s.sendall(send)
        socks.append(s)
    return socks


def closed_by_node(sock: socket.socket, wait_s: float) -> bool:
    """Whether the node closed `sock` within `wait_s` (whatever it sent first is read)."""
    sock.settimeout(wait_s)
    end = time.monotonic() + wait_s
    try:
        while time.monotonic() < end:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def echo(port: int, calling: str = "ECHOSCU", called: str = "NADIR", timeout_s: float = 10.0) -> float | None:
    """One C-ECHO on a new association; its round trip in seconds, None if it failed."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = ae.connection_timeout = timeout_s
    ae.add_requested_context(Verification)
    start = time.perf_counter()
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return None
    status = assoc.send_c_echo()
    assoc.release()
    elapsed = time.perf_counter() - start
    return elapsed if status and status.Status == 0 else None


def peak_rss_kib(pid: int) -> int:
    """VmHWM of `pid` (Linux): the peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")
