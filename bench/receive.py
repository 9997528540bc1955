"""Receive throughput over loopback: Nadir vs a raw pynetdicom SCP, Orthanc, dcmtk storescp.

The same sender for all: one pynetdicom SCU (max PDU 4 MiB, TCP_NODELAY, chunked
send of the files as they are, explicit VR little endian) per association. The load is N
synthetic CT slices (512x512x16 bit random noise, about 0.5 MB each).

    .venv/bin/python bench/receive.py [-n 2000] [--parallel 10] [--big 20000] [--nadir-receivers K]

--parallel K also times K associations at once (K sender processes, N/K each);
--big M streams M small instances (128x128) to Nadir on one association and samples
its resident memory, which must stay flat. Orthanc runs with SyncStorageArea
true (it fsyncs before acknowledging, as Nadir does); storescp runs with
TCP_NODELAY=1 (without it dcmtk stalls ~40 ms per instance on loopback).
The last line is
    receive instances/s nadir=<x> raw_pynetdicom=<r> orthanc=<o> storescp=<s>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "node"))

import node_harness as h  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from daemon.demo.peers import dcmtk_env  # noqa: E402
from daemon.node.requestor import keep_responses  # noqa: E402

PYTHON = h.PYTHON
NADIR_RECEIVERS: int | None = None  # --nadir-receivers; None: the node's default


# -- the sender ---------------------------------------------------------------------------


def send(port: int, ae_title: str, files: list[str]) -> tuple[float, int, int]:
    """Send `files` on one association; return (seconds, instances acknowledged 0x0000,
    responses handed back from pynetdicom's reactor thread: see daemon.node.requestor)."""
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, _config
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title="BENCHSCU")
    ae.maximum_pdu_size = 4_194_304
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title, max_pdu=4_194_304)
    if not assoc.is_established:
        raise RuntimeError(f"association to {ae_title}:{port} failed")
    nodelay(assoc)
    kept = keep_responses(assoc)  # a pynetdicom requestor race: see daemon.node.requestor
    ok = 0
    start = time.perf_counter()
    for f in files:
        status = assoc.send_c_store(Path(f))
        ok += int(getattr(status, "Status", -1) == 0)
    elapsed = time.perf_counter() - start
    assoc.release()
    return elapsed, ok, kept.count


def nodelay(assoc: object) -> None:
    """TCP_NODELAY on the sender's socket: pynetdicom writes the command and the
    dataset separately, and Nagle would hold the second back ~40 ms on loopback."""
    import socket

    sock = assoc.dul.socket.socket  # type: ignore[attr-defined]
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _send_star(args: tuple[int, str, list[str]]) -> tuple[float, int, int]:
    return send(*args)


def _warm(_: int) -> None:
    import pynetdicom  # noqa: F401 - imported before the clock starts


