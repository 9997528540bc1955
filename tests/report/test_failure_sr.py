"""The SR that says a route's automatic analysis failed (daemon/report/failure.py):
written, read back, and checked by the validators the other SRs pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from jobs.studies import make_series
from pydicom.uid import generate_uid

from daemon.config import ReportSettings
from daemon.report.failure import FailedJob, build_failure_sr, failure_sr_uid
from daemon.report.uids import series_uid, sop_uid

from .validators import PIXELMED_JAR, dciodvfy, dsrdump, pixelmed

ROUTE = "brain-mets"


def _failure_sr(tmp_path: Path, language: str = "en") -> tuple[Path, str, list[pydicom.Dataset]]:
    study = generate_uid()
    sources = make_series(study, modality="MR", positions=[0, 1, 2])
    job = FailedJob(study, ROUTE, revision=1, job_id=7, attempts=3, parameters={"language": language})
    path = tmp_path / f"failure-{language}.dcm"
    build_failure_sr(job, sources, ReportSettings()).save_as(path, enforce_file_format=True)
    return path, study, sources


def _texts(ds: pydicom.Dataset) -> list[str]:
    out = []
    for item in ds.get("ContentSequence", []):
        if item.ValueType == "TEXT":
            out.append(str(item.TextValue))
        out.extend(_texts(item))
    return out


def test_failure_sr_says_which_route_failed_and_to_read_without_it(tmp_path: Path) -> None:
    path, study, sources = _failure_sr(tmp_path)
    sr = pydicom.dcmread(path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.StudyInstanceUID == study and sr.PatientID == "SYNTH-1" and sr.AccessionNumber == "A1"
    assert sr.CompletionFlag == "PARTIAL" and sr.VerificationFlag == "UNVERIFIED"
    assert sr.ContentSequence and sr.ConceptNameCodeSequence[0].CodeValue == "126000"
    texts = _texts(sr)
    assert "The automatic analysis brain-mets failed: no result. Read this study without it." in texts
    assert "Analysis failed" in texts  # the group's tracking identifier
    assert not [t for t in texts if t in ("No lesion", "No suitable series")]
    evidence = {str(i.ReferencedSOPInstanceUID) for s in sr.CurrentRequestedProcedureEvidenceSequence
                for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence}
    assert evidence == {str(ds.SOPInstanceUID) for ds in sources}
    # the route's SR series, but never the UID a successful run's SR takes
    assert sr.SeriesInstanceUID == series_uid(study, ROUTE, "sr", str(sr.SoftwareVersions))
    assert sr.SOPInstanceUID == failure_sr_uid(study, ROUTE, str(sr.SoftwareVersions), 0)
    assert sr.SOPInstanceUID != sop_uid(study, ROUTE, "sr", str(sr.SoftwareVersions), 1, 0)


def test_failure_sr_in_french(tmp_path: Path) -> None:
    path, _, _ = _failure_sr(tmp_path, "fr")
    texts = _texts(pydicom.dcmread(path))
    assert "L'analyse automatique brain-mets a échoué : aucun résultat. Lire cet examen sans elle." in texts


def test_failure_sr_needs_the_study() -> None:
    with pytest.raises(ValueError, match="no readable instance"):
        build_failure_sr(FailedJob("1.2.3", ROUTE, 1, 1, 3), [], ReportSettings())


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("dciodvfy") is None or shutil.which("dsrdump") is None, reason="dicom3tools/dcmtk not installed")
def test_failure_sr_passes_dciodvfy_and_dsrdump(tmp_path: Path) -> None:
    path, _, _ = _failure_sr(tmp_path)
    found = dciodvfy(path)
    assert not found.errors, found.errors
    proc = dsrdump(path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert '<has obs context TEXT:(112039,DCM,"Tracking Identifier")="Analysis failed">' in proc.stdout


@pytest.mark.integration
@pytest.mark.skipif(not PIXELMED_JAR.exists() or shutil.which("java") is None, reason="PixelMed not installed")
def test_failure_sr_passes_pixelmed(tmp_path: Path) -> None:
    path, _, _ = _failure_sr(tmp_path)
    found = pixelmed(path)
    assert "Found Root Template TID_1500" in found.output, found.output[-2000:]
    assert not found.errors, "\n".join(found.errors)
