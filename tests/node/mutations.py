"""Malformed DICOM files for the mutation tests (issue 23): SYNTHETIC small CT-like
datasets and a mutator that damages their encoding the way a broken or hostile sender
would. Used in process by test_header_mutations.py and over the network by
bench/fuzz_receive.py (and test_fuzz_receive.py).

The datasets: implicit and explicit VR little endian, an undefined-length sequence,
native pixel data; one with encapsulated pixel data (not real RLE: only the structure
matters). The mutations: bytes flipped, cut, removed, inserted, an element repeated, a
length changed, a NUL put before a UID, a sequence nested in itself.
"""

from __future__ import annotations

import random
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

UID_ROOT = "1.2.826.0.1.3680043.8.498."
SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless)
PREAMBLE_END = 132  # 128-byte preamble and b"DICM": nothing before is mutated


def synthetic_dataset(n: int, root: str = UID_ROOT) -> Dataset:
    """A small CT-like dataset whose UIDs are `root` followed by `n` and a digit."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = f"{root}{n}1"
    ds.StudyDate = "20260301"
    ds.AccessionNumber = "ACC12345"
    ds.Modality = "CT"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = f"{root}{n}9"
    ds.ReferencedImageSequence = Sequence([item])
    ds["ReferencedImageSequence"].is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    ds.PatientName = "SYNTHETIC^MUTANT"
    ds.PatientID = f"MUT-{n:03d}"
    ds.StudyInstanceUID = f"{root}{n}2"
    ds.SeriesInstanceUID = f"{root}{n}3"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 6
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(96))
    return ds


def encapsulated(ds: Dataset) -> Dataset:
    """`ds` with encapsulated pixel data (to be written as RLE Lossless)."""
    ds.PixelData = encapsulate([b"\x01\x02" * 20])
    ds["PixelData"].VR = "OB"
    return ds


def encode(ds: Dataset, ts: str) -> bytes:
    """`ds` as a DICOM file (preamble, file meta, dataset) in transfer syntax `ts`."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def synthetic_file(n: int, ts: str, root: str = UID_ROOT) -> bytes:
    """Dataset `n` encoded in `ts` (one of SYNTAXES; RLE Lossless: encapsulated)."""
    ds = synthetic_dataset(n, root)
    return encode(encapsulated(ds) if ts == RLELossless else ds, ts)


def bases() -> list[bytes]:
    """The three files the in-process mutation test starts from."""
    return [synthetic_file(n, ts) for n, ts in zip((1, 2, 3), SYNTAXES, strict=True)]


def dataset_offset(data: bytes) -> int:
    """Where the dataset of a DICOM file starts (after its file meta group length says)."""
    group_length = int.from_bytes(data[140:144], "little")
    return 144 + group_length


def mutate(rng: random.Random, data: bytes, start: int = PREAMBLE_END) -> bytes:  # noqa: C901 - one branch per mutation
    """`data` damaged once, at or after byte `start` (the default: the file meta too)."""
    b = bytearray(data)
    kind = rng.randrange(8)
    at = rng.randrange(start, len(b))
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(start, len(b))] = rng.randrange(256)
    elif kind == 1:  # cut
        del b[at:]
    elif kind == 2:  # remove a range
        del b[at : at + rng.randint(1, 16)]
    elif kind == 3:  # insert bytes
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == 4:  # repeat an element: a wanted tag's whole element copied after itself
        tag = rng.choice([b"\x08\x00\x18\x00", b"\x10\x00\x20\x00", b"\x20\x00\x0d\x00", b"\x08\x00\x50\x00"])
        i = bytes(b).find(tag, start)
        if i > 0:
            j = i + 8 + 4  # a short explicit or implicit header, then a guessed end at the next tag
            nxt = min((k for k in (bytes(b).find(t, j) for t in (b"\x08\x00", b"\x10\x00", b"\x20\x00")) if k > 0),
                      default=len(b))
            b[nxt:nxt] = b[i:nxt]
    elif kind == 5:  # change a length field (a 16- or 32-bit little-endian number somewhere)
        i = rng.randrange(start, len(b) - 4)
        b[i : i + 2] = rng.randrange(65536).to_bytes(2, "little")
    elif kind == 6:  # a NUL, a space or a control character before or inside a UID
        i = bytes(b).find(UID_ROOT.encode(), start + rng.randrange(len(b) // 2))
        if i > 0:
            b[i + rng.randrange(4)] = rng.choice([0, 0x20, 0x0A, 0x2F])
    else:  # nest: an undefined-length sequence wrapped in itself (depth up to ~60)
        first = bytes(b).find(b"\x08\x00\x40\x11")
        if first > 0:
            end = bytes(b).find(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", first) + 8
            seq = bytes(b[first:end])
            header, tail = seq[:12] if seq[4:6] == b"SQ" else seq[:8], b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
            item, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
            inner = seq
            for _ in range(rng.randint(2, 60)):
                inner = header + item + inner + item_end + tail
            b[first:end] = inner
    return bytes(b)
