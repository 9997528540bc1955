"""The identifying attributes of a received DICOM file, and whether it is whole.

A file is refused (`InvalidInstance`) when it cannot be read back: it cannot be
parsed, it ends inside an element, its native pixel data is not Rows x Columns x
frames x samples x bits allocated long, its sequences nest deeper than the scan's
limit, or a Study, Series, SOP Instance or SOP Class UID is missing or not a UID as
PS3.5 9.1 defines it (digits and dots, no empty component, no leading zero in a
component of several digits, at most 64 characters). The pixel data is never read.
"""

from __future__ import annotations

import logging
import mmap
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom.uid
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from daemon.store.deflated import (
    DEFLATED_EXPLICIT_VR_LE,
    InflatedTooLarge,
    is_deflated,
    read_deflated,
)
from daemon.store.header_scan import PIXEL_DATA, TooDeep, native_length, pixel_length_fits, scan
from daemon.store.models import VR_MAX

log = logging.getLogger(__name__)

# keyword -> Header field
_TAGS = {
    "SOPClassUID": "sop_class_uid",
    "SOPInstanceUID": "sop_instance_uid",
    "StudyInstanceUID": "study_instance_uid",
    "SeriesInstanceUID": "series_instance_uid",
    "Modality": "modality",
    "PatientID": "patient_id",
    "AccessionNumber": "accession_number",
}
SCAN_BYTES = 65536  # kept for callers that scan a file's head
# PS3.5 9.1: components of digits, no leading zero unless the component is "0"
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
KNOWN_SYNTAXES = frozenset(str(ts) for ts in pydicom.uid.AllTransferSyntaxes)
DEFER_BYTES = 4096  # the pydicom fallback leaves values longer than this on disk
MAX_INFLATED_BYTES = 1_073_741_824  # a deflated dataset larger inflated: InflatedTooLarge (node.max_inflated_bytes)


class InvalidInstance(Exception):
    """A file Nadir cannot store."""


class UnreadableInstance(InvalidInstance):
    """The dataset cannot be parsed."""


class MissingUid(InvalidInstance):
    """A Study, Series or SOP Instance UID is missing or not a UID."""


class IncompleteInstance(UnreadableInstance):
    """The file ends inside an element, or its pixel data is not the length it must be."""


def valid_uid(text: str) -> bool:
    """A UID as PS3.5 9.1 defines it."""
    return len(text) <= 64 and _UID.fullmatch(text) is not None


@dataclass(frozen=True)
class Header:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    modality: str | None
    patient_id: str | None
    accession_number: str | None


def _uid(value: Any, keyword: str) -> str:
    text = str(value).rstrip("\x00 ") if value is not None else ""
    if not text:
        raise MissingUid(f"{keyword} missing")
    if not valid_uid(text):
        raise MissingUid(f"{keyword} {ascii(text)[:80]} is not a valid UID (PS3.5 9.1)")
    return text


def _text(value: Any, keyword: str, vr: str) -> str | None:
    """A value as stored, whole: longer than its VR allows (PS3.5 Table 6.2-1; old modalities
    send 20-character accession numbers) it is kept as sent and a WARNING says so, never
    truncated nor refused (the study would be lost)."""
    if value is None:
        return None
    text = str(value).strip(" \x00")  # NUL padding (some old modalities) is padding
    if any(ord(ch) < 0x20 and ch != "\x1b" for ch in text):  # PS3.5 6.2: no control character but ESC
        raise InvalidInstance(f"{keyword} holds control characters (not a {vr} value)")
    if len(text) > VR_MAX[vr]:
        log.warning("%s is %d characters, more than %s allows (%d): stored as sent", keyword, len(text), vr, VR_MAX[vr])
    return text or None


