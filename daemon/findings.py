"""Core finding types: what measure/ produces and report/ and pipelines/ consume.

Frozen dataclasses, no I/O. A quantity that was not measured is None, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from daemon.volume import ImagePoint, Vec3


class LesionKind(StrEnum):
    TARGET = "target"
    NON_TARGET = "non-target"
    NEW = "new"


@dataclass(frozen=True)
class Calliper:
    """A linear measurement: two end points in patient (LPS mm) and image coordinates."""

    length_mm: float
    start: Vec3
    end: Vec3
    start_image: ImagePoint
    end_image: ImagePoint


@dataclass(frozen=True)
class Measurements:
    long_axis: Calliper | None = None  # longest axial diameter
    short_axis: Calliper | None = None  # longest perpendicular in the same slice
    volume_ml: float | None = None
    centroid: Vec3 | None = None  # patient LPS mm
    max_3d_diameter_mm: float | None = None
    # name -> value; names like "hu_mean", "suv_max", "suv_peak"; units fixed per name
    intensity: dict[str, float] = field(default_factory=dict)
    # name -> value, e.g. "lesion_to_liver_bf", "l_n_max"
    ratios: dict[str, float] = field(default_factory=dict)
    radiomics: dict[str, float] = field(default_factory=dict)
    # ratio name -> how its reference region was defined (model label or rules-file sphere)
    ratio_references: dict[str, str] = field(default_factory=dict)
    # peak sphere volume, slice of the long axis, etc.: free-text provenance of the numbers
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Lesion:
    tracking_id: str  # human readable, stable for life: "L1", "L2"...
    tracking_uid: str  # DICOM UID, stable for life
    kind: LesionKind
    measurements: Measurements
    segment_number: int | None = None  # label in the mask / segment in the SEG
    site: str = ""  # organ or anatomical site
    is_node: bool = False  # lymph node


@dataclass(frozen=True)
class Timepoint:
    study_instance_uid: str
    study_date: date | None
    lesions: tuple[Lesion, ...]
    context: dict[str, str] = field(default_factory=dict)  # e.g. {"steroids": "stable"}
