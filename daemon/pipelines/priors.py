"""What a pipeline asks of a patient's earlier timepoints, and the interface that answers.

A pipeline does no database or network I/O of its own: the runtime hands it a
`PriorsSource` in `PipelineInput.priors` (`daemon.runtime.priors.NodePriors`: the
database, else our SRs read back from the PACS). A pure run (tests, `nadir
measure`) gets `NO_PRIORS`: every study is a baseline, and the report says why.

A lookup that could not be made is never "no priors" (a follow-up reported as a
baseline is a wrong assessment nobody can tell from a right one): a source raises
`PriorsUnavailable` while the job has attempts left (the attempt fails and is retried
like any failed attempt), and on the last attempt answers `source="unavailable"`
with the reason; the pipeline then reports the assessment as not evaluable (NE),
says why, and records nothing as the patient's history. A study whose patient
cannot be told apart (no PatientID, or a wildcard in it) is not looked up at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from pydicom.dataset import Dataset

from daemon.findings import Timepoint
from daemon.report.inputs import PriorStudy
from daemon.volume import Volume


@dataclass(frozen=True)
class Priors:
    timepoints: tuple[Timepoint, ...]  # oldest first
    studies: tuple[PriorStudy, ...]  # what the SR lists as compared with
    source: str  # "database" | "pacs" | "none" | "unavailable" (could not be looked up: `note` says why)
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
    issuer_of_patient_id: str = ""  # (0010,0021), when the study has one


@dataclass(frozen=True)
class RtLookup:
    """The patient's radiotherapy objects in the PACS (RT Structure Set, RT Plan, RT Dose), for
    the irradiated field (`daemon.pipelines.irradiated_field`)."""

    datasets: tuple[Dataset, ...]
    source: str  # "pacs" | "none" | "unavailable" (could not be looked up: `note` says why)
    note: str = ""


UNAVAILABLE = "unavailable"
# C-FIND wildcards and multiple values (PS3.4 C.2.2.2.4, C.2.2.2.1): such a key matches others
_NOT_ONE_PATIENT = re.compile(r"[*?\\]")


class PriorsUnavailable(Exception):
    """The patient's priors could not be looked up now (database or PACS failed); a later
    attempt may succeed."""


def patient_key_problem(req: Request) -> str | None:
    """Why `req` does not name one patient (so nothing may be looked up), or None."""
    if not req.patient_id.strip():
        return "the study has no Patient ID"
    if _NOT_ONE_PATIENT.search(req.patient_id):
        return "the study's Patient ID holds a wildcard or several values"
    if _NOT_ONE_PATIENT.search(req.issuer_of_patient_id):
        return "the study's Issuer of Patient ID holds a wildcard or several values"
    return None


def not_compared(priors: Priors) -> str | None:
    """The sentence the report gives when the study could not be compared with earlier
    ones (the assessment is then NE), or None."""
    if priors.source != UNAVAILABLE:
        return None
    return f"The assessment could not be compared with earlier studies: {priors.note}."


class PriorsSource(Protocol):
    def find(self, req: Request) -> Priors:
        """The patient's earlier timepoints for the route, oldest first (none: the reason);
        raises PriorsUnavailable when they could not be looked up and a retry may help."""

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        """Remember this timepoint's lesions (and its SR's series and instance UIDs)."""

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        """A prior series' images, when they can be had (for registration); else None."""

    def rt_objects(self, req: Request) -> RtLookup:
        """The patient's RT objects dated up to this study; raises PriorsUnavailable when they could
        not be looked up and a retry may help, answers source "unavailable" on the last attempt."""

    def same_study(self, req: Request, wait: bool) -> Timepoint | None:
        """The timepoint route `req.route` recorded for this very study (e.g. the liver route's
        lesions, for the perfusion route of the same study), None when there is none; with `wait`,
        raises PriorsUnavailable while the job has attempts left (the other route may still run)."""


class _NoPriors:
    def find(self, req: Request) -> Priors:
        return Priors((), (), "none", "no database or PACS available to this run: treated as a baseline")

    def record(self, req: Request, timepoint: Timepoint, series_uid: str, sr: tuple[str, str]) -> None:
        return None

    def prior_volume(self, req: Request, study_uid: str, series_uid: str) -> Volume | None:
        return None

    def same_study(self, req: Request, wait: bool) -> Timepoint | None:
        return None

    def rt_objects(self, req: Request) -> RtLookup:
        return RtLookup((), "none", "no PACS available to this run: RT objects not looked up")


NO_PRIORS: PriorsSource = _NoPriors()
