"""What a pipeline hands to report/: one study's results, with its source images."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import NDArray
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
    ANALYSIS_FAILED = "analysis_failed"  # the route's job failed for good (report/failure.py)


# what a route's trend plot shows over the visits (daemon.report.trend): the sum of the targets'
# long axes (RECIST 1.1, RANO-BM...), or the hottest lesion's SULpeak with the TMTV (PERCIST 1.0)
TrendKind = Literal["sum_of_diameters", "sulpeak_tmtv"]


@dataclass(frozen=True)
class Reason:
    """One sentence of a report's reason as its producer said it: `code` names what it says and `values`
    fill it, so a report in another language words it from them (templates/report/amino.*.j2), never
    from `text`, its English."""

    code: str  # e.g. "tracer"; "" where the producer does not code it
    text: str
    values: Mapping[str, str] = field(default_factory=dict)  # e.g. {"name": "[11C]methionine"}


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


@dataclass(frozen=True)
class StudyMeasurement:
    """One study-level number (not a lesion's), e.g. TMTV or the subcutaneous fat volume."""

    name: str  # e.g. "tmtv_ml": the private code value is derived from it
    meaning: str  # e.g. "Total metabolic tumour volume"
    value: float
    unit: str  # UCUM code, e.g. "ml", "mm", "g/ml{SUVlbm(Janma)}", "1"


@dataclass(frozen=True)
class StudyMeasurementGroup:
    """Study-level numbers written together as one TID 1501 group (e.g. whole-body PET
    features, body composition), with the rule or citation they follow."""

    label: str  # the group's tracking identifier, e.g. "Whole-body PET features"
    items: tuple[StudyMeasurement, ...]
    basis: str = ""  # how they were measured, with the citation
    # a group of one lesion's numbers under its assessment (CT perfusion): written with the
    # criterion's code, the category and the flags, and the lesion's tracking UID when given
    assessment: Assessment | None = None
    tracking_uid: str = ""


@dataclass(frozen=True, eq=False)
class ExtraKeyImage:
    """A key image a route renders itself (e.g. a perfusion map with its regions)."""

    pixels: NDArray[np.uint8]  # RGB
    description: str
    reference: Dataset | None = None  # the source slice shown (None: any source image)


@dataclass(frozen=True, eq=False)
class ReferenceRegion:
    """A reference region the route drew (brain PET: striatum, contralateral normal brain...): a SEG
    segment of category (SCT 91723000, "Anatomical Structure") and type `code`."""

    label: str  # the segment label, e.g. "Striatum (contralateral)"
    code: Code  # the segmented property type, e.g. (SCT 31428008, "Corpus striatum")
    mask: NDArray[np.bool_]  # on the measured volume's grid


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
    # `reason`'s sentences coded, where the route codes them (brain PET: why no series was read, else
    # where the lesion region came from)
    reasons: tuple[Reason, ...] = ()
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
    # study-level measurements (whole-body PET features, body composition), a group each
    study_measurements: tuple[StudyMeasurementGroup, ...] = ()
    trend: TrendKind = "sum_of_diameters"  # the route's trend plot
    reference_regions: tuple[ReferenceRegion, ...] = ()  # SEG segments beside the lesions'
    mip: bool = False  # the route's coronal MIP key image (whole-body PET; not a brain PET)
    extra_images: tuple[ExtraKeyImage, ...] = ()  # the route's own key images, after the lesions'

    @property
    def study_instance_uid(self) -> str:
        return self.timepoint.study_instance_uid
