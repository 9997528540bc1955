"""The validated parameter sets of the rules files (rules/<criterion>.yaml).

Every clinical number lives in a rules file with its citation; these models give
each one a type and a range. Numbers are `Decimal` so a threshold keeps the exact
decimal the file wrote (0.68 is 17/25, not a binary fraction).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.criteria.assessment import Citation


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitationModel(_Model):
    text: str = Field(min_length=1)  # authors, journal, year, section or table
    doi: str | None = None

    def to_citation(self) -> Citation:
        return Citation(text=self.text, doi=self.doi)


class Range(_Model):
    low: Decimal
    high: Decimal

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


# --- RECIST 1.1 -------------------------------------------------------------------


class RecistParams(_Model):
    citation: CitationModel
    min_ld_mm: Decimal = Field(gt=0)
    slice_multiplier: Decimal = Field(gt=0)
    min_ld_cxr_mm: Decimal = Field(gt=0)
    node_target_sa_mm: Decimal = Field(gt=0)
    node_pathologic_sa_mm: Decimal = Field(gt=0)
    max_targets: int = Field(ge=1)
    max_targets_per_organ: int = Field(ge=1)
    pr_pct_vs_baseline: Decimal = Field(lt=0, ge=-100)
    pd_pct_vs_nadir: Decimal = Field(gt=0)
    pd_abs_mm: Decimal = Field(ge=0)
    too_small_default_mm: Decimal = Field(gt=0)
    confirm_min_weeks: Decimal = Field(ge=0)
    same_organ: dict[str, str] = Field(default_factory=dict)  # site -> organ (paired organs)


# --- RANO-BM ----------------------------------------------------------------------


class NearThreshold(_Model):
    citation: CitationModel
    ld_mm: Range
    increase_mm: Range


class Volumetric(_Model):
    citation: CitationModel
    exploratory: bool = True
    vol_pr_pct: Decimal = Field(lt=0, ge=-100)
    vol_pd_pct: Decimal = Field(gt=0)


class TreatmentQuestion(_Model):
    en: str = Field(min_length=1)
    fr: str = Field(min_length=1)


class TreatmentEffect(_Model):
    citation: CitationModel
    window_months: Decimal = Field(gt=0)
    question: TreatmentQuestion


class RanoBmParams(_Model):
    citation: CitationModel
    min_ld_mm: Decimal = Field(gt=0)
    min_perp_mm: Decimal = Field(gt=0)
    slice_multiplier: Decimal = Field(gt=0)
    max_targets: int = Field(ge=1)
    pr_pct_vs_baseline: Decimal = Field(lt=0, ge=-100)
    pd_pct_vs_nadir: Decimal = Field(gt=0)
    pd_single_lesion_abs_mm: Decimal = Field(ge=0)
    too_small_default_mm: Decimal = Field(gt=0)
    confirm_min_weeks: Decimal = Field(ge=0)
    steroid_physiological_max_mg_day: Decimal = Field(ge=0)
    steroid_reference: Literal["baseline", "previous"] = "baseline"
    single_lesion_reference: Literal["nadir_timepoint", "lesion_smallest"] = "nadir_timepoint"
    near_threshold: NearThreshold
    volumetric: Volumetric
    treatment_effect: TreatmentEffect


# --- PERCIST 1.0, SUV/SUL, TMTV -----------------------------------------------------


class PercistParams(_Model):
    citation: CitationModel
    sulpeak_sphere_cm3: Decimal = Field(gt=0)
    liver_voi_diameter_cm: Decimal = Field(gt=0)
    measurable_liver_factor: Decimal = Field(gt=0)
    measurable_liver_sd_mult: Decimal = Field(ge=0)
    blood_pool_factor: Decimal = Field(gt=0)
    blood_pool_sd_mult: Decimal = Field(ge=0)
    pmr_pct: Decimal = Field(lt=0, ge=-100)
    pmr_abs_sul: Decimal = Field(le=0)
    pmd_pct: Decimal = Field(gt=0)
    pmd_abs_sul: Decimal = Field(ge=0)
    pmd_inclusive: bool = False
    tlg_pmd_pct: Decimal = Field(gt=0)
    max_lesions: int = Field(ge=1)
    max_lesions_per_organ: int = Field(ge=1)
    liver_stability_pct: Decimal = Field(gt=0)
    liver_stability_abs_sul: Decimal = Field(gt=0)
    uptake_time_diff_max_min: Decimal = Field(gt=0)
    uptake_window_min: Range


class LbmCoefficients(_Model):
    numerator: Decimal = Field(gt=0)  # 9270 (x W)
    constant: Decimal = Field(gt=0)  # 6680 / 8780
    bmi_factor: Decimal = Field(gt=0)  # 216 / 244


class JamesCoefficients(_Model):
    weight_factor: Decimal = Field(gt=0)  # 1.10 / 1.07
    ratio_factor: Decimal = Field(gt=0)  # 128 / 148 (x (W/H[cm])^2 x 10^4)


class SuvParams(_Model):
    citation: CitationModel
    lbm_formula: Literal["janmahasatian", "james"] = "janmahasatian"
    janmahasatian_citation: CitationModel
    janmahasatian_male: LbmCoefficients
    janmahasatian_female: LbmCoefficients
    james_citation: CitationModel
    james_male: JamesCoefficients
    james_female: JamesCoefficients
    accepted_units: tuple[str, ...] = ("BQML", "GML")
    required_corrections: tuple[str, ...] = ("ATTN", "DECY")
    accepted_decay_corrections: tuple[str, ...] = ("START", "ADMIN")
    max_uptake_s: Decimal = Field(gt=0)
    weight_range_kg: Range


class TmtvParams(_Model):
    citation: CitationModel
    suv_threshold: Decimal = Field(gt=0)
    connectivity: Literal[6, 18, 26] = 26


class PercistRules(_Model):
    percist: PercistParams
    suv: SuvParams
    tmtv: TmtvParams


# --- Chun ---------------------------------------------------------------------------


class ChunTransition(_Model):
    baseline: int
    followup: int
    response: Literal["optimal", "incomplete", "none"]
    flags: tuple[str, ...] = ()


class ChunGroup1Rule(_Model):
    """Group 1 proposed when every condition holds (homogeneous, hypoattenuating, sharp, no rim)."""

    hu_sd_max: Decimal = Field(gt=0)
    lesion_to_liver_hu_max: Decimal
    interface_hu_per_mm_min: Decimal = Field(gt=0)
    rim_vs_liver_hu_max: Decimal


class ChunGroup3Rule(_Model):
    """Group 3 proposed when both hold (heterogeneous, thick ill-defined interface)."""

    hu_sd_min: Decimal = Field(gt=0)
    interface_hu_per_mm_max: Decimal = Field(gt=0)


class ChunProposal(_Model):
    """Thresholds that turn measured features into a proposed group: engineering defaults (chun.md §4)."""

    group1: ChunGroup1Rule
    group3: ChunGroup3Rule

    @model_validator(mode="after")
    def _exclusive(self) -> ChunProposal:
        if self.group1.hu_sd_max >= self.group3.hu_sd_min:
            raise ValueError("group1.hu_sd_max must be below group3.hu_sd_min (a lesion is never both)")
        return self


class ChunFeatureShells(_Model):
    """Where the features are measured, mm from the lesion border: engineering defaults (chun.md §4)."""

    rim_mm: Decimal = Field(gt=0)
    interface_mm: Decimal = Field(gt=0)
    liver_mm: tuple[Decimal, Decimal]

    @model_validator(mode="after")
    def _ordered(self) -> ChunFeatureShells:
        if not 0 <= self.liver_mm[0] < self.liver_mm[1]:
            raise ValueError("liver_mm is [from, to] mm outside the border, 0 <= from < to")
        return self


class ChunParams(_Model):
    citation: CitationModel
    groups: tuple[int, ...]
    transitions: tuple[ChunTransition, ...]
    aggregate_patient: None = None  # no patient-level rule is published
    features: ChunFeatureShells  # where the features are measured
    proposal: ChunProposal  # the assisting classifier's thresholds (no published cut-off exists)

    @model_validator(mode="after")
    def _complete(self) -> ChunParams:
        pairs = {(t.baseline, t.followup) for t in self.transitions}
        want = {(a, b) for a in self.groups for b in self.groups}
        if pairs != want:
            raise ValueError(f"transitions must list each pair of groups once; missing {sorted(want - pairs)}")
        if len(pairs) != len(self.transitions):
            raise ValueError("a transition is listed twice")
        return self


# --- CT perfusion -------------------------------------------------------------------


class PlausibleRange(_Model):
    lesion: Range
    healthy: Range


class Performance(_Model):
    sensitivity_pct: Decimal | None = Field(default=None, ge=0, le=100)
    specificity_pct: Decimal | None = Field(default=None, ge=0, le=100)
    ppv_pct: Decimal | None = Field(default=None, ge=0, le=100)
    npv_pct: Decimal | None = Field(default=None, ge=0, le=100)
    accuracy_pct: Decimal | None = Field(default=None, ge=0, le=100)
    auc: Decimal | None = Field(default=None, ge=0, le=1)


class MaxSlopeParams(_Model):
    citation: CitationModel
    tissue_density_g_ml: Decimal = Field(gt=0)
    min_portal_frames: int = Field(ge=1)


class PerfusionParams(_Model):
    citation: CitationModel
    classify_on: str = "BF"
    bf_ratio_cutoff: Decimal = Field(gt=0)
    at_threshold_margin: Decimal = Field(ge=0)
    min_lesion_diameter_mm: Decimal = Field(ge=0)
    validated_methods: tuple[str, ...]
    parameters: tuple[str, ...]
    performance: Performance
    plausible_ranges: dict[str, PlausibleRange] = Field(default_factory=dict)
    max_slope: MaxSlopeParams


# --- amino-acid PET -----------------------------------------------------------------


class Condition(_Model):
    quantity: str
    op: Literal["ge", "gt", "lt", "le"]
    value: Decimal
    trigger: str  # the name reported when this condition fires; {value} is replaced


class CutOff(_Model):
    label: str  # first author, as the report names it
    tracer: str
    settings: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()  # any one fires -> positive
    positive: str | None = None
    negative: str | None = None
    at_threshold_margin: Decimal = Field(default=Decimal(0), ge=0)
    # true: the source validated the conditions together (its Se/Sp are the combined rule's), so a
    # missing input makes the rule not evaluable instead of applying the remaining conditions alone
    requires_all_inputs: bool = False
    performance: Performance = Performance()
    citation: CitationModel
    verified: str  # what of the source was checked


class VisualScale(_Model):
    citation: CitationModel
    scores: dict[str, int]  # reader's wording -> score
    positive_min_score: int | None = None  # not stated in the source: a site sets it


class AminoPetParams(_Model):
    setting_names: dict[str, str]
    cutoffs: dict[str, CutOff]
    visual_scale: VisualScale


# --- prognostic scores --------------------------------------------------------------


class Band(_Model):
    gt: Decimal | None = None
    ge: Decimal | None = None
    lt: Decimal | None = None
    le: Decimal | None = None
    points: Decimal

    def holds(self, x: Decimal) -> bool:
        return not (
            (self.gt is not None and not x > self.gt)
            or (self.ge is not None and not x >= self.ge)
            or (self.lt is not None and not x < self.lt)
            or (self.le is not None and not x <= self.le)
        )


class Factor(_Model):
    bands: tuple[Band, ...] = ()
    categories: dict[str, Decimal] = Field(default_factory=dict)  # value (true/false/name) -> points

    @model_validator(mode="after")
    def _one_kind(self) -> Factor:
        if bool(self.bands) == bool(self.categories):
            raise ValueError("a factor has either bands or categories")
        return self


class ScoreClass(_Model):
    gt: Decimal | None = None
    ge: Decimal | None = None
    lt: Decimal | None = None
    le: Decimal | None = None
    label: str | int
    median_os_months: Decimal | dict[str, Decimal] | None = None

    def holds(self, x: Decimal) -> bool:
        return Band(gt=self.gt, ge=self.ge, lt=self.lt, le=self.le, points=Decimal(0)).holds(x)


class PointsScore(_Model):
    citation: CitationModel
    factors: dict[str, Factor]
    classes: tuple[ScoreClass, ...] = ()
    class_key: str = "class"
    median_by: str | None = None  # input naming which median column applies (e.g. primary)
    requires: dict[str, str] = Field(default_factory=dict)  # input -> required value
    note: str = ""


class RpaParams(_Model):
    citation: CitationModel
    kps_min: Decimal  # class I and II need KPS >= this; below -> III
    age_class1_max_exclusive: Decimal
    age_inclusive: bool = False  # True: age == max still class I (the seed's reading)
    median_os_months: dict[str, Decimal]


class PrognosticParams(_Model):
    rpa_rtog: RpaParams
    scores: dict[str, PointsScore]
