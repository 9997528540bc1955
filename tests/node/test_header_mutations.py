"""Mutation test: what the receive path accepts, pydicom reads back the same (issue 23).

SYNTHETIC files (small CT-like datasets in implicit and explicit VR little endian,
with an undefined-length sequence, native pixel data, and one with encapsulated
pixel data) are mutated 10,000 times with a fixed seed: bytes flipped, cut, removed,
inserted, an element repeated, a length changed, a NUL put before a UID. For every
mutant, `read_header` (the scan, or its pydicom fallback) either refuses it with
`InvalidInstance`, or accepts it, and then pydicom reads the whole file, its native
pixel data is as long as its attributes say, and every identifying attribute pydicom
gives equals the one accepted. Nothing else may come out of `read_header`.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from mutations import bases, mutate  # the mutator, shared with bench/fuzz_receive.py
from pydicom import dcmread

from daemon.store import header as H
from daemon.store.header import Header, InvalidInstance, read_header

CASES = 10_000
SEED = 20260323


_bases = bases
_mutate = mutate


def _reference(path: Path) -> Header | None:
    """pydicom's verdict: the whole file read, native pixel data of its length, and the
    identifying attributes (None: pydicom cannot read it back)."""
    try:
        ds = dcmread(path)
        pixels = ds.get("PixelData")
        ts = ds.file_meta.TransferSyntaxUID
        if ts not in H.KNOWN_SYNTAXES:
            return None
        if pixels is not None and not ts.is_compressed:
            frames = int(ds.get("NumberOfFrames") or 1)
            expected = ds.Rows * ds.Columns * frames * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
            if len(pixels) not in (expected, expected + expected % 2):
                return None
        values = {name: ds.get(keyword) for keyword, name in H._TAGS.items()}
        return H._header(values, str(ds.file_meta.TransferSyntaxUID))
    except Exception:  # noqa: BLE001 - the reference's own verdict
        return None


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory where there is one (10,000 rewrites of a file on disk cost
    ~2 ms each in journal updates alone); else the test's own folder."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="nadir-mutants-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_what_is_accepted_is_what_pydicom_reads(scratch: Path) -> None:
    rng = random.Random(SEED)
    bases = _bases()
    path = scratch / "mutant.dcm"
    verdicts: Counter[str] = Counter()
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(CASES):
            data = _mutate(rng, rng.choice(bases))
            path.write_bytes(data)
            try:
                got: Header | str = read_header(path)
            except InvalidInstance as exc:
                got = type(exc).__name__
            if isinstance(got, str):
                verdicts[got] += 1
                continue
            verdicts["accepted"] += 1
            want = _reference(path)
            assert want is not None, f"case {n}: accepted, but pydicom cannot read it back"
            assert got == want, f"case {n}: the scan and pydicom disagree"
    elapsed = time.monotonic() - started
    print(f"{CASES} mutants in {elapsed:.1f} s: {dict(verdicts)}")
    assert verdicts["accepted"] > CASES // 10 and sum(verdicts.values()) == CASES


@pytest.mark.parametrize("depth", [33, 2000])
def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path: Path, depth: int) -> None:
    data = _bases()[0]
    start = data.find(b"\x08\x00\x40\x11")
    end = data.find(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", start) + 8
    inner = data[start:end]
    for _ in range(depth):
        inner = (inner[:12] + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + inner + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
                 + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    path = tmp_path / "deep.dcm"
    path.write_bytes(data[:start] + inner + data[end:])
    with pytest.raises(H.UnreadableInstance, match="nested deeper"):
        read_header(path)


def test_a_file_cut_inside_its_pixel_data_is_refused(tmp_path: Path) -> None:
    for data in _bases()[:2]:
        path = tmp_path / "cut.dcm"
        path.write_bytes(data[:-10])
        with pytest.raises(H.UnreadableInstance):
            read_header(path)
        path.write_bytes(data)
        assert read_header(path).patient_id is not None
