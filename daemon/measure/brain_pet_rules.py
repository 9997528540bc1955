"""rules/amino_pet_route.yaml, validated: the brain PET route's tracer recognition, setting,
atlas registration, reference regions, lesion region, dynamic FET and dual-phase FDG reading
(the cut-offs stay in rules/amino_pet.yaml)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.criteria.params import CitationModel

Tracer = Literal["FDOPA", "FET", "FDG"]
RULES_NAME = "amino_pet_route"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from exc
    return v


class TracerRule(_Model):
    codes: tuple[str, ...] = ()
    names: str

    _check = field_validator("names")(_regex)


class SettingRules(_Model):
    by_description: dict[str, str]
    default_by_tracer: dict[Tracer, str]

    @field_validator("by_description")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern in v.values():
            _regex(pattern)
        return v


class Cited(_Model):
    citation: CitationModel


class Uptake(_Model):
    grey: Decimal = Field(ge=0)
    white: Decimal = Field(ge=0)
    striatum: Decimal = Field(ge=0)


class AtlasRules(Cited):
    grid_mm: Decimal = Field(gt=0)
    iterations: int = Field(gt=0)
    sampling: Decimal = Field(gt=0, le=1)
    uptake: dict[Tracer, Uptake]
    max_scale_change: Decimal = Field(gt=0, lt=1)
    min_brain_correlation: Decimal = Field(ge=-1, le=1)
    min_axial_extent_mm: Decimal = Field(gt=0)
    max_axial_extent_mm: Decimal = Field(gt=0)


class EllipsoidRule(_Model):
    name: str
    centre_mni: tuple[Decimal, Decimal, Decimal]  # RAS mm, right hemisphere (x > 0); mirrored for the left
    radii_mm: tuple[Decimal, Decimal, Decimal]


class StriatumRules(Cited):
    ellipsoids: tuple[EllipsoidRule, ...] = Field(min_length=1)


class NormalBrainRules(Cited):
    method: Literal["hemisphere_slab", "mirrored"]
    slab_mm: Decimal = Field(gt=0)
    mirrored_margin_mm: Decimal = Field(ge=0)
    lesion_exclusion_mm: Decimal = Field(ge=0)
    striatum_exclusion_mm: Decimal = Field(ge=0)


class WhiteMatterRules(Cited):
    probability_min: Decimal = Field(gt=0, le=1)
    erode_mm: Decimal = Field(ge=0)


class GreyMatterRules(Cited):
    mni_z_mm: tuple[Decimal, Decimal]
    probability_min: Decimal = Field(gt=0, le=1)


class RegionRules(_Model):
    brain_probability_min: Decimal = Field(gt=0, le=1)
    striatum: StriatumRules
    normal_brain: NormalBrainRules
    white_matter: WhiteMatterRules
    grey_matter_thalamus_level: GreyMatterRules


class FromMr(Cited):
    route: str
    window_days: int = Field(ge=0)


class HotFocus(Cited):
    factor: Decimal = Field(gt=0)
    reference: Literal["normal_brain", "white_matter"] = "normal_brain"
    exclude: tuple[Literal["striatum", "grey_matter"], ...] = ()


class HottestFocusRules(_Model):
    FET: HotFocus
    FDOPA: HotFocus
    FDG: HotFocus
    min_volume_ml: Decimal = Field(ge=0)

    def for_tracer(self, tracer: Tracer) -> HotFocus:
        rule: HotFocus = getattr(self, tracer)
        return rule


class LesionRules(_Model):
    from_mr: FromMr
    hottest_focus: HottestFocusRules


class DynamicRules(Cited):
    sum_window_min: tuple[Decimal, Decimal]
    slope_window_min: tuple[Decimal, Decimal]


class DualPhaseRules(Cited):
    min_interval_min: Decimal = Field(ge=0)
    max_interval_min: Decimal = Field(gt=0)  # two studies further apart are not one dual-phase examination


class BrainPetRules(_Model):
    tracers: dict[Tracer, TracerRule]
    setting: SettingRules
    suv: Cited
    atlas: AtlasRules
    regions: RegionRules
    lesion: LesionRules
    dynamic: DynamicRules
    dual_phase: DualPhaseRules
