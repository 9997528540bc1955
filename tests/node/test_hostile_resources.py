"""Memory and disk bounds of the receive path (issue 23), against a real `nadir serve`:

- a deflated dataset inflating past `node.max_inflated_bytes` is refused with 0xA700
  and a log line (it was inflated whole in memory and stored); one under the cap is
  stored, its header read from the stream;
- below `store.min_free_bytes` before the transfer starts, nothing is written to tmp/
  (the file grew to the dataset's full size before the check);
- a transfer cut off inside its dataset leaves nothing in tmp/ once its association
  ends (it stayed until the hourly cleanup);
- and, in process, a file whose writing takes the free space below the margin stops
  growing and is answered 0xA700 (daemon.store.incoming).

Synthetic datasets only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from hostile_harness import HostileNode
from node_harness import free_port, recorded_paths
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF

from daemon.node.scp import OUT_OF_RESOURCES, StoreHandler
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.incoming import CHECK_EVERY
from daemon.store.recorder import Recorder
from daemon.store.spool import Spool
from daemon.store.telemetry import rejection_totals

pytestmark = pytest.mark.integration

CAP = 8 * 1024 * 1024


def ct(rows: int, cols: int, frames_bytes: bytes | None = None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.PatientID = "SYN-HOSTILE"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = frames_bytes if frames_bytes is not None else bytes(rows * cols * 2)
    return ds


def deflated_file(path: Path, ds: Dataset) -> Path:
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def store_file(port: int, path: Path, ts: str) -> int:
    ae = AE(ae_title="PROBE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(CTImageStorage, ts)
    assoc = ae.associate("127.0.0.1", port, ae_title="NADIR")
    assert assoc.is_established
    status = assoc.send_c_store(path)
    assoc.release()
    return int(status.Status)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileNode]:
    root = tmp_path_factory.mktemp("resources")
    n = HostileNode(data_dir=root / "data", port=free_port(), extra={
        "NADIR_NODE__MAX_INFLATED_BYTES": str(CAP),
        "NADIR_NODE__NETWORK_TIMEOUT_S": "5",
    })
    n.start()
    yield n
    n.stop()


def test_deflate_bomb_refused_and_small_deflated_stored(node: HostileNode, tmp_path: Path) -> None:
    bomb = ct(4096, 4096)  # 32 MiB of zeros: about 32 KiB deflated
    path = deflated_file(tmp_path / "bomb.dcm", bomb)
    assert path.stat().st_size < 1024 * 1024
    assert store_file(node.port, path, DeflatedExplicitVRLittleEndian) == OUT_OF_RESOURCES
    assert "node.max_inflated_bytes" in node.log_text()
    assert str(bomb.SOPInstanceUID) not in recorded_paths(node)

    small = ct(64, 64)
    assert store_file(node.port, deflated_file(tmp_path / "small.dcm", small), DeflatedExplicitVRLittleEndian) == 0
    assert str(small.SOPInstanceUID) in recorded_paths(node)


def _tmp_files(node: HostileNode) -> list[Path]:
    return [p for p in (node.data_dir / "spool" / "tmp").iterdir() if p.is_file()]


def test_a_cut_off_transfer_leaves_nothing_in_tmp(node: HostileNode) -> None:
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="NADIR")
    assert assoc.is_established
    ds = ct(1024, 1024)
    encoded = DicomBytesIO()
    encoded.is_implicit_VR, encoded.is_little_endian = False, True
    write_dataset(encoded, ds)
    req = C_STORE()
    req.MessageID = 1
    req.AffectedSOPClassUID = CTImageStorage
    req.AffectedSOPInstanceUID = ds.SOPInstanceUID
    req.Priority = 2
    req.DataSet = BytesIO(encoded.getvalue())
    msg = C_STORE_RQ()
    msg.primitive_to_message(req)
    context_id = assoc.accepted_contexts[0].context_id
    raw = assoc.dul.socket.socket
    for primitive in list(msg.encode_msg(context_id, 16384))[:-8]:  # all but the end of the dataset
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        raw.sendall(pdu.encode())
    deadline = time.monotonic() + 10
    while not _tmp_files(node) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _tmp_files(node), "the partial dataset never reached tmp/"
    raw.close()  # the sender drops: no A-ABORT, no release
    deadline = time.monotonic() + 10
    while _tmp_files(node) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _tmp_files(node), "the partial file stayed in tmp/"
    assert "its partial dataset removed" in node.log_text()
    assoc.abort()


def test_no_byte_written_below_the_free_space_margin(tmp_path: Path) -> None:
    node = HostileNode(data_dir=tmp_path / "data", port=free_port(), min_free_bytes=1 << 60)
    node.start()
    try:
        path = tmp_path / "big.dcm"
        ds = ct(4096, 4096, np.random.default_rng(0).integers(0, 65535, 4096 * 4096, dtype=np.uint16).tobytes())
        ds.save_as(path, enforce_file_format=True)
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                for p in _tmp_files(node):
                    try:
                        peak[0] = max(peak[0], p.stat().st_size)
                    except FileNotFoundError:
                        pass
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            assert store_file(node.port, path, ExplicitVRLittleEndian) == OUT_OF_RESOURCES
        finally:
            done.set()
            watcher.join()
        assert peak[0] < 1024 * 1024, f"{peak[0]} bytes written to tmp/ below the margin"
        assert "while it was received" in node.log_text()
    finally:
        node.stop()


class _FillingSpool(Spool):
    """A spool on a disk that fills as the file grows: free space = start - written."""

    def __init__(self, root: Path, start: int) -> None:
        super().__init__(root)
        self.start = start

    def free_bytes(self) -> int:
        return self.start - sum(p.stat().st_size for p in self.tmp.iterdir())


def test_a_file_stops_growing_once_below_the_margin(tmp_path: Path) -> None:
    spool = _FillingSpool(tmp_path / "spool", start=100 * CHECK_EVERY)
    spool.prepare()
    engine = make_engine(f"sqlite:///{tmp_path / 'nadir.db'}")
    create_schema(engine)
    handler = StoreHandler(spool, Recorder(engine), min_free_bytes=95 * CHECK_EVERY, associations=1)
    try:
        f = handler.incoming.open(delete=False, mode="wb", suffix=".dcm")
        chunk = b"\1" * (1024 * 1024)
        for _ in range(64):
            f.write(chunk)
            f.file.flush()
        size = Path(f.name).stat().st_size
        f.close()
        assert size == 0, "the file kept growing below the margin"
        assert handler.store(Path(f.name), "1.2.3", "PROBE") == OUT_OF_RESOURCES
        with make_sessionmaker(engine)() as session:  # counted for /metrics
            assert rejection_totals(session) == [("PROBE", OUT_OF_RESOURCES, 1)]
    finally:
        handler.close()
        engine.dispose()
