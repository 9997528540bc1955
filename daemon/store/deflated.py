"""The header of a deflated dataset (PS3.5 A.5), read without inflating it in memory.

pydicom inflates a deflated dataset whole, in memory, before reading a byte of it (a
1 MiB upload became 2 GiB). Here the dataset is inflated as a stream: every inflated
byte is counted and dropped except the first `HEAD_BYTES`, from which pydicom reads
the header up to (0020,000E), the last identifying attribute. Past `max_inflated`
bytes the read stops with `InflatedTooLarge` (the receiver answers 0xA700). A deflate
stream that ends early is unreadable.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from pydicom.filereader import read_dataset, read_file_meta_info
from pydicom.tag import BaseTag, Tag

DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
LAST_IDENTIFYING_TAG = 0x0020000E
HEAD_BYTES = 1024 * 1024  # of an inflated dataset, kept to read its header from
CHUNK = 1024 * 1024


class InflatedTooLarge(Exception):
    """A deflated dataset inflates to more than the node accepts."""


def _past_identifying(tag: BaseTag, vr: str | None, length: int) -> bool:
    return int(tag) > LAST_IDENTIFYING_TAG


def is_deflated(path: Path) -> bool:
    return str(read_file_meta_info(path).TransferSyntaxUID) == DEFLATED_EXPLICIT_VR_LE


def read_deflated(path: Path, keywords: Iterable[str], max_inflated: int) -> dict[str, Any]:
    """The values of `keywords` (None when absent) in the deflated dataset of `path`.
    Raises InflatedTooLarge, and anything else when it cannot be parsed."""
    wanted = list(keywords)
    with open(path, "rb") as f:
        f.seek(_dataset_offset(f))
        head = inflated_head(f, max_inflated)
    tags: list[BaseTag | int] = [Tag(kw) for kw in wanted]
    ds = read_dataset(io.BytesIO(head), False, True, stop_when=_past_identifying, specific_tags=tags)
    return {kw: ds.get(kw) for kw in wanted}


def _dataset_offset(f: BinaryIO) -> int:
    """Where the dataset starts: after the preamble, 'DICM' and the file meta group."""
    f.seek(132)
    head = f.read(12)
    if head[:4] != b"\x02\x00\x00\x00" or head[4:6] != b"UL":
        raise ValueError("no File Meta Information Group Length")
    return 144 + int.from_bytes(head[8:12], "little")


def inflated_head(f: BinaryIO, max_inflated: int) -> bytes:
    """Inflate the rest of `f` as a raw deflate stream, keeping the first `HEAD_BYTES`."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    head = bytearray()
    total = 0
    while not inflater.eof:
        data = inflater.unconsumed_tail or f.read(CHUNK)
        if not data:
            raise ValueError("the deflated dataset ends before its deflate stream does")
        out = inflater.decompress(data, CHUNK)
        total += len(out)
        if total > max_inflated:
            raise InflatedTooLarge(f"the deflated dataset inflates to more than {max_inflated} bytes")
        if len(head) < HEAD_BYTES:
            head += out[: HEAD_BYTES - len(head)]
    return bytes(head)
