"""The QA report pipeline: what it finds on synthetic series with known defects, its
deterministic UIDs, and its SR written, read back and checked by dciodvfy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.uid import generate_uid

from daemon.pipelines import qa_report
from daemon.pipelines.base import PipelineInput
from jobs.studies import make_series, write_study


def test_findings_on_known_defects() -> None:
    st = generate_uid()
    gappy = make_series(st, positions=[0, 1, 2, 2, 3, 6, 7], series_number=1)
    clean = make_series(st, modality="MR", positions=[0, 1.5, 3, 4.5], series_number=2)
    mixed = make_series(st, positions=[0, 1, 2], series_number=3)
    mixed[1].Rows = mixed[1].Columns = 4
    mixed[2].ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    result = {s.series_number: s for s in qa_report.assess_study([*gappy, *clean, *mixed])}
    text1 = " | ".join(result[1].findings)
    assert "duplicated slices: 1" in text1 and "1 gap(s)" in text1 and "about 2 missing slice(s)" in text1
    assert result[2].findings == () and result[2].median_spacing_mm == pytest.approx(1.5)
    text3 = " | ".join(result[3].findings)
    assert "2 different image orientations" in text3 and "2 different matrix sizes" in text3


def test_sr_is_deterministic_valid_and_in_the_source_study(tmp_path: Path) -> None:
    st = generate_uid()
    files = write_study(tmp_path / "in", [make_series(st, positions=[0, 1, 2, 4])])
    inp = PipelineInput(st, "qa-report", tuple(files))
    first, again = qa_report.run(inp)[0], qa_report.run(inp)[0]
    other_route = qa_report.run(PipelineInput(st, "other", tuple(files)))[0]
    assert (first.SOPInstanceUID, first.SeriesInstanceUID) == (again.SOPInstanceUID, again.SeriesInstanceUID)
    assert first.SOPInstanceUID != other_route.SOPInstanceUID
    assert len(first.SOPInstanceUID) <= 64
    assert first.StudyInstanceUID == st and first.PatientID == "SYNTH-1"
    path = tmp_path / "sr.dcm"
    first.save_as(path, enforce_file_format=True)
    back = hd.sr.srread(path)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33" and back.SeriesNumber == qa_report.SERIES_NUMBER
    assert back.ContentSequence[0].TextValue.startswith("1 series, 4 instances; 1 problem(s) found")
    assert len(back.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence) == 4
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
