"""What is acknowledged is what was sent, filed where it belongs (issue 23), against a
real `nadir serve` over the network, once with SQLite and once with PostgreSQL.

SYNTHETIC datasets (node_harness.write_series) altered the way a broken or hostile
sender would: UIDs that are not UIDs, a dataset cut inside its pixel data, a dataset
of another class than its request, an over-long AccessionNumber, and another dataset
under a SOP Instance UID already stored (also sent concurrently, 20 pairs).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from node_harness import Node, recorded_paths, spool_files, write_series
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, MRImageStorage  # type: ignore[attr-defined]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BAD_UIDS = ["tmp", "../../x", "1.2.03", "1.2.3 4", "1.2.\n3", "1..2", "x" + "0" * 63, "1." + "2" * 63]


def _ae() -> AE:
    ae = AE(ae_title="GOODSCU")
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(MRImageStorage)
    return ae


def _send_file(assoc, path: Path) -> int:  # type: ignore[no-untyped-def]
    """Send the file's bytes as they are (the request's UIDs from its file meta)."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        return int(assoc.send_c_store(path).Status)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False


def _pixels(ds: Dataset, fill: int) -> Dataset:
    ds.PixelData = bytes([fill]) * len(ds.PixelData)
    return ds


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # where over-long values failed
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.filterwarnings("ignore:The value length")
def test_what_is_acknowledged_is_what_was_sent(make_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node: Node = make_node(allowed="GOODSCU").start()
    files = write_series(tmp_path / "ct", "CT", 46, 16, 16, generate_uid(), seed=7)
    assoc = _ae().associate("127.0.0.1", node.port, ae_title="NADIR")
    assert assoc.is_established
    try:
        # UIDs as PS3.5 9.1 defines them: anything else refused with 0xC002
        for n, bad in enumerate(BAD_UIDS):
            ds = dcmread(files[n])
            if n % 2:
                ds.StudyInstanceUID = bad
            else:
                ds.SeriesInstanceUID = bad
            assert assoc.send_c_store(ds).Status == 0xC002, repr(bad)

        # cut inside its native pixel data: 0xC004, not acknowledged
        cut = tmp_path / "cut.dcm"
        cut.write_bytes(files[10].read_bytes()[:-100])
        assert _send_file(assoc, cut) == 0xC004

        # a dataset of another class than its request (file meta says CT): 0xA900
        other = dcmread(files[11])
        other.SOPClassUID = MRImageStorage
        mismatch = tmp_path / "mismatch.dcm"
        other.save_as(mismatch, enforce_file_format=True)
        other.file_meta.MediaStorageSOPClassUID = CTImageStorage
        other.save_as(mismatch)
        assert _send_file(assoc, mismatch) == 0xA900

        # an AccessionNumber longer than SH allows (old modalities send them): stored whole
        # and warned about; PostgreSQL refused it for ever (0xA701) before
        long_accession = dcmread(files[12])
        long_accession.AccessionNumber = "A" * 20
        assert assoc.send_c_store(long_accession).Status == 0x0000

        # the same dataset twice: 0x0000 twice; another dataset under its UID: 0x0111
        first = dcmread(files[13])
        assert assoc.send_c_store(first).Status == 0x0000
        assert assoc.send_c_store(first).Status == 0x0000
        assert assoc.send_c_store(_pixels(dcmread(files[13]), 0x55)).Status == 0x0111
    finally:
        assoc.release()

    # 20 pairs at once: two associations each send one of two different datasets per UID
    pairs = files[14:34]
    statuses: list[tuple[int, int]] = []
    lock = threading.Lock()

    def send(fill: int) -> None:
        a = _ae().associate("127.0.0.1", node.port, ae_title="NADIR")
        try:
            for i, f in enumerate(pairs):
                status = int(a.send_c_store(_pixels(dcmread(f), fill)).Status)
                with lock:
                    statuses.append((i, status))
        finally:
            a.release()

    threads = [threading.Thread(target=send, args=(fill,)) for fill in (0x11, 0x22)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    recorded = recorded_paths(node)
    assert set(recorded.values()) == spool_files(node), "every spool file has its row and every row its file"
    assert not any((node.data_dir / "spool" / "tmp").iterdir())
    stored = dcmread(files[13]).SOPInstanceUID
    assert dcmread(node.data_dir / "spool" / recorded[stored]).PixelData == dcmread(files[13]).PixelData, \
        "the first copy stays"
    for i, f in enumerate(pairs):
        uid = dcmread(f, stop_before_pixels=True).SOPInstanceUID
        got = sorted(s for j, s in statuses if j == i)
        assert got == [0x0000, 0x0111], (i, got)
        kept = dcmread(node.data_dir / "spool" / recorded[uid]).PixelData
        assert kept in (bytes([0x11]) * len(kept), bytes([0x22]) * len(kept)), "the file is one whole copy"
    for n in range(len(BAD_UIDS)):
        assert dcmread(files[n], stop_before_pixels=True).SOPInstanceUID not in recorded
    assert {dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files[10:12]}.isdisjoint(recorded)
    assert dcmread(files[12], stop_before_pixels=True).SOPInstanceUID in recorded

    log = node.log_text()
    assert log.count("rejected (0xC002)") == len(BAD_UIDS) and "is not a valid UID (PS3.5 9.1)" in log
    assert "rejected (0xC004)" in log and "rejected (0xA900)" in log
    assert "AccessionNumber is 20 characters, more than SH allows (16): stored as sent" in log
    assert log.count("rejected (0x0111)") == 21
    study = next(s for s in node.ls() if s["study_instance_uid"] == dcmread(files[13]).StudyInstanceUID)
    assert study["conflicting_duplicates"] == 21
    assert not [p for p in (node.data_dir / "spool").iterdir() if p.name not in {"tmp", ".running"}
                and p.name != dcmread(files[13]).StudyInstanceUID]
    node.stop()
