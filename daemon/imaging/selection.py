"""Declarative series selection: which series of a study a pipeline runs on, and why.

A `SeriesSpec` (validated with pydantic; written as a route's `series:` parameter
in rules/routing.yaml, the one place each route's spec lives) lists hard requirements; every candidate series is checked
against each, and the ones that pass are ranked by a score (more slices,
thinner slices, 3D, a preferred description, later series). The result always
explains itself: the chosen series and why, or "no suitable series" and, for
each candidate, the first requirements it failed. Header-only: no pixels read.

Example (a route's parameters in rules/routing.yaml)::

    series:
      modality: [MR]
      image_type_absent: [LOCALIZER, DERIVED]
      description_regex: "t1|mprage|bravo|spgr|vibe"
      contrast: true
      acquisition_3d: true
      slice_thickness_mm: [0.4, 1.6]
      orientation: any
      min_slices: 60
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.imaging.frames import series_frames
from daemon.imaging.loader import SeriesFiles

Orientation = Literal["axial", "coronal", "sagittal", "any"]
CONTRAST_WORDS = r"post|gad|\bgd\b|\+c\b|\bc\+|contrast|\bce\b|enh|portal|venous|arterial|\bpv\b"
NO_CONTRAST_WORDS = r"\bpre\b|pre-?contrast|pre-?gd|without|w/o|non-?contrast|\bnc\b|native|sans"


class SeriesSpec(BaseModel):
    """Hard requirements for a pipeline's input series (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: list[str] = Field(default_factory=list)  # any of these
    image_type: list[str] = Field(default_factory=list)  # all of these values present
    image_type_absent: list[str] = Field(default_factory=lambda: ["LOCALIZER"])  # none of these
    description_regex: str | None = None  # re.search, case-insensitive, on SeriesDescription
    description_exclude_regex: str | None = None
    prefer_description_regex: str | None = None  # not required: adds to the score
    contrast: bool | None = None  # ContrastBolusAgent set (or the description says so)
    acquisition_3d: bool | None = None  # MRAcquisitionType 3D (MR only; other modalities pass)
    slice_thickness_mm: tuple[float, float] | None = None  # [min, max], SliceThickness or spacing
    orientation: Orientation = "any"
    min_slices: int = Field(1, ge=1)

    @field_validator("description_regex", "description_exclude_regex", "prefer_description_regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return v

    @field_validator("modality", "image_type", "image_type_absent")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [s.upper() for s in v]

    @model_validator(mode="after")
    def _range(self) -> SeriesSpec:
        if self.slice_thickness_mm is not None and self.slice_thickness_mm[0] > self.slice_thickness_mm[1]:
            raise ValueError("slice_thickness_mm is [min, max] with min <= max")
        return self


@dataclass(frozen=True)
class SeriesFacts:
    """What selection reads from a series' headers."""

    series_instance_uid: str
    series_number: int
    modality: str
    description: str
    image_type: tuple[str, ...]
    slices: int
    slice_thickness_mm: float | None
    orientation: str  # axial | coronal | sagittal | unknown
    acquisition_3d: bool | None
    contrast: bool

    @staticmethod
    def of(series: SeriesFiles) -> SeriesFacts:
        ds = series.first
        frames = series_frames(series)
        main = [f for f in frames if not f.is_localizer] or frames
        thickness = main[0].thickness if main else None
        if main and len(main) > 1:
            depths = np.sort([float(f.position @ main[0].normal) for f in main])
            gaps = np.diff(depths)
            gaps = gaps[gaps > 1e-3]
            if thickness is None and gaps.size:
                thickness = float(np.median(gaps))
        types: list[str] = []
        for f in frames:
            types += [t for t in f.image_type if t not in types]
        mr3d = str(ds.get("MRAcquisitionType", "")).upper()
        desc = str(ds.get("SeriesDescription", ""))
        agent = str(ds.get("ContrastBolusAgent", "")).strip()
        return SeriesFacts(
            series_instance_uid=series.series_instance_uid,
            series_number=int(ds.get("SeriesNumber", 0) or 0),
            modality=series.modality.upper(),
            description=desc,
            image_type=tuple(types),
            slices=len(main),
            slice_thickness_mm=thickness,
            orientation=_orientation(main[0].normal) if main else "unknown",
            acquisition_3d=(mr3d == "3D") if mr3d else None,
            contrast=bool(agent) or _says_contrast(desc),
        )


def _says_contrast(description: str) -> bool:
    """The description says contrast was given (used when ContrastBolusAgent is empty)."""
    if re.search(NO_CONTRAST_WORDS, description, re.IGNORECASE):
        return False
    return re.search(CONTRAST_WORDS, description, re.IGNORECASE) is not None


def _orientation(normal: np.ndarray[Any, Any]) -> str:
    axis = int(np.argmax(np.abs(normal)))
    return ("sagittal", "coronal", "axial")[axis]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    wanted: str
    found: str

    def __str__(self) -> str:
        return f"{self.name}: wanted {self.wanted}, found {self.found}"


@dataclass(frozen=True)
class Candidate:
    facts: SeriesFacts
    checks: tuple[Check, ...]
    score: float

    @property
    def suitable(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)


@dataclass(frozen=True)
class Selection:
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]  # ranked: suitable first by score

    @property
    def series_instance_uid(self) -> str | None:
        return self.chosen.facts.series_instance_uid if self.chosen else None

    def explain(self) -> str:
        lines = []
        if self.chosen is None:
            lines.append("no suitable series" + ("" if self.candidates else ": the study has no image series"))
        else:
            f = self.chosen.facts
            lines.append(f"chose series {f.series_number} '{f.description}' ({f.series_instance_uid}), "
                         f"score {self.chosen.score:.1f}: " + "; ".join(f"{c.name} {c.wanted} ok ({c.found})" for c in self.chosen.checks))
        for c in self.candidates:
            if c is self.chosen:
                continue
            head = f"series {c.facts.series_number} '{c.facts.description}'"
            if c.suitable:
                lines.append(f"  {head}: suitable, lower score {c.score:.1f}")
            else:
                lines.append(f"  {head}: " + "; ".join(str(x) for x in c.failed))
        return "\n".join(lines)


