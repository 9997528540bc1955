"""The identifying attributes of a DICOM Part 10 file, scanned from its bytes.

The receive path reads, for every instance, seven identifying attributes (all at the
top level, before (0020,000E)) and checks that the file is whole: every top-level
element ends within the file, and native pixel data is as long as Rows x Columns x
frames x samples x bits allocated says. pydicom builds an element object for every
element (about 0.8 ms for a CT header of 250 elements); this scan only steps over
the elements' headers, on a memory map of the file (the pixel data is never read).

It covers the little-endian transfer syntaxes (implicit, explicit and every
encapsulated one). For anything it does not expect it steps aside (None) and the
caller reads the file with pydicom, which has the last word: deflated or big-endian
datasets; a value that is not one plain ASCII value (its meaning would depend on the
Specific Character Set), that holds several values, or that has leading or embedded
spaces or NULs; elements out of ascending order or repeated; a file that ends inside
an element; pixel data of the wrong length. Nesting deeper than `MAX_DEPTH` is refused
outright (`TooDeep`): no DICOM object nests so deep, and pydicom's recursive reader
would spend seconds and thousands of stack frames on it.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

import pydicom.uid

PREAMBLE = 128
MAGIC = b"DICM"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
# explicit VRs whose length is 4 bytes after 2 reserved ones (PS3.5 7.1.2)
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
TRANSFER_SYNTAX = 0x00020010
PIXEL_DATA = 0x7FE00010
MAX_DEPTH = 32  # nested sequences; PS3.3's deepest templates stay well below
WANTED = {
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x00080050: "accession_number",
    0x00080060: "modality",
    0x00100020: "patient_id",
    0x0020000D: "study_instance_uid",
    0x0020000E: "series_instance_uid",
}
# the attributes that give native pixel data its length (US, except NumberOfFrames: IS)
GEOMETRY = {
    0x00280002: "samples_per_pixel",
    0x00280008: "number_of_frames",
    0x00280010: "rows",
    0x00280011: "columns",
    0x00280100: "bits_allocated",
}
LITTLE_ENDIAN = frozenset(
    str(ts) for ts in pydicom.uid.AllTransferSyntaxes if ts.is_little_endian and not ts.is_deflated
)
UIDS = frozenset({0x00080016, 0x00080018, 0x0020000D, 0x0020000E})
KNOWN_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
# the VRs under which the scan reads an attribute as pydicom would (else pydicom reads it)
EXPECTED_VR = {
    **{tag: (b"UI",) for tag in UIDS},
    0x00080050: (b"SH",), 0x00080060: (b"CS",), 0x00100020: (b"LO",),
    **{tag: (b"US",) for tag in (0x00280002, 0x00280010, 0x00280011, 0x00280100)},
    0x00280008: (b"IS",), PIXEL_DATA: (b"OB", b"OW"),
}
Buf = bytes | mmap.mmap  # both slice to bytes (a memoryview on a map would pin it open)
_U16X2 = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class NotScanned(Exception):
    """This scan does not apply; read the file with pydicom."""


class TooDeep(Exception):
    """Sequences nested deeper than MAX_DEPTH: refused without reading further."""


@dataclass(frozen=True)
class Scanned:
    """The raw values found (stripped ASCII; None when absent) and the transfer syntax."""

    transfer_syntax_uid: str
    values: dict[str, str | None]


def native_length(rows: int, columns: int, frames: int, samples: int, bits_allocated: int) -> int:
    """The byte length of native (uncompressed) pixel data, before its even padding
    (PS3.5 8.1.1: bits packed for BitsAllocated 1, else whole bytes per sample)."""
    return (rows * columns * frames * samples * bits_allocated + 7) // 8


def pixel_length_fits(length: int, expected: int) -> bool:
    """A value length is even (PS3.5 7.1.1): the exact length or one byte of padding."""
    return length == expected or (expected % 2 == 1 and length == expected + 1)


def scan(data: bytes | mmap.mmap) -> Scanned | None:
    """The wanted attributes of the whole Part 10 file `data`, or None (ask pydicom).

    Raises TooDeep for nesting beyond MAX_DEPTH."""
    try:
        return _scan(data)
    except (NotScanned, struct.error, ValueError):
        return None


def _scan(buf: Buf) -> Scanned:
    if bytes(buf[PREAMBLE : PREAMBLE + 4]) != MAGIC:
        raise NotScanned("no DICM prefix")
    pos, ts = _file_meta(buf, PREAMBLE + 4)
    if ts not in LITTLE_ENDIAN:
        raise NotScanned("not a little-endian transfer syntax pydicom knows")
    explicit = ts != IMPLICIT_VR_LE
    values: dict[str, str | None] = dict.fromkeys(WANTED.values())
    geometry: dict[str, int] = {}
    last = 0
    end_of_file = len(buf)
    while pos < end_of_file:
        tag, length, pos, inner_explicit = _element_header(buf, pos, explicit)
        if tag <= last or tag >> 16 == 0xFFFE:
            raise NotScanned("elements out of order, repeated, or an item tag at the top level")
        last = tag
        if length == UNDEFINED:
            pos = _skip_sequence(buf, pos, inner_explicit, 1)
            if tag == PIXEL_DATA and not explicit:
                raise NotScanned("encapsulated pixel data in implicit VR")
            continue
        end = pos + length
        if end > end_of_file:
            raise NotScanned("the file ends inside an element")
        raw = bytes(buf[pos:end]) if tag in WANTED or tag in GEOMETRY else b""
        if tag in WANTED:
            values[WANTED[tag]] = _text(raw, uid=tag in UIDS)
        elif tag in GEOMETRY:
            geometry[GEOMETRY[tag]] = _number(raw, tag)
        elif tag == PIXEL_DATA:
            _check_native(length, geometry)
        pos = end
    return Scanned(ts, values)


def _check_native(length: int, geometry: dict[str, int]) -> None:
    try:
        expected = native_length(geometry["rows"], geometry["columns"], geometry.get("number_of_frames", 1),
                                 geometry["samples_per_pixel"], geometry["bits_allocated"])
    except KeyError as exc:
        raise NotScanned(f"native pixel data without {exc}") from exc
    if not pixel_length_fits(length, expected):
        raise NotScanned("native pixel data of the wrong length")


def _number(raw: bytes, tag: int) -> int:
    if tag == 0x00280008:  # NumberOfFrames, IS
        text = _text(raw)
        if text is None or not text.isdigit():
            raise NotScanned("NumberOfFrames not one plain integer")
        return int(text)
    if len(raw) != 2:
        raise NotScanned("a US value that is not one value")
    return int(_U16.unpack(raw)[0])


def _file_meta(buf: Buf, pos: int) -> tuple[int, str]:
    """Step over group 0002 (always explicit VR little endian); its end and the TS."""
    ts = None
    while pos + 8 <= len(buf):
        group, _ = _U16X2.unpack_from(buf, pos)
        if group != 0x0002:
            break
        tag, length, start, _ = _element_header(buf, pos, explicit=True)
        if length == UNDEFINED or start + length > len(buf):
            raise NotScanned("file meta element of undefined length")
        if tag == TRANSFER_SYNTAX:
            ts = _text(bytes(buf[start : start + length]), uid=True)
        pos = start + length
    if not ts:
        raise NotScanned("no transfer syntax in the file meta")
    return pos, ts


def _element_header(buf: Buf, pos: int, explicit: bool) -> tuple[int, int, int, bool]:
    """(tag, value length, value start, whether a sequence value is explicit VR)."""
    group, elem = _U16X2.unpack_from(buf, pos)
    tag = group << 16 | elem
    if group == 0xFFFE or not explicit:
        return tag, _U32.unpack_from(buf, pos + 4)[0], pos + 8, explicit
    vr = bytes(buf[pos + 4 : pos + 6])
    if vr not in KNOWN_VRS or (tag in EXPECTED_VR and vr not in EXPECTED_VR[tag]):
        raise NotScanned("an unknown VR, or not the VR pydicom's dictionary gives")
    if vr in LONG_VRS:
        # an undefined-length UN holds implicit VR little endian (PS3.5 6.2.2)
        return tag, _U32.unpack_from(buf, pos + 8)[0], pos + 12, vr != b"UN"
    return tag, _U16.unpack_from(buf, pos + 6)[0], pos + 8, explicit


def _skip_sequence(buf: Buf, pos: int, explicit: bool, depth: int) -> int:
    """Past the items of an undefined-length sequence starting at `pos`."""
    if depth > MAX_DEPTH:
        raise TooDeep(f"sequences nested deeper than {MAX_DEPTH} levels")
    while True:
        tag, length, pos, _ = _element_header(buf, pos, explicit)
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise NotScanned("not an item in a sequence")
        pos = _skip_item(buf, pos, explicit, depth) if length == UNDEFINED else pos + length
        if pos > len(buf):
            raise NotScanned("the file ends inside a sequence")


def _skip_item(buf: Buf, pos: int, explicit: bool, depth: int) -> int:
    """Past the elements of an undefined-length item starting at `pos`."""
    while True:
        tag, length, pos, inner = _element_header(buf, pos, explicit)
        if tag == ITEM_END:
            return pos
        pos = _skip_sequence(buf, pos, inner, depth + 1) if length == UNDEFINED else pos + length
        if pos > len(buf):
            raise NotScanned("the file ends inside an item")


def _text(raw: bytes, uid: bool = False) -> str | None:
    """A value as pydicom would give it, where that cannot depend on the character set
    or on pydicom's handling of padding: printable ASCII, trailing spaces only (and,
    for a UID, its NUL padding)."""
    text = raw.rstrip(b" ")
    if uid and text.endswith(b"\x00"):
        text = text[:-1].rstrip(b" ")
    if any(b < 0x21 or b > 0x7E for b in text.replace(b" ", b"x")) or b"\\" in text or text[:1] == b" ":
        raise NotScanned("a value that is not one plain ASCII value")
    return text.decode("ascii") or None
