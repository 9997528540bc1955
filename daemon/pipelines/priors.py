"""What a pipeline asks of a patient's earlier timepoints, and the interface that answers.

A pipeline does no database or network I/O of its own: the runtime hands it a
`PriorsSource` in `PipelineInput.priors` (`daemon.runtime.priors.NodePriors`: the
database, else our SRs read back from the PACS). A pure run (tests, `nadir
measure`) gets `NO_PRIORS`: every study is a baseline, and the report says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from daemon.findings import Timepoint
from daemon.report.inputs import PriorStudy
from daemon.volume import Volume


@dataclass(frozen=True)
class Priors:
    timepoints: tuple[Timepoint, ...]  # oldest first
    studies: tuple[PriorStudy, ...]  # what the SR lists as compared with
    source: str  # "database" | "pacs" | "none"
    note: str = ""  # why there are none, or where they came from
    series: tuple[str, ...] = ()  # per timepoint, the measured series ("" unknown)


@dataclass(frozen=True)
class Request:
    route: str
    patient_id: str
    study_instance_uid: str
    study_date: date | None
    pacs: str  # destination name (or AE@host:port) to query; "" = do not query
    sr_series_number: int
    # a study in the PACS is a prior of this route only when it holds one of these modalities
    # (none: any), so a brain MR's report is never read as a liver CT's prior of the same patient
    modalities: tuple[str, ...] = ()


class PriorsSource(Protocol):
    def find(self, req: Request) -> Priors:
        """The patient's earlier timepoints for the route, oldest first (none: the reason)."""

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        """Remember this timepoint's lesions (and its SR's series and instance UIDs)."""

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        """A prior series' images, when they can be had (for registration); else None."""


class _NoPriors:
    def find(self, req: Request) -> Priors:
        return Priors((), (), "none", "no database or PACS available to this run: treated as a baseline")

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        return None

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        return None


NO_PRIORS: PriorsSource = _NoPriors()
