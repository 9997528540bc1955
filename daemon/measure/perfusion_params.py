"""The perfusion method's parameters (rules/perfusion_dynamic.yaml).

Typed and validated when loaded; a wrong key or value is refused with file and line
(`daemon.criteria.rules.load_model`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.criteria.params import CitationModel


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MotionParams(_Model):
    rigid: bool = True
    deformable: Literal["auto", "off", "always"] = "auto"
    deformable_min_gain: float = Field(default=0.02, ge=0)
    max_translation_mm: float = Field(default=40.0, gt=0)
    coarse_mm: float = Field(default=4.0, gt=0)  # registered on frames resampled to voxels this size
    iterations: int = Field(default=200, ge=1)  # the rigid optimiser's at most, per frame
    interpolation: Literal["quadratic_bspline", "cubic_bspline", "linear"] = "quadratic_bspline"  # resampling


class InputParams(_Model):
    aorta_min_peak_hu: float = Field(gt=0)
    portal_min_peak_hu: float = Field(gt=0)
    portal_min_delay_s: float = Field(ge=0)
    spleen_min_ml: float = Field(gt=0)
    spleen_min_peak_hu: float = Field(gt=0)
    min_region_ml: float = Field(gt=0)
    core_fraction: float = Field(gt=0, le=1)
    baseline_hu_range: tuple[float, float] = (-100.0, 200.0)


class RegionParams(_Model):
    lesion_erosion_voxels: int = Field(ge=0)
    healthy_min_distance_mm: float = Field(ge=0)
    healthy_slab_margin_mm: float = Field(ge=0)
    healthy_min_area_cm2: float = Field(ge=0)
    vessel_peak_percentile: float = Field(gt=0, le=100)
    vessel_hu: float
    liver_max_hpi_pct: float = Field(gt=0, le=100)
    liver_min_tlp: float = Field(ge=0)
    input_margin_mm: float = Field(default=0.0, ge=0)


class DynamicParams(_Model):
    citation: CitationModel
    min_frames: int = Field(ge=3)
    baseline_frames: int = Field(ge=1)
    min_baseline_gap_s: float = Field(ge=0)
    slope_window_frames: int = Field(ge=2, le=9)
    spatial_sigma_mm: float = Field(ge=0)
    statistic: Literal["roi_curve", "map_mean"]
    motion: MotionParams
    inputs: InputParams
    regions: RegionParams
