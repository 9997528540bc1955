"""What a pipeline hands to report/: one study's results, with its source images."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from pydicom.dataset import Dataset

from daemon.criteria.assessment import Assessment
from daemon.findings import Timepoint
from daemon.volume import Code, LesionMask, Volume


class Outcome(StrEnum):
    """What the run found; every value is encoded explicitly in the SR (conformance §1.6)."""

    MEASURED = "measured"
    NO_LESION = "no_lesion"
    NOT_EVALUABLE = "not_evaluable"
    NO_SUITABLE_SERIES = "no_suitable_series"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class InstanceRef:
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class PriorStudy:
    """A study compared with: listed as evidence (Pertinent Other Evidence) in the SR."""

    study_instance_uid: str
    study_date: date | None
    instances: tuple[InstanceRef, ...]  # e.g. the prior SR, or its source images


@dataclass(frozen=True, eq=False)
class ReportRequest:
    route: str
    source_images: tuple[Dataset, ...]  # the current study's instances that were used
    timepoint: Timepoint
    outcome: Outcome = Outcome.MEASURED
    volume: Volume | None = None  # the measured series (pixels for key images)
    mask: LesionMask | None = None  # label = Lesion.segment_number
    assessment: Assessment | None = None  # the route's criterion (e.g. RECIST1.1)
    history: tuple[Timepoint, ...] = ()  # earlier timepoints, oldest first (trend plot)
    priors: tuple[PriorStudy, ...] = ()
    model: ModelInfo | None = None
    procedure: Code | None = None  # CID 100; default from the modality
    finding: Code | None = None  # default Neoplasm
    finding_site: Code | None = None  # the route's organ, e.g. (SCT,12738006,"Brain")
    reason: str = ""  # why not evaluable / no suitable series
    revision: int = 0  # 0 = first issue; n = n-th correction
    previous_versions: tuple[Dataset, ...] = ()  # the SR(s) this one supersedes
    language: str | None = None  # overrides the route/site setting
    # the criterion's thresholds from rules/<criterion>.yaml, for the trend plot lines,
    # e.g. {"pr_pct_vs_baseline": -30, "pd_pct_vs_nadir": 20}
    thresholds: dict[str, float] = field(default_factory=dict)
    # assessments beside the main one, each its own group in the SR (e.g. Chun beside RECIST 1.1)
    # and sentence in the text; a per-lesion criterion's TimepointResult.timepoint is the
    # lesion's tracking id (Chun)
    extra_assessments: tuple[Assessment, ...] = ()

    @property
    def study_instance_uid(self) -> str:
        return self.timepoint.study_instance_uid
