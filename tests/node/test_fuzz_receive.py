"""The network fuzz of the receive path, small (issue 23): bench/fuzz_receive.py's own
code with 200 malformed SYNTHETIC datasets (tests/node/mutations.py) and 20 valid ones,
4 associations at once, against a real `nadir serve` with SQLite. The full run (10,000
malformed) is the bench: `.venv/bin/python bench/fuzz_receive.py`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from node_harness import Node

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_receive.py"
REFUSALS = {"0xC001", "0xC002", "0xC003", "0xC004", "0xA900"}  # daemon.node.scp's statuses for bad datasets


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_receive", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_malformed_datasets_are_refused_and_valid_ones_kept_whole(tmp_path: Path) -> None:
    fuzz = _bench()
    r = fuzz.run(tmp_path, malformed=200, every=10, parallel=4)
    print(r.line())
    assert r.crashes == 0, "the node died or stopped answering C-ECHO"
    assert r.valid == 20 and r.valid_identical == r.valid, r.problems
    assert r.malformed_acked_identical == r.malformed_acked, "an acknowledged dataset differs from what was sent"
    assert r.outside == []
    assert r.tracebacks == 0 and r.stop_rc == 0
    assert sum(r.statuses.values()) == 200
    assert set(r.statuses) <= REFUSALS | {"0x0000"}, r.statuses  # no `none`, no 0xC211, no sender failure
    assert sum(r.statuses[s] for s in REFUSALS) >= 50, "the mutants were mostly accepted: not malformed enough"


def test_files_left_outside_the_spool_are_found(tmp_path: Path) -> None:
    """The check itself: a stray file in the data folder, in spool/tmp, or a spool file
    without its row, is counted; the database and the recorded file are not."""
    fuzz = _bench()
    node = Node(data_dir=tmp_path / "data", port=0)
    spool = node.data_dir / "spool"
    (spool / "tmp").mkdir(parents=True)
    (spool / "1.2" / "1.3").mkdir(parents=True)
    for path in ("nadir.db", "nadir.db-wal", "spool/.running", "spool/1.2/1.3/1.4.dcm"):
        (node.data_dir / path).write_bytes(b"")
    assert fuzz.outside_data(node, {"1.4": "1.2/1.3/1.4.dcm"}) == []
    for path in ("core.1234", "spool/tmp/abc.part", "spool/1.2/1.3/1.5.dcm"):
        (node.data_dir / path).write_bytes(b"")
    assert sorted(fuzz.outside_data(node, {"1.4": "1.2/1.3/1.4.dcm"})) == [
        "core.1234", "spool/1.2/1.3/1.5.dcm", "spool/tmp/abc.part"]


def test_a_file_holding_the_runs_uids_is_found_outside_the_bench(tmp_path: Path) -> None:
    fuzz = _bench()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "sent.dcm").write_bytes(b"..1.2.826.0.1.3680043.8.498.777.51..")
    (tmp_path / "leak.part").write_bytes(b"..1.2.826.0.1.3680043.8.498.777.51..")
    (tmp_path / "other").write_bytes(b"1.2.826.0.1.3680043.8.498.888.51")
    found = fuzz.new_files_with(b"1.2.826.0.1.3680043.8.498.777.", 0.0, [tmp_path], [tmp_path / "mine"])
    assert found == [str(tmp_path / "leak.part")]
