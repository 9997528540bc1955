"""Fuzzing the receive path over the network, against a real `nadir serve` (issue 23).

N malformed datasets (tests/node/mutations.py: SYNTHETIC small CT-like datasets in
explicit VR, implicit VR and RLE Lossless, each damaged once after its file meta:
bytes flipped, cut, removed, inserted, an element repeated, a length changed, a
NUL in a UID, a sequence nested in itself) interleaved with valid ones (one after every
`--every` malformed), each with its own SOP Instance UID under a root unique to the
run, are sent as C-STOREs (the bytes as they are, pynetdicom's chunked send) on
`--parallel` associations at once. Then:

- crashes: the node process is still running and answers a C-ECHO (0 or 1);
- statuses: how many malformed datasets got each status (`none`: no response);
- valid_recorded_identical: valid datasets acknowledged 0x0000, recorded in the
  database, whose spool file holds byte for byte the dataset sent (after the file meta),
  out of the valid ones sent; likewise (summary only) malformed ones acknowledged;
- files_outside_spool: files under the data folder other than the spool's (spool/tmp
  left over, or a spool file without its row, counted too) and the database's, plus
  files the node left in its private TMPDIR, plus files new since the start under
  /tmp and /dev/shm (outside the bench's folder) holding the run's UID root: other
  processes share /tmp, so only what carries this run's bytes is counted.

    .venv/bin/python bench/fuzz_receive.py [-n 10000] [--every 10] [--parallel 4]
        [--seed 20260323] [--postgresql | --database-url postgresql+psycopg://...]

The last line is
    fuzz malformed=N valid=M crashes=0 valid_recorded_identical=M/M files_outside_spool=0 statuses=0xC001:...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "node"))

import mutations as mu  # noqa: E402
import node_harness as h  # noqa: E402
from hostile_harness import echo  # noqa: E402
from pydicom.uid import CTImageStorage  # noqa: E402
from pynetdicom import AE, _config  # noqa: E402
from pynetdicom.association import Association  # noqa: E402

from daemon.node.requestor import keep_responses  # noqa: E402

CALLING = "FUZZSCU"
DB_FILES = {"nadir.db", "nadir.db-wal", "nadir.db-shm", "nadir.db-journal"}
SPOOL_MARKERS = {".running"}  # the spool's own bookkeeping (daemon.store.reconcile)
# files the node's libraries write in TMPDIR whatever it receives (listed in the summary)
KNOWN_TMP = {".ses": "onnxruntime's session id, written when it is imported"}
NO_RESPONSE = "none"


@dataclass(frozen=True)
class Item:
    index: int
    valid: bool
    data: bytes  # a DICOM file: its file meta intact, its dataset possibly damaged
    uid: str  # the SOP Instance UID of the request (from the file meta)


@dataclass
class Result:
    malformed: int
    valid: int
    crashes: int
    statuses: Counter[str]
    valid_identical: int
    malformed_acked: int
    malformed_acked_identical: int
    outside: list[str]
    tracebacks: int
    seconds: float
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files in the node's TMPDIR not counted
    stop_rc: int | None = None  # the node's exit status after SIGTERM at the end

    def line(self) -> str:
        statuses = ",".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"fuzz malformed={self.malformed} valid={self.valid} crashes={self.crashes} "
            f"valid_recorded_identical={self.valid_identical}/{self.valid} "
            f"files_outside_spool={len(self.outside)} statuses={statuses}"
        )


def make_items(malformed: int, every: int, seed: int, root: str) -> list[Item]:
    """`malformed` mutants and one valid dataset after every `every` of them, in order."""
    rng = random.Random(seed)
    items: list[Item] = []
    n = 1  # UID components have no leading zero (PS3.5 9.1)
    total = malformed + (malformed // every if every > 0 else 0)
    while len(items) < total:
        valid = every > 0 and len(items) % (every + 1) == every
        ts = mu.SYNTAXES[n % 3] if valid else rng.choice(mu.SYNTAXES)
        ds = mu.synthetic_dataset(n, root)
        ds.StudyInstanceUID = f"{root}9{n // 500}2"  # 500 instances a study, one series each
        ds.SeriesInstanceUID = f"{root}9{n // 500}3"
        data = mu.encode(mu.encapsulated(ds) if ts == mu.RLELossless else ds, ts)
        if not valid:
            data = mu.mutate(rng, data, start=mu.dataset_offset(data))
        items.append(Item(n, valid, data, str(ds.SOPInstanceUID)))
        n += 1
    return items


# -- the senders -------------------------------------------------------------------------


def _associate(port: int) -> Association:
    ae = AE(ae_title=CALLING)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 30
    for ts in mu.SYNTAXES:  # one context per syntax: each file goes out as it is encoded
        ae.add_requested_context(CTImageStorage, ts)
    for _ in range(10):
        assoc = ae.associate("127.0.0.1", port, ae_title="NADIR")
        if assoc.is_established:
            assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
            keep_responses(assoc)  # a pynetdicom requestor race: see daemon.node.requestor
            return assoc
        time.sleep(0.5)
    raise RuntimeError(f"no association with the node on port {port}")


def _send_all(port: int, items: list[Item], scratch: Path, out: dict[int, str]) -> None:
    """Send `items` in order on one association (a new one if the node ends it)."""
    assoc = _associate(port)
    try:
        for item in items:
            scratch.write_bytes(item.data)
            try:
                answer = assoc.send_c_store(scratch)
                status = f"0x{int(answer.Status):04X}" if "Status" in answer else NO_RESPONSE
            except Exception as exc:  # noqa: BLE001 - the sender's own failure, counted
                status = f"unsent:{type(exc).__name__}"
            out[item.index] = status
            if not assoc.is_established:
                assoc = _associate(port)
    finally:
        if assoc.is_established:
            assoc.release()


def send(port: int, items: list[Item], parallel: int, scratch: Path) -> dict[int, str]:
    """Every item's status, `parallel` associations at once (items dealt round robin)."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    out: dict[int, str] = {}
    threads = [
        threading.Thread(target=_send_all, args=(port, items[k::parallel], scratch / f"send{k}.dcm", out))
        for k in range(parallel)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


# -- the checks ----------------------------------------------------------------------------


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root, onerror=lambda _e: None):
        for name in names:
            yield Path(dirpath) / name