def read_header(path: Path, max_inflated: int = MAX_INFLATED_BYTES) -> Header:
    """The identifying attributes of `path`, once it is known to be whole; raises
    InvalidInstance.

    The common case is scanned from a memory map of the file (daemon.store.header_scan);
    pydicom reads whatever the scan does not cover, and confirms every rejection."""
    try:
        scanned = _scan_file(path)
    except TooDeep as exc:
        raise UnreadableInstance(str(exc)) from exc
    if scanned is not None:
        try:
            return _header(scanned.values, scanned.transfer_syntax_uid)
        except MissingUid:
            pass  # e.g. elements out of order: pydicom has the last word
    if _deflated(path):  # streamed with a cap, never inflated whole (daemon.store.deflated)
        return _read_deflated(path, max_inflated)
    try:
        ds = dcmread(path, defer_size=DEFER_BYTES)
        values = {name: ds.get(keyword) for keyword, name in _TAGS.items()}
        ts = str(ds.file_meta.TransferSyntaxUID)
        if ts not in KNOWN_SYNTAXES:
            raise UnreadableInstance(f"transfer syntax {ascii(ts)[:80]} unknown")
        _check_pixel_data(ds, path.stat().st_size)
    except UnreadableInstance:
        raise
    except Exception as exc:  # noqa: BLE001 - any parsing failure means "cannot understand"
        raise UnreadableInstance(f"dataset cannot be parsed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return _header(values, ts)


def _deflated(path: Path) -> bool:
    try:
        return is_deflated(path)
    except Exception:  # noqa: BLE001 - pydicom below says why it cannot be read
        return False


def _read_deflated(path: Path, max_inflated: int) -> Header:
    """Raises InflatedTooLarge past `max_inflated` (the receiver answers 0xA700)."""
    try:
        values = read_deflated(path, _TAGS, max_inflated)
    except InflatedTooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - any parsing failure means "cannot understand"
        raise UnreadableInstance(f"deflated dataset cannot be parsed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return _header({name: values[keyword] for keyword, name in _TAGS.items()}, DEFLATED_EXPLICIT_VR_LE)


def _scan_file(path: Path) -> Any:
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return scan(mapped)


def _check_pixel_data(ds: Dataset, file_size: int) -> None:
    """Native pixel data read by pydicom (left on disk): as long as its attributes say,
    and within the file."""
    raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if raw is None:
        return
    if isinstance(raw, RawDataElement):
        length, tell = raw.length, raw.value_tell
        if raw.value is not None:
            length = len(raw.value)
        if length == 0xFFFFFFFF:
            return  # encapsulated: pydicom found its sequence delimiter
        deflated = ds.file_meta.TransferSyntaxUID.is_deflated  # `tell` is then in the inflated stream
        if raw.value is None and not deflated and tell + length > file_size:
            raise IncompleteInstance(f"the file ends inside the pixel data ({file_size - tell} of {length} bytes)")
    else:
        if raw.is_undefined_length or ds.file_meta.TransferSyntaxUID.is_compressed:
            return
        length = len(raw.value or b"")
    try:
        expected = native_length(int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames") or 1),
                                 int(ds.SamplesPerPixel), int(ds.BitsAllocated))
    except (AttributeError, TypeError, ValueError) as exc:
        raise IncompleteInstance(f"native pixel data without the attributes that give its length ({exc})") from exc
    if not pixel_length_fits(length, expected):
        raise IncompleteInstance(f"native pixel data is {length} bytes, {expected} expected")


def _header(values: Mapping[str, Any], ts: str) -> Header:
    return Header(
        sop_class_uid=_uid(values["sop_class_uid"], "SOPClassUID"),
        sop_instance_uid=_uid(values["sop_instance_uid"], "SOPInstanceUID"),
        study_instance_uid=_uid(values["study_instance_uid"], "StudyInstanceUID"),
        series_instance_uid=_uid(values["series_instance_uid"], "SeriesInstanceUID"),
        transfer_syntax_uid=ts,
        modality=_text(values["modality"], "Modality", "CS"),
        patient_id=_text(values["patient_id"], "PatientID", "LO"),
        accession_number=_text(values["accession_number"], "AccessionNumber", "SH"),
    )
