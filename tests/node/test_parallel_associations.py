"""Many associations at once: each is established promptly, every instance is
acknowledged and recorded. Instances are synthetic.

Regression for a stall of the 10-parallel receive benchmark on a 2-core machine:
with socketserver's listen backlog of 5, connections beyond the fifth overflowed
the accept queue and were completed only by SYN-ACK retransmissions (1, 3, 7, ...
s later), and every association deep-copied ~6,600 presentation-context UIDs
before answering; under load the node accepted associations whose requestor had
already given up (see daemon.node.scp.Listener and SupportedContexts).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from node_harness import (
    Node,
    acked_files,
    dcmtk_env,
    free_port,
    recorded_paths,
    sop_instance_uid,
    write_series,
)
from pydicom.uid import generate_uid

from daemon.config import Settings
from daemon.node.scp import SupportedContexts, make_ae

pytestmark = pytest.mark.integration

SENDERS = 10
PER_SENDER = 6


def listen_backlog(port: int) -> int:
    """The listen backlog of the socket listening on `port` (ss shows it as Send-Q)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


def test_ten_storescu_at_once_all_acknowledged_and_recorded(tmp_path: Path) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) not installed: skipped")
    files = write_series(tmp_path / "load", "CT", SENDERS * PER_SENDER, 64, 64, generate_uid(), seed=7)
    node = Node(data_dir=tmp_path / "data", port=free_port()).start()
    try:
        # all ten connect before the acceptor thread runs: none may wait for a retransmission
        assert listen_backlog(node.port) >= 4 * SENDERS
        start = time.monotonic()
        senders = [
            subprocess.Popen(
                ["storescu", "-v", "-aec", "NADIR", "-ta", "20", "-td", "20",
                 "127.0.0.1", str(node.port), *map(str, files[i::SENDERS])],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dcmtk_env(),
            )
            for i in range(SENDERS)
        ]
        outputs = [s.communicate(timeout=60)[0] for s in senders]
        elapsed = time.monotonic() - start
        for i, (sender, output) in enumerate(zip(senders, outputs, strict=True)):
            assert sender.returncode == 0, output[-2000:]
            assert sorted(acked_files(output)) == sorted(files[i::SENDERS]), output[-2000:]
        # established and answered promptly: a stalled association costs 20 s here
        assert elapsed < 15.0, f"{SENDERS} associations took {elapsed:.1f} s"
        recorded = recorded_paths(node)
        assert {sop_instance_uid(f) for f in files} <= set(recorded)
    finally:
        node.stop()
    assert "aborted" not in node.log_text()
    assert node.log_text().count(" accepted") == SENDERS


def test_supported_contexts_copied_per_association_without_copying_uids() -> None:
    contexts = SupportedContexts(make_ae(Settings().node).supported_contexts)
    copied = copy.deepcopy(contexts)  # what pynetdicom does for every association
    assert len(copied) == len(contexts) > 100
    for ours, theirs in zip(contexts, copied, strict=True):
        assert theirs is not ours and theirs.transfer_syntax is not ours.transfer_syntax
        assert (theirs.abstract_syntax, theirs.transfer_syntax) == (ours.abstract_syntax, ours.transfer_syntax)
        assert (theirs.scu_role, theirs.scp_role) == (ours.scu_role, ours.scp_role)
        # the UIDs themselves are shared (immutable), not rebuilt and re-validated
        assert all(a is b for a, b in zip(ours.transfer_syntax, theirs.transfer_syntax, strict=True))
    copied[0].transfer_syntax = [copied[0].transfer_syntax[0]]
    assert len(contexts[0].transfer_syntax) > 1
