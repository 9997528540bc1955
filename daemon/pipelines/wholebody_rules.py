"""rules/wholebody_fdg.yaml, validated: the whole-body FDG route's lesion finder, physiological
uptake, liver reference placement, PET/CT pairing, coverage and body composition (PERCIST,
SUV and the TMTV threshold stay in rules/percist.yaml)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.criteria.params import CitationModel, PercistRules
from daemon.criteria.rules import load_model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LesionFinderRules(_Model):
    citation: CitationModel
    method: Literal["absolute", "percent_of_max"] = "absolute"
    percent_of_max: Decimal = Field(gt=0, lt=100)
    min_volume_ml: Decimal = Field(ge=0)


class OrganRule(_Model):
    """Where a hot component must lie (fractions of the trunk from its top; mm from the midline)."""

    trunk_from_top: tuple[Decimal, Decimal]
    lateral_mm: tuple[Decimal, Decimal] | None = None
    posterior: bool = False
    min_ml: Decimal = Field(ge=0)


class PhysiologicalRules(_Model):
    citation: CitationModel
    neck_search_fraction: Decimal = Field(gt=0, le=1)
    heart: OrganRule
    kidney: OrganRule
    bladder: OrganRule


class LiverRules(_Model):
    citation: CitationModel
    hu_window: tuple[Decimal, Decimal]
    smoothing_mm: Decimal = Field(ge=0)
    min_ml: Decimal = Field(ge=0)


class CompositionRules(_Model):
    citation: CitationModel
    fat_hu: tuple[Decimal, Decimal]
    muscle_hu: tuple[Decimal, Decimal]
    body_hu_min: Decimal


class SiteRules(_Model):
    citation: CitationModel
    lung_hu_max: Decimal
    bone_hu_min: Decimal
    ring_voxels: int = Field(ge=1, le=5)
    min_ring_fraction: Decimal = Field(gt=0, le=1)
    nodal_band_mm: Decimal = Field(ge=0)


class PairingRules(_Model):
    citation: CitationModel
    max_minutes_apart: Decimal = Field(gt=0)


class CoverageRules(_Model):
    citation: CitationModel
    min_axial_extent_mm: Decimal = Field(gt=0)


class DmaxRules(_Model):
    citation: CitationModel
    bsa_formula: Literal["mosteller"] = "mosteller"
    mosteller_divisor: Decimal = Field(gt=0)


class WholeBodyRules(_Model):
    lesion_finder: LesionFinderRules
    physiological: PhysiologicalRules
    liver_reference: LiverRules
    body_composition: CompositionRules
    lesion_sites: SiteRules
    pairing: PairingRules
    coverage: CoverageRules
    dmax: DmaxRules


def load(rules_dir: Path) -> tuple[WholeBodyRules, PercistRules]:
    return (load_model(WholeBodyRules, rules_dir / "wholebody_fdg.yaml"),
            load_model(PercistRules, rules_dir / "percist.yaml"))
