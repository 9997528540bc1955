"""Shared by the whole-body FDG tests: an in-memory priors source, the SR's numbers, and the
SYNTHETIC PET/CT patient of `nadir demo-data` run through the pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from daemon.demo.patient import write_pet_ct
from daemon.findings import Timepoint
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.priors import Priors, Request
from daemon.volume import Volume


@dataclass
class MemoryPriors:
    """The patient's timepoints kept in memory, as the node's database keeps them."""

    timepoints: list[Timepoint] = field(default_factory=list)

    def find(self, req: Request) -> Priors:
        earlier = tuple(tp for tp in self.timepoints if tp.study_instance_uid != req.study_instance_uid)
        return Priors(earlier, (), "database" if earlier else "none", "in memory", ("",) * len(earlier))

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        self.timepoints.append(timepoint)

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        return None

    def same_study(self, req: Request, wait: bool) -> Timepoint | None:
        return None


def walk(items: Any) -> Iterator[Dataset]:
    for item in items or []:
        yield item
        yield from walk(item.get("ContentSequence"))


def sr_of(datasets: list[Dataset]) -> Dataset:
    return next(ds for ds in datasets if ds.Modality == "SR")


def numbers(sr: Dataset) -> dict[str, float]:
    """Concept meaning -> value of every NUM outside lesion groups (study-level numbers)."""
    out = {}
    for item in walk(sr.ContentSequence):
        if item.ValueType == "NUM":
            out[str(item.ConceptNameCodeSequence[0].CodeMeaning)] = float(item.MeasuredValueSequence[0].NumericValue)
    return out


def category(sr: Dataset, method: str = "PERCIST 1.0") -> str | None:
    """The Current Response of the group whose Response Evaluation Method is `method`."""
    for group in walk(sr.ContentSequence):
        items = list(group.get("ContentSequence", []))
        codes = {str(i.ConceptNameCodeSequence[0].CodeValue): i for i in items if i.ValueType == "CODE"}
        m, r = codes.get("112021"), codes.get("112048")
        if m is not None and r is not None and str(m.ConceptCodeSequence[0].CodeMeaning) == method:
            return str(r.ConceptCodeSequence[0].CodeValue)
    return None


def texts(sr: Dataset) -> list[str]:
    return [str(i.TextValue) for i in walk(sr.ContentSequence) if i.ValueType == "TEXT"]


def truth_of(folder: Path) -> dict[str, Any]:
    for candidate in (folder / "truth.json", folder.parent / f"{folder.name}.truth" / "truth.json"):
        if candidate.exists():
            return dict(json.loads(candidate.read_text()))
    raise FileNotFoundError(f"no truth.json for {folder}")


def run_patient(out: Path, parameters: dict[str, Any] | None = None) -> tuple[list[list[Dataset]], MemoryPriors,
                                                                            list[dict[str, Any]]]:
    from daemon.pipelines.wholebody_fdg import run

    priors = MemoryPriors()
    results, truths = [], []
    for t in range(3):
        written = write_pet_ct(out, t, "small", seed=1)
        files = tuple(sorted(written.folder.glob("*.dcm")))
        inp = PipelineInput(written.study_instance_uid, "wholebody-fdg-percist", files, parameters or {},
                            priors=priors)
        results.append(run(inp))
        truths.append(truth_of(written.folder))
    return results, priors, truths
