"""The SR that tells the radiologist a route's automatic analysis failed.

When a job fails for good (after its retries), the runtime sends its destinations
this SR, in the study, so that the failure is seen where the result would have been:
a TID 1500 report (the same builder as every other, `report/sr.py`) whose one group
says "Analysis failed" (Presence of property: Presence Undetermined, as "No suitable
series" does; conformance.md §1.6), with the impression naming the route and saying
that the study is to be read without it. The report is marked PARTIAL and UNVERIFIED.

It goes in the route's SR series, with a UID of its own: a later successful run (after
`nadir retry`) is a different instance, never the same UID with another content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset

from daemon import __version__
from daemon.config import ReportSettings
from daemon.findings import Timepoint
from daemon.report.bundle import copy_study_attributes, sr_identity
from daemon.report.inputs import Outcome, ReportRequest
from daemon.report.sr import build_sr
from daemon.report.text import LANGUAGES, render_impression
from daemon.report.uids import uid_from


@dataclasses.dataclass(frozen=True)
class FailedJob:
    """What the failure SR says: which study, route and revision, and how it failed."""

    study_instance_uid: str
    route: str
    revision: int  # the study's revision the job ran on (1 = first)
    job_id: int
    attempts: int
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def failure_sr_uid(study_uid: str, route: str, software_version: str, revision: int) -> str:
    """The SOP Instance UID of the failure SR of one study revision and route."""
    return uid_from("sop", study_uid, route, "sr-failed", software_version, "1", str(revision))


def _study_date(ds: Dataset) -> date | None:
    s = str(ds.get("StudyDate", "") or "")
    return date(int(s[:4]), int(s[4:6]), int(s[6:8])) if len(s) == 8 and s.isdigit() else None


def _language(job: FailedJob, settings: ReportSettings) -> str:
    asked = job.parameters.get("language")  # a route's own language, as its pipeline reads it
    return asked if isinstance(asked, str) and asked in LANGUAGES else settings.language_for(job.route)


def build_failure_sr(
    job: FailedJob, sources: Sequence[Dataset], settings: ReportSettings, software_version: str = __version__
) -> hd.sr.ComprehensiveSR:
    """The failure SR of `job`; `sources` are the study's instances (headers suffice)."""
    if not sources:
        raise ValueError(f"study {job.study_instance_uid}: no readable instance to name patient and study")
    reason = f"Nadir job {job.job_id} ({job.route}) failed after {job.attempts} attempt(s)."
    req = ReportRequest(
        route=job.route,
        source_images=tuple(sources),
        timepoint=Timepoint(job.study_instance_uid, _study_date(sources[0]), ()),
        outcome=Outcome.ANALYSIS_FAILED,
        reason=reason,
        revision=max(job.revision - 1, 0),
    )
    impression = render_impression(req, _language(job, settings), settings.templates_dir)
    ident = dataclasses.replace(
        sr_identity(req, settings, software_version),
        sop_instance_uid=failure_sr_uid(job.study_instance_uid, job.route, software_version, req.revision),
    )
    sr = build_sr(req, ident, impression, None)
    copy_study_attributes(sr, sources[0])
    return sr
