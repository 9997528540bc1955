"""Availability under hostile probes, against a real `nadir serve` (issue 23).

1. Legitimate C-ECHO latency (a new association each) with no probes, then while 100
   half-open connections are held (50 that sent a bare A-ASSOCIATE-RQ header, 50 that
   sent nothing; from 127.0.0.2, the echoes from 127.0.0.1): median, p95, ratio.
2. The node's peak RSS (VmHWM) at rest, then after the PDU probes (A-ASSOCIATE-RQs and
   P-DATA-TFs announcing 1 GiB, 20 of each) and the deflate probes (20 datasets of
   ~64 KiB deflated that inflate to 64 MiB each, 4 associations at once).

    .venv/bin/python bench/hostile.py [--echoes 30]

Everything sent is synthetic.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "node"))

import hostile_harness as hh  # noqa: E402
from node_harness import free_port  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid  # noqa: E402
from pynetdicom import AE  # noqa: E402
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # noqa: E402


def latencies(port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = hh.echo(port, timeout_s=30)
        out.append(t if t is not None else float("inf"))
    return out


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    failed = sum(x == float("inf") for x in xs)
    return f"median {statistics.median(xs) * 1000:.1f} ms, p95 {xs[int(0.95 * (len(xs) - 1))] * 1000:.1f} ms, failed {failed}"


def bomb(path: Path) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "CT"
    ds.Rows = ds.Columns = 4096
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = bytes(4096 * 4096 * 2)  # 32 MiB of zeros
    ds.save_as(path, enforce_file_format=True)
    return path


def deflate_probes(port: int, path: Path, count: int) -> list[int]:
    statuses: list[int] = []

    def send() -> None:
        ae = AE(ae_title="PROBE")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
        ae.add_requested_context(CTImageStorage, DeflatedExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", port, ae_title="NADIR")
        for _ in range(count // 4):
            statuses.append(int(assoc.send_c_store(path).Status))
        assoc.release()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def pdu_probes(port: int) -> None:
    socks = hh.half_open(port, 20, send=hh.pdu_header(hh.A_ASSOCIATE_RQ, 1 << 30) + b"\0" * 65536)
    for _ in range(20):
        ae = AE(ae_title="PROBE")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="NADIR")
        if assoc.is_established:
            assoc.dul.socket.socket.sendall(hh.pdu_header(hh.P_DATA_TF, 1 << 30) + b"\0" * (1 << 20))
            time.sleep(0.05)
            assoc.abort()
    hh.close_all(socks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--echoes", type=int, default=30)
    ap.add_argument("--half-open", type=int, default=100)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nadir-hostile-"))
    node = hh.HostileNode(data_dir=tmp / "data", port=free_port(), extra={
        # the probes come from one address: let all 100 be held, none refused
        "NADIR_NODE__MAX_HALF_OPEN_PER_ADDRESS": str(max(args.half_open, 32)),
        "NADIR_NODE__MAX_INFLATED_BYTES": str(16 * 1024 * 1024),
    })
    try:
        node.start()
        assert node.proc is not None
        latencies(node.port, 3)  # warm up
        base = latencies(node.port, args.echoes)
        half = hh.half_open(node.port, args.half_open // 2, send=hh.pdu_header(hh.A_ASSOCIATE_RQ, 200))
        half += hh.half_open(node.port, args.half_open - args.half_open // 2)
        time.sleep(0.5)
        held = sum(not hh.closed_by_node(s, 0.01) for s in half)
        probed = latencies(node.port, args.echoes)
        hh.close_all(half)
        print(f"C-ECHO, no probes:                {summary(base)}")
        print(f"C-ECHO, {held} half-open held:     {summary(probed)}")
        print(f"ratio of medians (probed / none): {statistics.median(probed) / statistics.median(base):.2f}")
        rest = hh.peak_rss_kib(node.proc.pid)
        pdu_probes(node.port)
        after_pdu = hh.peak_rss_kib(node.proc.pid)
        path = bomb(tmp / "bomb.dcm")
        statuses = deflate_probes(node.port, path, 20)
        after_deflate = hh.peak_rss_kib(node.proc.pid)
        print(f"deflate probes ({path.stat().st_size} bytes each, 32 MiB inflated): statuses "
              f"{sorted(set(f'0x{s:04X}' for s in statuses))} x{len(statuses)}")
        print(f"peak RSS of nadir serve: at rest {rest / 1024:.0f} MiB, after PDU probes {after_pdu / 1024:.0f} MiB, "
              f"after deflate probes {after_deflate / 1024:.0f} MiB")
        return 0
    finally:
        if node.proc is not None:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
