"""No patient data in the log at INFO or WARNING, and no forged lines: pydicom's own
warnings (its logger, and the Python warnings it issues, which quote a birth date or a
patient name) become DEBUG records; a value from a dataset or a peer goes through
`logs.escape`, and the text format escapes control characters left in any message.
Datasets are synthetic."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from daemon import logs
from daemon.node import scp

BIRTH_DATE = "1970-01-01"  # not a DA: pydicom warns with the value
NAME = "Synthetic^Patient" + "x" * 60  # a component past 64 characters: warned with its length


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    noisy = {name: logging.getLogger(name).level for name in logs.NOISY}
    with warnings.catch_warnings():  # configure() routes warnings to logging; undone here
        warnings.simplefilter("always")
        yield
        logging.captureWarnings(False)
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for name, was in noisy.items():
        logging.getLogger(name).setLevel(was)


def encoded() -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1442.90.1"
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, "1.2.826.0.1.3680043.10.1442.90.1"
    ds.add_new(0x00100010, "PN", NAME)
    ds.add_new(0x00100030, "DA", BIRTH_DATE)
    out = DicomBytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_pydicom_warnings_quoting_values_are_debug(restore_logging: None, fmt: logs.Format) -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, fmt, stream=out)
    ds = pydicom.dcmread(DicomBytesIO(encoded()))
    assert str(ds.PatientBirthDate) == BIRTH_DATE  # read (and warned about) now
    logging.getLogger("daemon.test").warning("still logged")
    text = out.getvalue()
    assert "still logged" in text
    assert BIRTH_DATE not in text and "PN component length" not in text, text
    if fmt == "json":
        assert all(json.loads(line)["level"] != "DEBUG" for line in text.splitlines())


def test_at_debug_pydicom_says_what_it_saw(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure(logging.DEBUG, "text", stream=out)
    pydicom.dcmread(DicomBytesIO(encoded())).PatientBirthDate  # noqa: B018
    assert f"Invalid value for VR DA: '{BIRTH_DATE}'" in out.getvalue()


def test_a_value_cannot_forge_a_log_line(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "text", stream=out)
    forged = "1.2.3\n2026-01-01T00:00:00.000+00:00 INFO daemon.node.scp: instance 9.9 stored"
    scp._reject(forged, "PEER", 0xC002, f"dataset SOPInstanceUID {forged} differs")
    logging.getLogger("pynetdicom.acse").error("a library's line with a raw value %s", forged)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "1.2.3\\x0a2026-01-01" in lines[0] and "(0xC002)" in lines[0]
    try:
        raise ValueError("two\nlines")
    except ValueError:
        logging.getLogger("daemon.test").exception("a traceback keeps its lines")
    assert "Traceback (most recent call last):" in out.getvalue().splitlines()[3]


def test_escape() -> None:
    assert logs.escape("A\\B\r\n\x1b[31m\u2028") == "A\\\\B\\x0d\\x0a\\x1b[31m\\u2028"
    assert logs.escape("é") == "é"
    assert logs.escape("9" * 300) == "9" * 200 + "..."
    assert logs.escape(b"1.2\x00") == "1.2\\x00"
