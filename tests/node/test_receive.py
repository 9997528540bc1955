"""The receiving node end to end: dcmtk storescu -> a real `nadir serve` process.

Runs once with SQLite and once with a private PostgreSQL database.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from node_harness import (
    Node,
    Study,
    dataset_bytes,
    kill_trial,
    recorded_paths,
    sop_instance_uid,
    spool_files,
    storescu,
)

pytestmark = pytest.mark.integration


def rows(node: Node) -> dict[str, str]:
    return recorded_paths(node)


def assert_db_and_spool_agree(node: Node) -> dict[str, str]:
    recorded = rows(node)
    assert set(recorded.values()) == spool_files(node)
    assert not any(p.startswith("tmp/") for p in recorded.values())
    return recorded


def wait_for_state(node: Node, uid: str, states: set[str], deadline_s: float = 20.0) -> dict[str, object]:
    end = time.monotonic() + deadline_s
    while True:
        found = {s["study_instance_uid"]: s for s in node.ls()}
        if uid in found and found[uid]["state"] in states:
            return found[uid]
        if time.monotonic() > end:
            raise AssertionError(f"study {uid} not in {states}: {found.get(uid)}")
        time.sleep(0.3)


SETTLED = {"READY", "PROCESSING", "DONE"}  # READY, or already picked up by the router


def test_study_is_stored_byte_identical_and_settles(make_node, study: Study) -> None:  # type: ignore[no-untyped-def]
    node = make_node(settle_seconds=1.5).start()
    # one association; -xt: JPEG-LS proposed besides the uncompressed syntaxes
    rc, acked, out = storescu(node.port, study.files, extra=["-xt"])
    assert rc == 0, out
    assert len(acked) == len(study.files)
    conversions = re.findall(r"Converting transfer syntax: (.*) -> (.*)", out)
    assert conversions and all(a == b for a, b in conversions), "the node made the sender transcode"

    recorded = assert_db_and_spool_agree(node)
    assert len(recorded) == len(study.files)
    for sent in study.files:
        stored = node.data_dir / "spool" / recorded[sop_instance_uid(sent)]
        assert dataset_bytes(stored) == dataset_bytes(sent), sent

    entry = wait_for_state(node, study.uid, SETTLED)
    assert entry["instances"] == len(study.files)
    assert entry["revision"] == 1
    assert f"study {study.uid} revision 1 READY" in node.log_text()
    first, last = str(entry["first_received"]), str(entry["last_received"])
    assert first <= last and first.endswith("+00:00")

    # the same instances again: idempotent, nothing new, no new revision
    rc, acked, out = storescu(node.port, study.ct[:5])
    assert rc == 0 and len(acked) == 5, out
    assert len(rows(node)) == len(study.files)
    assert {s["study_instance_uid"]: s for s in node.ls()}[study.uid]["revision"] == 1


def test_late_instance_opens_a_new_revision_and_restart_resumes(make_node, study: Study) -> None:  # type: ignore[no-untyped-def]
    node = make_node(settle_seconds=1.0).start()
    assert storescu(node.port, study.mr[:-1], extra=["-xt"])[0] == 0
    wait_for_state(node, study.uid, SETTLED)
    assert storescu(node.port, study.mr[-1:], extra=["-xt"])[0] == 0
    node.kill9()  # a crash while the study is RECEIVING revision 2
    entry = {s["study_instance_uid"]: s for s in node.ls()}[study.uid]
    assert (entry["revision"], entry["state"], entry["instances"]) == (2, "RECEIVING", len(study.mr))
    node.start()
    entry = wait_for_state(node, study.uid, SETTLED)
    assert entry["revision"] == 2


def test_kill9_during_receive_loses_no_acknowledged_instance(make_node, kill_loads: list[list[Path]]) -> None:  # type: ignore[no-untyped-def]
    node = make_node(settle_seconds=30.0).start()
    acked_total = 0
    for trial, files in enumerate(kill_loads):
        # kill at a different point of the transfer each time
        acked, problems = kill_trial(node, files, 0.3 + 0.2 * trial)
        assert not problems, f"trial {trial}: {problems}"
        acked_total += len(acked)
    assert acked_total > 0, "the sender saw no acknowledgement at all"
    # the sender never saw the rest acknowledged; resending completes the study
    rc, acked, out = storescu(node.port, kill_loads[0])
    assert rc == 0 and len(acked) == len(kill_loads[0]), out
    node.stop()


def test_bad_inputs_get_their_status_and_the_node_keeps_serving(make_node, study: Study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pydicom import dcmread
    from pynetdicom import AE, _config
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    node = make_node(allowed="GOODSCU").start()

    # not on the allow-list: rejected at association
    evil = AE(ae_title="EVIL")
    evil.add_requested_context(CTImageStorage)
    assoc = evil.associate("127.0.0.1", node.port, ae_title="NADIR")
    assert assoc.is_rejected
    rc, acked, out = storescu(node.port, study.ct[:1], calling="OTHER")
    assert rc != 0 and not acked

    ae = AE(ae_title="GOODSCU")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="NADIR")
    assert assoc.is_established
    try:
        # missing Study Instance UID
        ds = dcmread(study.ct[0])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.999.1"
        del ds.StudyInstanceUID
        assert assoc.send_c_store(ds).Status == 0xC002

        # a dataset that cannot be parsed: valid file meta, garbage after it
        garbage = tmp_path / "garbage.dcm"
        head = study.ct[1].read_bytes()
        meta_end = len(head) - len(dataset_bytes(study.ct[1]))
        garbage.write_bytes(head[:meta_end] + b"\x08\x00\x16\x00ZZ\x08\x001.2.3.4\x00")  # no such VR
        _config.STORE_SEND_CHUNKED_DATASET = True
        try:
            assert assoc.send_c_store(garbage).Status == 0xC001
        finally:
            _config.STORE_SEND_CHUNKED_DATASET = False

        # and a good one on the same association
        assert assoc.send_c_store(dcmread(study.ct[2])).Status == 0x0000
    finally:
        assoc.release()

    log = node.log_text()
    assert "from AE GOODSCU rejected (0xC002): StudyInstanceUID missing" in log
    assert "from AE GOODSCU rejected (0xC001): dataset cannot be parsed" in log
    assert "association from AE EVIL" in log and "rejected" in log

    # below the free-space floor: 0xA700, nothing stored
    full = make_node(min_free_bytes=2**62).start()
    assoc = ae.associate("127.0.0.1", full.port, ae_title="NADIR")
    assert assoc.is_established
    try:
        assert assoc.send_c_store(dcmread(study.ct[3])).Status == 0xA700
    finally:
        assoc.release()
    assert rows(full) == {} or set(rows(full)) == set(rows(node))  # a shared database holds node's rows only
    assert spool_files(full) == set()
    assert "refused (0xA700)" in full.log_text()
    full.stop()

    # the node still serves a good association, and nothing partial was counted
    rc, acked, out = storescu(node.port, study.ct[4:6], calling="GOODSCU")
    assert rc == 0 and len(acked) == 2, out
    recorded = assert_db_and_spool_agree(node)
    assert len(recorded) == 3
    assert not any((node.data_dir / "spool" / "tmp").iterdir())
    node.stop()