def outside_data(node: h.Node, recorded: dict[str, str]) -> list[str]:
    """Files under the data folder that are neither a recorded spool file (or the spool's
    marker) nor the database's."""
    spool = node.data_dir / "spool"
    kept = {spool / p for p in recorded.values()}
    odd = []
    for path in _files(node.data_dir):
        rel = path.relative_to(node.data_dir)
        if rel.parts == (rel.name,) and rel.name in DB_FILES:
            continue
        if path in kept or (path.parent == spool and path.name in SPOOL_MARKERS):
            continue
        odd.append(str(rel))
    return odd


def new_files_with(token: bytes, since: float, roots: Iterable[Path], skip: Iterable[Path]) -> list[str]:
    """Files under `roots` (not under a folder in `skip`) modified since `since` that hold `token`."""
    found = []
    skipped = set(skip)
    for root in roots:
        for path in _files(root):
            try:
                if skipped.intersection(path.parents) or path.is_symlink():
                    continue
                st = path.stat()
                if st.st_mtime < since or st.st_size > 64 << 20 or not path.is_file():
                    continue
                if token in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


def database_folder(url: str | None) -> Path | None:
    """Where a PostgreSQL server keeps its files (its private cluster's whole folder,
    log included); None for SQLite (in the data folder)."""
    if url is None:
        return None
    import psycopg
    from sqlalchemy.engine import make_url

    try:
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.Error:  # not allowed to know (not a superuser): nothing skipped
        return None
    if row is None:
        return None
    folder = Path(str(row[0]))
    return folder.parent if folder.parent.name.startswith("nadir-pg-") else folder


def _identical(node: h.Node, relative: str | None, sent: bytes) -> bool:
    if relative is None:
        return False
    stored = (node.data_dir / "spool" / relative).read_bytes()
    return stored[mu.dataset_offset(stored) :] == sent[mu.dataset_offset(sent) :]