def _check_list(spec: SeriesSpec, f: SeriesFacts) -> list[Check]:
    checks: list[Check] = []
    if spec.modality:
        checks.append(Check("modality", f.modality in spec.modality, "/".join(spec.modality), f.modality or "none"))
    for want in spec.image_type:
        checks.append(Check("image type", want in f.image_type, f"{want} present", "\\".join(f.image_type) or "none"))
    for bad in spec.image_type_absent:
        checks.append(Check("image type", bad not in f.image_type, f"no {bad}", "\\".join(f.image_type) or "none"))
    if spec.description_regex:
        ok = re.search(spec.description_regex, f.description, re.IGNORECASE) is not None
        checks.append(Check("description", ok, f"matching /{spec.description_regex}/", repr(f.description)))
    if spec.description_exclude_regex:
        ok = re.search(spec.description_exclude_regex, f.description, re.IGNORECASE) is None
        checks.append(Check("description", ok, f"not matching /{spec.description_exclude_regex}/", repr(f.description)))
    if spec.contrast is not None:
        checks.append(Check("contrast", f.contrast == spec.contrast, "with contrast" if spec.contrast else "without contrast",
                            "with contrast" if f.contrast else "no contrast"))
    if spec.acquisition_3d is not None and f.modality == "MR":
        found = {True: "3D", False: "2D", None: "not stated"}[f.acquisition_3d]
        checks.append(Check("acquisition", f.acquisition_3d == spec.acquisition_3d, "3D" if spec.acquisition_3d else "2D", found))
    if spec.slice_thickness_mm is not None:
        lo, hi = spec.slice_thickness_mm
        t = f.slice_thickness_mm
        checks.append(Check("slice thickness", t is not None and lo <= t <= hi, f"{lo:g}-{hi:g} mm",
                            "unknown" if t is None else f"{t:.3g} mm"))
    if spec.orientation != "any":
        checks.append(Check("orientation", f.orientation == spec.orientation, spec.orientation, f.orientation))
    checks.append(Check("slices", f.slices >= spec.min_slices, f">= {spec.min_slices}", str(f.slices)))
    return checks


def _score(spec: SeriesSpec, f: SeriesFacts) -> float:
    score = min(f.slices, 1000) / 10.0
    if f.slice_thickness_mm:
        score += 10.0 / f.slice_thickness_mm
    if f.acquisition_3d:
        score += 5.0
    if "ORIGINAL" in f.image_type:
        score += 5.0
    if spec.prefer_description_regex and re.search(spec.prefer_description_regex, f.description, re.IGNORECASE):
        score += 50.0
    return score + f.series_number / 1000.0  # later series win ties


def select_series(spec: SeriesSpec, series: Mapping[str, SeriesFiles] | list[SeriesFacts]) -> Selection:
    """Check every series against the spec and choose the best suitable one (or none)."""
    facts = list(series) if isinstance(series, list) else [SeriesFacts.of(s) for s in series.values()]
    cands = [Candidate(f, tuple(_check_list(spec, f)), _score(spec, f)) for f in facts]
    cands.sort(key=lambda c: (not c.suitable, -c.score, len(c.failed)))
    chosen = cands[0] if cands and cands[0].suitable else None
    return Selection(chosen, tuple(cands))
