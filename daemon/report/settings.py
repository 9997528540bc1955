"""Report settings: series numbers and descriptions, language, device identity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "report"


@dataclass(frozen=True)
class Series:
    number: int
    description: str


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    manufacturer: str = "Nadir"
    install_id: str = Field("nadir", min_length=1, max_length=64)  # Device Serial Number
    institution_name: str | None = None
    language: str = Field("en", pattern="^(en|fr)$")
    route_languages: dict[str, str] = Field(default_factory=dict)  # route -> en | fr
    ohif_hydratable: bool = False  # Cornerstone3DTools@^0.1.0:Bidirectional: prefix
    # True: volume and intensities in a separate TID 1411 group referencing the SEG segment
    # (conformance.md §1). False (default): in the lesion's TID 1501 group, each NUM anchored
    # on the long axis, the SEG frames referenced as the group's source images. Why the
    # default: PixelMed picks the template of every group from the whole container (any
    # Referenced Segment makes it check TID 1501 groups as TID 1411 and report errors), and
    # OHIF 3.x throws on a NUM without SCOORD child in a group without its own SCOORD.
    volumetric_groups: bool = False
    # True (default): the assessment's numbers (sum, baseline, nadir, % changes) as NUMs,
    # each with a POINT SCOORD near the top-left corner of the longest current target's
    # slice (conformance.md §2.2 rule 6; report/sr_groups.corner_point), so they are
    # structured in the SR and OHIF shows them there, clear of the lesions' labels
    # (tests/viewer). False: in the impression text and the key-image summary only; OHIF
    # 3.12 then drew nothing at all in the SR viewport (tests/viewer), so this is not the
    # default.
    assessment_numbers_on_image: bool = True
    templates_dir: Path = DEFAULT_TEMPLATES_DIR
    # one series per object kind, in the source study (flat keys: one env variable each,
    # e.g. NADIR_REPORT__SR_SERIES_NUMBER=7001)
    sr_series_number: int = Field(9001, ge=1, le=2**31 - 1)
    sr_series_description: str = Field("Nadir measurements (SR)", max_length=64)
    seg_series_number: int = Field(9002, ge=1, le=2**31 - 1)
    seg_series_description: str = Field("Nadir lesions (SEG)", max_length=64)
    sc_series_number: int = Field(9003, ge=1, le=2**31 - 1)
    sc_series_description: str = Field("Nadir key images", max_length=64)
    ko_series_number: int = Field(9004, ge=1, le=2**31 - 1)
    ko_series_description: str = Field("Nadir key objects", max_length=64)

    @property
    def sr(self) -> Series:
        return Series(self.sr_series_number, self.sr_series_description)

    @property
    def seg(self) -> Series:
        return Series(self.seg_series_number, self.seg_series_description)

    @property
    def sc(self) -> Series:
        return Series(self.sc_series_number, self.sc_series_description)

    @property
    def ko(self) -> Series:
        return Series(self.ko_series_number, self.ko_series_description)

    def language_for(self, route: str) -> str:
        lang = self.route_languages.get(route, self.language)
        if lang not in ("en", "fr"):
            raise ValueError(f"route {route!r}: language {lang!r} is not en or fr")
        return lang
