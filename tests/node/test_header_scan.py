"""The fast header scan gives what pydicom gives, or steps aside.

Corpus: pydicom's own test files (real headers of many vendors and transfer syntaxes),
and SYNTHETIC files built here for the structures the scan must step over
(undefined-length sequences, nested, an undefined-length UN) or must refuse.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from daemon.store import header as H
from daemon.store.header import Header, InvalidInstance, MissingUid, UnreadableInstance, read_header
from daemon.store.header_scan import scan


def _by_pydicom(path: str | Path) -> Header | str:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(H._TAGS))
        return H._header({n: ds.get(k) for k, n in H._TAGS.items()}, str(ds.file_meta.TransferSyntaxUID))
    except Exception as exc:  # noqa: BLE001 - the reference's own verdict
        return type(exc).__name__


def _by_scan(path: str | Path) -> Header | str | None:
    found = scan(Path(path).read_bytes()[: H.SCAN_BYTES])
    if found is None:
        return None
    try:
        return H._header(found.values, found.transfer_syntax_uid)
    except MissingUid:
        return "MissingUid"


def test_scan_agrees_with_pydicom_on_its_test_files() -> None:
    files = [f for f in get_testdata_files("**/*") if os.path.isfile(f)]
    scanned = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            got = _by_scan(f)
            if got is None:
                continue
            scanned += 1
            want = _by_pydicom(f)
            if got == "MissingUid":  # read_header then asks pydicom
                continue
            assert got == want, os.path.basename(f)
    assert scanned > 0.7 * len(files), f"only {scanned} of {len(files)} scanned"


def _write(ds: Dataset, ts: str, path: Path) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "1.2.3")
    ds.save_as(path, enforce_file_format=True)
    return path


def _dataset(**extra: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.AccessionNumber = "A42 "
    ds.Modality = "CT"
    ds.PatientID = "P-001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows = 2
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def _nested() -> Sequence:
    inner = Dataset()
    inner.CodeValue = "T-A0100"
    inner.CodeMeaning = "Brain"
    item = Dataset()
    item.ReferencedSOPInstanceUID = generate_uid()
    item.AnatomicRegionSequence = Sequence([inner])
    item["AnatomicRegionSequence"].is_undefined_length = True
    seq = Sequence([item, Dataset()])
    for one in (item, seq[1], inner):
        one.is_undefined_length_sequence_item = True
    return seq


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_scan_steps_over_undefined_length_sequences(tmp_path: Path, ts: str) -> None:
    ds = _dataset(ReferencedImageSequence=_nested(), ProcedureCodeSequence=_nested())
    for keyword in ("ReferencedImageSequence", "ProcedureCodeSequence"):
        ds[keyword].is_undefined_length = True
    path = _write(ds, ts, tmp_path / "seq.dcm")
    raw = path.read_bytes()
    assert raw.count(b"\xfe\xff\xdd\xe0") == 4 and raw.count(b"\xfe\xff\x0d\xe0") == 6
    got = _by_scan(path)
    assert got is not None and got == _by_pydicom(path)
    assert isinstance(got, Header) and got.accession_number == "A42" and got.study_instance_uid == ds.StudyInstanceUID


def test_scan_steps_over_an_undefined_length_un(tmp_path: Path) -> None:
    """An explicit-VR file with a private sequence sent as UN of undefined length
    (its content implicit VR): the scan must walk it in implicit VR."""
    ds = _dataset()
    path = _write(ds, ExplicitVRLittleEndian, tmp_path / "un.dcm")
    raw = path.read_bytes()
    # insert (0009,1010) UN, undefined length, one item with one implicit element, before (0010,0020)
    item = (b"\x09\x00\x12\x10" + (4).to_bytes(4, "little") + b"ABCD")
    un = (b"\x09\x00\x10\x10UN\x00\x00\xff\xff\xff\xff"
          + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + item + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
          + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    at = raw.index(b"\x10\x00\x20\x00LO")
    path.write_bytes(raw[:at] + un + raw[at:])
    got = _by_scan(path)
    assert isinstance(got, Header) and got == _by_pydicom(path)


@pytest.mark.parametrize("ts", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_scan_steps_aside_for_other_encodings(tmp_path: Path, ts: str) -> None:
    path = _write(_dataset(), ts, tmp_path / "other.dcm")
    assert _by_scan(path) is None
    assert read_header(path) == _by_pydicom(path)


def test_scan_steps_aside_for_a_non_ascii_value(tmp_path: Path) -> None:
    ds = _dataset(SpecificCharacterSet="ISO_IR 100")
    ds.PatientID = "Müller-1"
    path = _write(ds, ExplicitVRLittleEndian, tmp_path / "latin1.dcm")
    assert _by_scan(path) is None
    assert read_header(path).patient_id == "Müller-1"


def test_scan_steps_aside_for_a_header_longer_than_it_reads(tmp_path: Path) -> None:
    ds = _dataset()
    ds.add_new(0x00091010, "OB", b"\x00" * H.SCAN_BYTES)  # a large private element before the UIDs
    path = _write(ds, ExplicitVRLittleEndian, tmp_path / "long.dcm")
    assert _by_scan(path) is None
    assert read_header(path).sop_instance_uid == ds.SOPInstanceUID


def test_missing_uid_and_garbage_keep_their_verdicts(tmp_path: Path) -> None:
    ds = _dataset()
    del ds.SeriesInstanceUID
    path = _write(ds, ExplicitVRLittleEndian, tmp_path / "nouid.dcm")
    assert _by_scan(path) == "MissingUid"
    with pytest.raises(MissingUid):
        read_header(path)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(path.read_bytes()[:200])
    assert _by_scan(truncated) is None
    with pytest.raises(InvalidInstance):
        read_header(truncated)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a DICOM file")
    assert _by_scan(junk) is None
    with pytest.raises(UnreadableInstance):
        read_header(junk)


def test_a_value_with_control_characters_is_refused_nul_padding_is_not(tmp_path: Path) -> None:
    """A length mutation made Modality swallow the next elements' bytes, NULs included:
    SQLite stored it, PostgreSQL refused the row (0xA701, retried for ever by the sender).
    It is not a CS value: refused as the dataset cannot be understood."""
    ds = _dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns of the invalid value we want written
        ds.Modality = "CT\x00\x08\x00P"
    path = _write(ds, ExplicitVRLittleEndian, tmp_path / "swallowed.dcm")
    with pytest.raises(InvalidInstance, match="Modality holds control characters"):
        read_header(path)
    padded = _dataset()
    padded.PatientID = "P1\x00"  # NUL padding, as some old modalities write it
    assert read_header(_write(padded, ExplicitVRLittleEndian, tmp_path / "padded.dcm")).patient_id == "P1"