def send_parallel(port: int, ae_title: str, files: list[str], k: int) -> tuple[float, int, int]:
    chunks = [files[i::k] for i in range(k)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(k) as pool:
        pool.map(_warm, range(k), chunksize=1)
        start = time.perf_counter()
        results = pool.map(_send_star, [(port, ae_title, c) for c in chunks], chunksize=1)
        elapsed = time.perf_counter() - start
    return elapsed, sum(ok for _, ok, _ in results), sum(back for _, _, back in results)


# -- the receivers ------------------------------------------------------------------------


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    h.wait_for_port(port, proc, 60)  # type: ignore[arg-type]


@contextlib.contextmanager
def nadir(tmp: Path) -> Iterator[tuple[int, str, int]]:
    node = h.Node(
        data_dir=tmp / "nadir", port=h.free_port(), settle_seconds=30.0, receivers=NADIR_RECEIVERS
    ).start()
    assert node.proc is not None
    try:
        yield node.port, "NADIR", node.proc.pid
    finally:
        node.stop()


@contextlib.contextmanager
def raw_pynetdicom(tmp: Path) -> Iterator[tuple[int, str, int]]:
    port, out = h.free_port(), tmp / "raw"
    out.mkdir(parents=True)
    proc = subprocess.Popen([PYTHON, str(HERE / "raw_scp.py"), str(port), str(out)])
    try:
        wait_port(port, proc)
        yield port, "RAW", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def orthanc(tmp: Path) -> Iterator[tuple[int, str, int]]:
    port, http = h.free_port(), h.free_port()
    config = {
        "Name": "bench",
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "HttpPort": http,
        "StorageDirectory": str(tmp / "orthanc" / "storage"),
        "IndexDirectory": str(tmp / "orthanc" / "index"),
        "SyncStorageArea": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "Plugins": [],
    }
    (tmp / "orthanc").mkdir(parents=True)
    cfg = tmp / "orthanc" / "orthanc.json"
    cfg.write_text(json.dumps(config))
    log = open(tmp / "orthanc" / "log.txt", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["/usr/sbin/Orthanc", str(cfg)], stdout=log, stderr=subprocess.STDOUT, env=dcmtk_env())
    try:
        wait_port(port, proc)
        yield port, "ORTHANC", proc.pid
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


@contextlib.contextmanager
def storescp(tmp: Path) -> Iterator[tuple[int, str, int]]:
    port, out = h.free_port(), tmp / "storescp"
    out.mkdir(parents=True)
    proc = subprocess.Popen(
        ["storescp", "-aet", "STORESCP", "-od", str(out), "--max-pdu", "131072", str(port)],
        env=dcmtk_env(),
    )
    try:
        wait_port(port, proc)
        yield port, "STORESCP", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


RECEIVERS: dict[str, Callable[[Path], contextlib.AbstractContextManager[tuple[int, str, int]]]] = {
    "nadir": nadir,
    "raw_pynetdicom": raw_pynetdicom,
    "orthanc": orthanc,
    "storescp": storescp,
}


# -- the runs ---------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_run(tmp: Path, count: int) -> None:
    """Stream `count` small instances to Nadir on one association; print its RSS."""
    from pydicom import dcmread
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    template_file = h.write_series(tmp / "small", "CT", 1, 128, 128, generate_uid())[0]
    ds = dcmread(template_file)
    with nadir(tmp / "mem") as (port, aet, pid):
        ae = AE(ae_title="BENCHSCU")
        ae.add_requested_context(CTImageStorage, str(ds.file_meta.TransferSyntaxUID))
        assoc = ae.associate("127.0.0.1", port, ae_title=aet, max_pdu=4_194_304)
        nodelay(assoc)
        kept = keep_responses(assoc)
        samples, ok, start = [], 0, time.perf_counter()
        for i in range(count):
            ds.SOPInstanceUID = generate_uid()
            ds.InstanceNumber = i + 1
            status = assoc.send_c_store(ds) if assoc.is_established else None
            if status is None or "Status" not in status:
                log = (tmp / "mem" / "nadir-serve.log").read_text(errors="replace")
                print(f"no response for instance {i + 1}; nadir log ends:\n{log[-3000:]}")
                break
            ok += int(status.Status == 0)
            if (i + 1) % max(1, count // 10) == 0:
                samples.append((i + 1, rss_kib(pid)))
                print(f"  {i + 1} sent, nadir RSS {samples[-1][1] / 1024:.0f} MiB", flush=True)
        elapsed = time.perf_counter() - start
        assoc.release()
    print(
        f"memory run: {ok}/{count} stored in {elapsed:.0f} s ({count / elapsed:.0f}/s, 128x128 slices)"
        + handed_back_note(kept.count)
    )
    print("nadir RSS (MiB) after n instances: " + ", ".join(f"{n}:{kib / 1024:.0f}" for n, kib in samples))
    first, last = samples[0][1], samples[-1][1]
    print(f"RSS growth from {samples[0][0]} to {samples[-1][0]} instances: {(last - first) / 1024:.1f} MiB")


def handed_back_note(count: int) -> str:
    if not count:
        return ""
    return (f" ({count} response(s) taken by pynetdicom's reactor thread handed back to "
            "send_c_store; see daemon.node.requestor)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="instances per receiver (default 2000)")
    ap.add_argument("--parallel", type=int, default=0, help="also time K associations at once")
    ap.add_argument("--big", type=int, default=0, help="also stream this many instances to Nadir, sampling its memory")
    ap.add_argument("--receivers", default=",".join(RECEIVERS), help="comma-separated subset")
    ap.add_argument("--nadir-receivers", type=int, default=None,
                    help="Nadir's node.receivers (receiving processes); default: the node's default")
    args = ap.parse_args()
    global NADIR_RECEIVERS
    NADIR_RECEIVERS = args.nadir_receivers

    tmp = Path(tempfile.mkdtemp(prefix="nadir-bench-"))
    try:
        print(f"writing {args.n} synthetic CT slices (512x512x16 bit) ...", flush=True)
        files = [str(p) for p in h.write_series(tmp / "load", "CT", args.n, 512, 512, generate_uid())]
        rates: dict[str, str] = {}
        for name in args.receivers.split(","):
            with RECEIVERS[name](tmp / name) as (port, aet, _pid):
                elapsed, ok, back = send(port, aet, files)
                rates[name] = f"{args.n / elapsed:.1f}"
                print(
                    f"{name}: {ok}/{args.n} acknowledged in {elapsed:.1f} s = {rates[name]}/s"
                    + handed_back_note(back),
                    flush=True,
                )
                if ok != args.n:
                    rates[name] += "(incomplete)"
            if args.parallel:
                with RECEIVERS[name](tmp / f"{name}-par") as (port, aet, _pid):
                    try:
                        elapsed, ok, back = send_parallel(port, aet, files, args.parallel)
                    except RuntimeError as exc:
                        print(f"{name}: {args.parallel} associations at once: failed: {exc}")
                        node_log = tmp / f"{name}-par" / "nadir-serve.log"
                        if node_log.exists():
                            print("nadir log ends:\n" + node_log.read_text(errors="replace")[-3000:])
                        continue
                print(
                    f"{name}: {args.parallel} associations at once: {ok}/{args.n} in {elapsed:.1f} s "
                    f"= {args.n / elapsed:.1f}/s" + handed_back_note(back),
                    flush=True,
                )
        if args.big:
            memory_run(tmp, args.big)
        print(
            "receive instances/s "
            + " ".join(f"{k}={rates.get(k, 'skipped')}" for k in RECEIVERS)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
