"""Radiomics features per lesion with PyRadiomics, from a validated settings profile.

The profiles live in rules/radiomics.yaml (spec: ../shared/criteria/radiomics.md
section 2); this module holds their schema and the extraction, no file I/O
(daemon/measure/radiomics_io.py reads the rules and writes the CSV).

Features are exported for research only (radionecrosis vs progression); no
classifier is applied -- the seed's was built on 20 patients (radiomics.md section 1).

Extraction runs on a crop around the lesion. Image-wide z-score normalisation is
therefore done here, over the whole image, before cropping, which is what
PyRadiomics' `normalize` does on the full image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any, Literal

import numpy as np
import SimpleITK as _sitk
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.measure.lesions import crop
from daemon.measure.registration import to_sitk
from daemon.volume import Volume

log = logging.getLogger(__name__)

sitk: Any = _sitk

FEATURE_CLASSES = ("shape", "shape2D", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
IMAGE_TYPES = ("Original", "LoG", "Wavelet", "Square", "SquareRoot", "Logarithm", "Exponential",
               "Gradient", "LBP2D", "LBP3D")
_CROP_MARGIN = 8  # voxels kept around the lesion: PyRadiomics pads 5 (padDistance) when resampling


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractionSetting(_Strict):
    """The PyRadiomics settings Nadir allows (names as PyRadiomics spells them)."""

    resampledPixelSpacing: tuple[float, float, float] | None = None  # noqa: N815
    interpolator: Literal["sitkNearestNeighbor", "sitkLinear", "sitkBSpline"] = "sitkBSpline"
    normalize: bool = False
    normalizeScale: float = Field(default=1.0, gt=0)  # noqa: N815
    binCount: int | None = Field(default=None, gt=1)  # noqa: N815
    binWidth: float | None = Field(default=None, gt=0)  # noqa: N815
    resegmentRange: tuple[float, float] | None = None  # noqa: N815
    resegmentMode: Literal["absolute", "relative", "sigma"] = "absolute"  # noqa: N815
    label: int = 1
    force2D: bool = False  # noqa: N815
    additionalInfo: bool = True  # noqa: N815
    voxelArrayShift: float = 0.0  # noqa: N815
    minimumROIDimensions: int = Field(default=2, ge=1, le=3)  # noqa: N815
    minimumROISize: int | None = None  # noqa: N815
    geometryTolerance: float | None = None  # noqa: N815
    padDistance: int = 5  # noqa: N815

    @model_validator(mode="after")
    def _one_binning(self) -> ExtractionSetting:
        if self.binCount is not None and self.binWidth is not None:
            raise ValueError("give binCount or binWidth, not both")
        return self


def _original_only() -> dict[str, dict[str, Any]]:
    return {"Original": {}}


class RadiomicsProfile(_Strict):
    description: str = ""
    source: str  # where these settings come from (spec section / paper)
    setting: ExtractionSetting
    image_types: dict[str, dict[str, Any]] = Field(default_factory=_original_only)
    feature_classes: dict[str, list[str]]

    @model_validator(mode="after")
    def _known_names(self) -> RadiomicsProfile:
        for name in self.feature_classes:
            if name not in FEATURE_CLASSES:
                raise ValueError(f"unknown feature class {name!r}; known: {', '.join(FEATURE_CLASSES)}")
        for name in self.image_types:
            if name not in IMAGE_TYPES:
                raise ValueError(f"unknown image type {name!r}; known: {', '.join(IMAGE_TYPES)}")
        return self


class RadiomicsRules(_Strict):
    citation: str
    default_profile: str
    profiles: dict[str, RadiomicsProfile]

    @model_validator(mode="after")
    def _default_exists(self) -> RadiomicsRules:
        if self.default_profile not in self.profiles:
            raise ValueError(f"default_profile {self.default_profile!r} is not one of the profiles")
        return self

    def profile(self, name: str | None = None) -> RadiomicsProfile:
        return self.profiles[name or self.default_profile]


def profile_hash(profile: RadiomicsProfile) -> str:
    """A short stable hash of the settings, written with every feature row."""
    text = json.dumps(profile.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


MISSING_RADIOMICS = (
    "PyRadiomics is not installed: the radiomics step needs the extra nadir[radiomics] "
    "(pip install numpy setuptools wheel versioneer; "
    "pip install --no-build-isolation 'nadir[radiomics]')"
)


def _radiomics() -> Any:
    """PyRadiomics, imported only by the radiomics step (an optional extra)."""
    try:
        import radiomics
        from radiomics import featureextractor  # noqa: F401  (the submodule, loaded here)
    except ImportError as exc:
        raise ImportError(MISSING_RADIOMICS) from exc
    return radiomics


def pyradiomics_version() -> str:
    return str(_radiomics().__version__)


def _extractor(profile: RadiomicsProfile) -> Any:
    radiomics = _radiomics()
    featureextractor = radiomics.featureextractor

    radiomics.setVerbosity(logging.ERROR)
    settings = profile.setting.model_dump(exclude_none=True)
    settings["normalize"] = False  # done here, on the whole image (see module docstring)
    settings.pop("normalizeScale", None)
    if profile.setting.resampledPixelSpacing is not None:
        settings["resampledPixelSpacing"] = list(profile.setting.resampledPixelSpacing)
    if profile.setting.resegmentRange is not None:
        settings["resegmentRange"] = list(profile.setting.resegmentRange)
    extractor = featureextractor.RadiomicsFeatureExtractor(**settings)
    extractor.enabledImagetypes = {k: dict(v) for k, v in profile.image_types.items()}
    extractor.enabledFeatures = {k: list(v) for k, v in profile.feature_classes.items()}
    return extractor


def _normalised(image: Volume, setting: ExtractionSetting) -> NDArray[np.float64]:
    arr = np.asarray(image.array, dtype=np.float64)
    if not setting.normalize:
        return arr
    sd = float(arr.std())
    if sd == 0:
        return np.zeros_like(arr)
    return (arr - float(arr.mean())) / sd * setting.normalizeScale


def _box(mask: NDArray[np.bool_], shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - _CROP_MARGIN, 0)
    hi = np.minimum(idx.max(axis=0) + _CROP_MARGIN + 1, np.array(shape))
    return slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2]))


def extract_features(image: Volume, mask: NDArray[np.bool_], profile: RadiomicsProfile) -> dict[str, float]:
    """PyRadiomics features of one lesion (mask on the image's grid), numeric values only.

    Keys are PyRadiomics' names (e.g. original_shape_Sphericity). Empty when the
    lesion is too small for PyRadiomics (it says why at DEBUG).
    """
    if not mask.any():
        return {}
    box = _box(mask, image.shape)
    sub = crop(image.with_array(_normalised(image, profile.setting)), box)
    label = profile.setting.label
    mask_img = to_sitk(sub.with_array(np.where(mask[box], label, 0).astype(np.uint8)))
    try:
        result = _extractor(profile).execute(to_sitk(sub), mask_img, label=label)
    except ValueError as exc:  # PyRadiomics rejects masks that are too small or flat
        log.debug("radiomics skipped: %s", exc)
        return {}
    out: dict[str, float] = {}
    for key, value in result.items():
        if key.startswith("diagnostics_"):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):  # a NaN feature (e.g. a texture of a one-grey-level lesion) is left out
            out[key] = number
    return out
