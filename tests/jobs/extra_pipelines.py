"""Pipelines used only by the tests (importable by the daemon's worker processes
through PYTHONPATH=tests: `jobs.extra_pipelines:slow`): a slow QA report, one with many outputs,
and one that always fails at job time."""

from __future__ import annotations

import time

from pydicom.dataset import Dataset

from daemon.pipelines import qa_report
from daemon.pipelines.base import PipelineError, PipelineInput


def slow(inp: PipelineInput) -> list[Dataset]:
    """The QA report after `sleep_seconds` (default 3): a job that is running long enough to kill."""
    time.sleep(float(inp.parameters.get("sleep_seconds", 3)))
    return qa_report.run(inp)


def many(inp: PipelineInput) -> list[Dataset]:
    """`count` QA reports with distinct deterministic UIDs: an outbox busy long enough to kill."""
    headers = [h for h in qa_report.read_headers(inp.files)]
    series = qa_report.assess_study(headers)
    out = []
    for i in range(int(inp.parameters.get("count", 40))):
        ds = qa_report.build_report(inp, headers, series)
        ds.SOPInstanceUID = inp.uid("sr", str(i))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        out.append(ds)
    return out


def failing(inp: PipelineInput) -> list[Dataset]:
    """Fails every time, as a route whose model cannot be loaded when its job runs."""
    raise PipelineError(f"model {inp.parameters.get('model', 'site-model')!r} cannot be loaded: file is truncated")
