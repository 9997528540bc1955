"""Frozen input types shared by the lesion-based criteria (RECIST 1.1, RANO-BM).

A lesion is observed once per timepoint; the baseline timepoint's target lesions
define what is summed at every follow-up. A quantity not measured is None, never 0
(0 mm means "disappeared").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from daemon.findings import Lesion, LesionKind


class Role(StrEnum):
    TARGET = "target"
    NON_TARGET = "non-target"
    NEW = "new"


class NonTarget(StrEnum):
    NONE = "NONE"  # no non-target disease recorded
    CR = "CR"
    NON_CR_NON_PD = "NON_CR_NON_PD"
    PD = "PD"  # unequivocal progression
    NE = "NE"  # not all evaluated


class NewLesion(StrEnum):
    NONE = "none"
    EQUIVOCAL = "equivocal"
    UNEQUIVOCAL = "unequivocal"


class Clinical(StrEnum):
    STABLE = "stable"
    IMPROVED = "improved"
    WORSE = "worse"  # tumour-related deterioration
    WORSE_NON_TUMOUR = "worse_non_tumour"  # seizure, toxicity, stroke, infection, taper


class SteroidTrend(StrEnum):
    NONE = "none"
    PHYSIOLOGICAL = "physiological"
    DECREASED = "decreased"
    STABLE = "stable"
    INCREASED = "increased"


_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class LesionInput:
    """One lesion at one timepoint."""

    lesion_id: str  # tracking identifier, stable across timepoints
    role: Role = Role.TARGET
    site: str = ""  # organ or anatomical site
    is_node: bool = False
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None  # the perpendicular diameter (RANO-BM), the node axis (RECIST)
    volume_ml: float | None = None
    uptake: Mapping[str, float] = field(default_factory=lambda: _EMPTY)  # e.g. {"sul_peak": 4.2}
    too_small: bool = False  # present but too small to measure
    not_assessed: bool = False
    fragments_mm: tuple[float, ...] = ()  # a split lesion: the fragments' diameters
    treated_field: bool = False  # inside a radiotherapy / SRS field
    days_since_treatment: int | None = None  # from the field's treatment to this timepoint (None: not known)


@dataclass(frozen=True)
class TimepointInput:
    label: str
    lesions: tuple[LesionInput, ...] = ()
    nontarget: NonTarget = NonTarget.NONE
    new_lesion: NewLesion = NewLesion.NONE
    steroid_dose_mg_day: float | None = None  # dexamethasone equivalent
    steroid_trend: SteroidTrend | None = None  # when the dose itself is not known
    clinical: Clinical | None = None
    slice_thickness_mm: float | None = None
    slice_gap_mm: float = 0.0
    imaging_done: bool = True

    def lesion(self, lesion_id: str) -> LesionInput | None:
        for lesion in self.lesions:
            if lesion.lesion_id == lesion_id:
                return lesion
        return None

    def has_new_lesion(self) -> NewLesion:
        """The new-lesion status: the flag, or unequivocal when a lesion of role NEW is listed."""
        if self.new_lesion is NewLesion.NONE and any(les.role is Role.NEW for les in self.lesions):
            return NewLesion.UNEQUIVOCAL
        return self.new_lesion


_ROLE_OF_KIND = {
    LesionKind.TARGET: Role.TARGET,
    LesionKind.NON_TARGET: Role.NON_TARGET,
    LesionKind.NEW: Role.NEW,
}


def from_finding(lesion: Lesion) -> LesionInput:
    """A measured `daemon.findings.Lesion` as a criterion input."""
    m = lesion.measurements
    return LesionInput(
        lesion_id=lesion.tracking_id,
        role=_ROLE_OF_KIND[lesion.kind],
        site=lesion.site,
        is_node=lesion.is_node,
        long_axis_mm=m.long_axis.length_mm if m.long_axis else None,
        short_axis_mm=m.short_axis.length_mm if m.short_axis else None,
        volume_ml=m.volume_ml,
        uptake=MappingProxyType(dict(m.intensity)),
    )
