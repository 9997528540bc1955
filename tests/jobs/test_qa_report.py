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

from daemon.demo.perfusion_phantom import Protocol, WriteOptions, perfusion_phantom, write_dynamic
from daemon.demo.phantom import Grid
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


def test_a_dynamic_series_is_reported_as_dynamic_not_as_duplicated_slices(tmp_path: Path) -> None:
    # the SYNTHETIC perfusion phantom written as DICOM: 6 frames of the same 12 positions, told apart by
    # TemporalPositionIdentifier (and their acquisition times)
    times = (11.0, 12.0, 13.0, 15.0, 35.0, 55.0)
    ph = perfusion_phantom(Protocol(grid=Grid((12, 16, 16), (2.5, 24.0, 24.0), centre=(-20.0, 0.0, 62.0)),
                                    times_s=times, max_shift_mm=(0.0, 0.0)))
    files = write_dynamic(ph, tmp_path / "dyn")
    headers = qa_report.read_headers(files)
    (qa,) = qa_report.assess_study(headers)
    assert qa.findings == () and qa.instances == 72
    assert qa.median_spacing_mm == pytest.approx(2.5)
    assert qa.dynamic is not None
    assert "6 time frames of 12 slice positions" in qa.dynamic and "TemporalPositionIdentifier" in qa.dynamic
    assert "frame times (s): 0, 1, 2, 4, 24, 44" in qa.dynamic and "a frame every 1 to 20 s" in qa.dynamic
    # a frame that lost a slice is dynamic still, and says which; a slice sent twice in one frame is a duplicate
    (gap,) = qa_report.assess_study(headers[:30] + headers[31:])
    assert gap.dynamic is not None and gap.findings == ("dynamic series: frame 3 holds 11 of the 12 slice positions",)
    twice = pydicom.Dataset(headers[0])
    twice.SOPInstanceUID = generate_uid()
    (dup,) = qa_report.assess_study([*headers, twice])
    assert dup.dynamic is None and any("duplicated slices" in f for f in dup.findings)
    # without the identifiers, the n-th acquisition time at each position is frame n
    for ds in headers:
        del ds.TemporalPositionIdentifier, ds.AcquisitionNumber
    (by_time,) = qa_report.assess_study(headers)
    assert by_time.findings == () and by_time.dynamic is not None and "0, 1, 2, 4, 24, 44" in by_time.dynamic


def test_a_dynamic_series_in_the_sr_text(tmp_path: Path) -> None:
    ph = perfusion_phantom(Protocol(grid=Grid((4, 8, 8), (2.5, 40.0, 40.0), centre=(-20.0, 0.0, 62.0)),
                                    times_s=(11.0, 25.0, 45.0), max_shift_mm=(0.0, 0.0)))
    files = write_dynamic(ph, tmp_path / "dyn", WriteOptions())
    st = str(pydicom.dcmread(files[0]).StudyInstanceUID)
    sr = qa_report.run(PipelineInput(st, "qa-report", tuple(files)))[0]
    series = sr.ContentSequence[1].ContentSequence
    assert sr.ContentSequence[0].TextValue.endswith("no problem found")
    assert series[1].TextValue.startswith("dynamic series (4D): 3 time frames of 4 slice positions")
