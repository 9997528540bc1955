"""A route whose job fails for good: the PACS (a real Orthanc) receives an SR in the
study saying that the automatic analysis failed, naming the route, and that the study is
to be read without it; a route with `report_failure: false` sends nothing. The study is
FAILED once that SR is delivered."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from daemon.store.jobs import Job
from daemon.store.models import Study
from jobs.harness import NadirNode, Orthanc, storescu, wait_until
from jobs.studies import make_series, write_study

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

RULES = """\
version: 1
routes:
  - name: brain-failing
    pipeline: 'jobs.extra_pipelines:failing'
    destinations: [pacs]
    max_attempts: 2
  - name: quiet-failing
    pipeline: 'jobs.extra_pipelines:failing'
    destinations: [pacs]
    max_attempts: 1
    report_failure: false
"""


def texts(ds: pydicom.Dataset) -> list[str]:
    out = []
    for item in ds.get("ContentSequence", []):
        if item.ValueType == "TEXT":
            out.append(str(item.TextValue))
        out.extend(texts(item))
    return out


def test_failed_analysis_sr_reaches_the_pacs_in_the_study(tmp_path: Path) -> None:
    pacs = Orthanc(tmp_path / "orthanc").start()
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    node = NadirNode(tmp_path / "nadir", pacs.dicom_port, rules_file=rules).start()
    try:
        study_uid = generate_uid()
        storescu(write_study(tmp_path / "study", [make_series(study_uid, modality="MR", positions=[0, 1, 2, 3])]),
                 node.port, "NADIR")
        srs = wait_until("the failure SR in Orthanc", lambda: pacs.sop_instance_uids("SR") or None, 90)
        wait_until("the study FAILED", lambda: node.scalars(select(Study.state).where(Study.state == "FAILED")), 30)
        jobs = {r[0]: (r[1], r[2]) for r in node.scalars(select(Job.route, Job.state, Job.attempts))}
        assert jobs == {"brain-failing": ("FAILED", 2), "quiet-failing": ("FAILED", 1)}
        assert len(srs) == 1, "one SR: the route with report_failure: false sends none"
        instance = pacs.post("/tools/lookup", srs[0])[0]["ID"]
        sr = pydicom.dcmread(io.BytesIO(pacs.file(instance)))
        assert sr.StudyInstanceUID == study_uid and sr.PatientID == "SYNTH-1"
        assert sr.CompletionFlag == "PARTIAL" and sr.VerificationFlag == "UNVERIFIED"
        said = texts(sr)
        assert "The automatic analysis brain-failing failed: no result. Read this study without it." in said
        assert not [t for t in said if "quiet-failing" in t]
        log = node.log_text()
        assert "failed for good" in log and "quiet-failing has report_failure: false" in log
    finally:
        node.stop()
        print(node.log_text()[-6000:])  # shown only when the test fails
        pacs.stop()
