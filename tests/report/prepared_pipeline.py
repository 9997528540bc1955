"""A pipeline for the tests only (`report.prepared_pipeline:run`): it returns the report objects a
test wrote beforehand (parameters.folder), the RT Structure Set among them only when one of
the job's destinations takes it, as the lesion-follow-up route builds it
(daemon.pipelines.lesion_followup._report)."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from daemon.pipelines.base import PipelineInput


def run(inp: PipelineInput) -> list[Dataset]:
    out = []
    for path in sorted(Path(str(inp.parameters["folder"])).glob("*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.Modality == "RTSTRUCT" and "rtstruct" not in inp.outputs:
            continue
        out.append(ds)
    return out
