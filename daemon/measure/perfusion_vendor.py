"""Vendor perfusion maps (perfusion.md §5): which series is which map, from its header alone.

Pure: a header (pydicom Dataset) and the rules (rules/perfusion_vendor.yaml) in, a `MapSeries`
(parameter, method, software) or a `MapRefused` (why) or None (not a map) out. A series is a
map when its Manufacturer matches a vendor of the rules and one of its texts (SeriesDescription,
else ImageType, DerivationDescription, ImageComments) matches one of that vendor's parameter
patterns, tried most specific first (HABF before BF: "hepatic arterial blood flow" is not BF);
or when its ImageType value 3 is PERFUSION and value 4 names a parameter. A colour-rendered map
(PhotometricInterpretation RGB, PALETTE COLOR...) holds no values: refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydicom.dataset import Dataset

from daemon.criteria.params import CitationModel

# most specific first: the first parameter whose pattern matches names the map
PARAMETERS = ("HABF", "HPBF", "HAF", "BF", "BV", "MTT", "TTP", "PS")
Method = Literal["deconvolution", "max_slope", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _regex(value: str) -> str:
    re.compile(value)
    return value


class Vendor(_Model):
    name: str
    source: str = Field(min_length=1)  # the public document the naming comes from
    manufacturer: str
    method: Method
    maps: dict[str, str]

    @field_validator("manufacturer")
    @classmethod
    def _manufacturer(cls, v: str) -> str:
        return _regex(v)

    @field_validator("maps")
    @classmethod
    def _maps(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            if name not in PARAMETERS:
                raise ValueError(f"unknown parameter {name!r} (known: {', '.join(PARAMETERS)})")
            _regex(pattern)
        return v


class VendorRules(_Model):
    citation: CitationModel
    refused_photometric: tuple[str, ...]
    units: dict[str, str]
    method_patterns: dict[Literal["deconvolution", "max_slope"], str]
    vendors: tuple[Vendor, ...]
    image_type_value3: str = "PERFUSION"

    @field_validator("units")
    @classmethod
    def _units(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [p for p in PARAMETERS if p not in v]
        if missing:
            raise ValueError(f"no unit for {', '.join(missing)}")
        return v


@dataclass(frozen=True)
class MapSeries:
    parameter: str  # one of PARAMETERS
    unit: str  # UCUM
    method: Method
    vendor: str  # the rules' vendor name ("" for an ImageType-only match)
    software: str  # Manufacturer, model and software versions as the header gives them


@dataclass(frozen=True)
class MapRefused:
    parameter: str
    reason: str


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        return "\\".join(str(v) for v in value)
    return str(value)


def software(ds: Dataset) -> str:
    parts = [_text(ds, k) for k in ("Manufacturer", "ManufacturerModelName", "SoftwareVersions")]
    return " ".join(p for p in parts if p).strip()


def _method(ds: Dataset, rules: VendorRules, default: Method) -> Method:
    said = " ".join(_text(ds, k) for k in ("SeriesDescription", "DerivationDescription", "ImageComments"))
    for method, pattern in rules.method_patterns.items():
        if re.search(pattern, said):
            return method
    return default


def _named(vendor: Vendor, texts: list[str]) -> str | None:
    for text in texts:
        for name in PARAMETERS:
            pattern = vendor.maps.get(name)
            if pattern and re.search(pattern, text):
                return name
    return None


def classify(ds: Dataset, rules: VendorRules) -> MapSeries | MapRefused | None:
    """The map a series header announces, a refusal with the reason, or None (not a map)."""
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    texts = [t for t in (_text(ds, "SeriesDescription"), "\\".join(image_type[2:]),
                         _text(ds, "DerivationDescription"), _text(ds, "ImageComments")) if t]
    manufacturer = _text(ds, "Manufacturer")
    found: tuple[str, Method, str] | None = None
    for vendor in rules.vendors:
        if re.search(vendor.manufacturer, manufacturer):
            name = _named(vendor, texts)
            if name is not None:
                found = (name, vendor.method, vendor.name)
                break
    if found is None and len(image_type) >= 4 and image_type[2] == rules.image_type_value3.upper():
        name = image_type[3].replace(" ", "_")
        name = {"HPI": "HAF", "ALP": "HABF", "PVP": "HPBF"}.get(name, name)
        if name in PARAMETERS:
            found = (name, "unknown", "")
    if found is None:
        return None
    name, default_method, vendor_name = found
    photometric = _text(ds, "PhotometricInterpretation").upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric in rules.refused_photometric or samples != 1:
        return MapRefused(name, f"{name} map series {_text(ds, 'SeriesDescription')!r} is colour-rendered "
                                f"(PhotometricInterpretation {photometric or '?'}, {samples} samples per pixel): "
                                "its pixels are display colours, not values; quantitative maps are needed")
    return MapSeries(name, rules.units[name], _method(ds, rules, default_method), vendor_name, software(ds))
