"""The identifying attributes of a stored DICOM file, read without its pixel data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread

_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "PatientID",
    "AccessionNumber",
]


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
    """Parse the header of `path` (stops before the pixel data); raises InvalidInstance."""
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        values = {k: ds.get(k) for k in _TAGS}
        ts = str(ds.file_meta.TransferSyntaxUID)
    except Exception as exc:  # noqa: BLE001 - any parsing failure means "cannot understand"
        raise UnreadableInstance(f"dataset cannot be parsed ({exc})") from exc
    return Header(
        sop_class_uid=_uid(values["SOPClassUID"], "SOPClassUID"),
        sop_instance_uid=_uid(values["SOPInstanceUID"], "SOPInstanceUID"),
        study_instance_uid=_uid(values["StudyInstanceUID"], "StudyInstanceUID"),
        series_instance_uid=_uid(values["SeriesInstanceUID"], "SeriesInstanceUID"),
        transfer_syntax_uid=ts,
        modality=_text(values["Modality"]),
        patient_id=_text(values["PatientID"]),
        accession_number=_text(values["AccessionNumber"]),
    )
