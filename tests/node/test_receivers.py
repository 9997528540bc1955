"""Several receiving processes on one port (node.receivers): they all store, a
second node cannot silently share the port, and the children die with the node,
also after kill -9 of the node's process alone. Instances are synthetic."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from node_harness import Node, free_port, recorded_paths, sop_instance_uid, spool_files, storescu

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def receiver_pids(node: Node, expected: int, deadline_s: float = 30.0) -> list[int]:
    """The pids of the node's receiving children, once `expected` of them listen."""
    assert node.proc is not None
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if node.log_text().count("receiving process") >= expected:
            pids = [c for c in children(node.proc.pid) if b"spawn_main" in cmdline(c)]
            listening = [p for p in pids if f"(pid {p}) listening" in node.log_text()]
            if len(listening) == expected:
                return listening
        time.sleep(0.2)
    raise AssertionError(f"{expected} receiving children not listening; log:\n{node.log_text()[-3000:]}")


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_receivers_share_the_port_and_die_with_the_node(tmp_path: Path, study) -> None:  # type: ignore[no-untyped-def]
    node = Node(data_dir=tmp_path / "data", port=free_port(), receivers=3).start()
    try:
        kids = receiver_pids(node, 2)
        # a second node on the same port is refused, not silently sharing it
        other = Node(data_dir=tmp_path / "other", port=node.port, receivers=2).start()
        assert other.proc is not None
        assert other.proc.wait(60) == 1, other.log_text()
        other.proc = None
        assert "Address already in use" in other.log_text()
        files = study.ct[:60]
        for i in range(6):  # six associations: the kernel spreads them over the processes
            rc, acked, out = storescu(node.port, files[i::6])
            assert rc == 0 and len(acked) == len(files[i::6]), out
        recorded = recorded_paths(node)
        assert {sop_instance_uid(f) for f in files} <= set(recorded)
        assert set(recorded.values()) == spool_files(node)

        assert node.proc is not None
        group = node.proc.pid
        os.kill(node.proc.pid, signal.SIGKILL)  # the node's process alone
        node.proc.wait(30)
        node.proc = None
        end = time.monotonic() + 10
        while any(alive(k) for k in kids) and time.monotonic() < end:
            time.sleep(0.1)
        survivors = [k for k in kids if alive(k)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever else of the old node is left
        assert not survivors, "a receiving child outlived the node"

        node.start()  # the port is free again; the instances are all there
        receiver_pids(node, 2)
        assert set(recorded_paths(node)) == set(recorded)
    finally:
        if node.proc is not None:
            node.stop()
