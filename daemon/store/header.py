"""The identifying attributes of a stored DICOM file, read without its pixel data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread

from daemon.store.header_scan import scan

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
SCAN_BYTES = 65536  # a header longer than this is read by pydicom


class InvalidInstance(Exception):
    """A file Nadir cannot store."""


class UnreadableInstance(InvalidInstance):
    """The dataset cannot be parsed."""


class MissingUid(InvalidInstance):
    """A Study, Series or SOP Instance UID is missing or not a UID."""


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
    text = str(value).strip().rstrip("\x00") if value is not None else ""
    if not text or len(text) > 64:
        raise MissingUid(f"{keyword} missing or invalid")
    return text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def read_header(path: Path) -> Header:
    """Parse the header of `path` (stops before the pixel data); raises InvalidInstance.

    The common case is scanned from the file's first bytes (daemon.store.header_scan);
    pydicom reads whatever the scan does not cover, and confirms every rejection."""
    with open(path, "rb") as f:
        head = f.read(SCAN_BYTES)
    scanned = scan(head)
    if scanned is not None:
        try:
            return _header(scanned.values, scanned.transfer_syntax_uid)
        except MissingUid:
            pass  # e.g. elements out of order: pydicom has the last word
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(_TAGS))
        values = {name: ds.get(keyword) for keyword, name in _TAGS.items()}
        ts = str(ds.file_meta.TransferSyntaxUID)
    except Exception as exc:  # noqa: BLE001 - any parsing failure means "cannot understand"
        raise UnreadableInstance(f"dataset cannot be parsed ({exc})") from exc
    return _header(values, ts)


def _header(values: Mapping[str, Any], ts: str) -> Header:
    return Header(
        sop_class_uid=_uid(values["sop_class_uid"], "SOPClassUID"),
        sop_instance_uid=_uid(values["sop_instance_uid"], "SOPInstanceUID"),
        study_instance_uid=_uid(values["study_instance_uid"], "StudyInstanceUID"),
        series_instance_uid=_uid(values["series_instance_uid"], "SeriesInstanceUID"),
        transfer_syntax_uid=ts,
        modality=_text(values["modality"]),
        patient_id=_text(values["patient_id"]),
        accession_number=_text(values["accession_number"]),
    )