class FuzzNode(h.Node):
    """The node under test with a private TMPDIR, checked empty at the end."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["TMPDIR"] = str(self.data_dir.parent / "node-tmp")
        return env


def run(workdir: Path, malformed: int, every: int = 10, parallel: int = 4, seed: int = 20260323,
        database_url: str | None = None) -> Result:
    started = time.time()
    token = f"{random.Random().randrange(10**8, 10**9)}"
    root = f"{mu.UID_ROOT}{token}."
    items = make_items(malformed, every, seed, root)
    node_tmp = workdir / "node-tmp"
    node_tmp.mkdir(parents=True, exist_ok=True)
    node = FuzzNode(data_dir=workdir / "data", port=h.free_port(), database_url=database_url,
                    settle_seconds=3600.0, allowed=CALLING + ",ECHOSCU")
    node.start()
    assert node.proc is not None
    try:
        t0 = time.monotonic()
        statuses = send(node.port, items, parallel, workdir)
        seconds = time.monotonic() - t0
        alive = node.proc.poll() is None and echo(node.port) is not None
        recorded = h.recorded_paths(node)
        by_index = {i.index: i for i in items}
        valid = [i for i in items if i.valid]
        valid_identical = sum(
            statuses.get(i.index) == "0x0000" and _identical(node, recorded.get(i.uid), i.data) for i in valid
        )
        acked = [i for i in items if not i.valid and statuses.get(i.index) == "0x0000"]
        acked_identical = sum(_identical(node, recorded.get(i.uid), i.data) for i in acked)
        outside = outside_data(node, recorded)
        outside += [str(p) for p in _files(node_tmp) if p.name not in KNOWN_TMP]
        ignored = [f"{p.name} ({KNOWN_TMP[p.name]})" for p in _files(node_tmp) if p.name in KNOWN_TMP]
        skip = [workdir] + [p for p in [database_folder(database_url)] if p is not None]
        outside += new_files_with(root.encode(), started, (Path("/tmp"), Path("/dev/shm")), skip)
        tracebacks = node.log_text().count("Traceback")
    finally:
        stop_rc = node.stop() if node.proc is not None else None
    histogram = Counter(s for k, s in statuses.items() if not by_index[k].valid)
    histogram[NO_RESPONSE] += sum(1 for i in items if i.index not in statuses and not i.valid)
    problems = [f"valid {i.uid}: {statuses.get(i.index)}" for i in valid if statuses.get(i.index) != "0x0000"]
    return Result(
        malformed=malformed, valid=len(valid), crashes=0 if alive else 1, statuses=+histogram,
        valid_identical=valid_identical, malformed_acked=len(acked), malformed_acked_identical=acked_identical,
        outside=outside, tracebacks=tracebacks, seconds=seconds, problems=problems,
        ignored=ignored, stop_rc=stop_rc,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--malformed", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=10, help="one valid dataset after every EVERY malformed")
    parser.add_argument("--parallel", type=int, default=4, help="associations at once")
    parser.add_argument("--seed", type=int, default=20260323)
    parser.add_argument("--database-url", default=None, help="default: SQLite in the data folder")
    parser.add_argument("--postgresql", action="store_true",
                        help="a database of its own on a private PostgreSQL cluster (daemon.demo.private_servers)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nadir-fuzz-", dir="/tmp"))
    try:
        with contextlib.ExitStack() as stack:
            url = args.database_url
            if args.postgresql:
                from daemon.demo import private_servers

                stack.callback(private_servers.stop_postgres)
                url = stack.enter_context(private_servers.private_postgres_database())
            r = run(workdir, args.malformed, args.every, args.parallel, args.seed, url)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    sent = r.malformed + r.valid
    print(f"database: {'PostgreSQL' if args.postgresql or args.database_url else 'SQLite'}")
    print(f"sent {sent} datasets on {args.parallel} associations in {r.seconds:.1f} s ({sent / r.seconds:.0f}/s)"
          + (f"; work folder {workdir}" if args.keep else ""))
    print(f"malformed acknowledged 0x0000: {r.malformed_acked}, recorded byte-identical: "
          f"{r.malformed_acked_identical}/{r.malformed_acked}")
    print(f"tracebacks in the node's log: {r.tracebacks}; its exit status after SIGTERM: {r.stop_rc}")
    print(f"in the node's TMPDIR, not counted: {', '.join(r.ignored) or 'nothing'}")
    for line in (r.problems + r.outside)[:20]:
        print("  ", line)
    print(r.line())
    ok = (r.crashes == 0 and r.valid_identical == r.valid and not r.outside
          and r.malformed_acked_identical == r.malformed_acked)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
