"""The file edge of radiomics: read rules/radiomics.yaml, write the per-lesion CSV.

Kept apart from daemon/measure/radiomics.py so that the measuring core does no I/O.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from daemon.config import ConfigError, format_validation_error, load_yaml_with_lines
from daemon.measure.radiomics import RadiomicsRules

IDENTITY_COLUMNS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "TrackingID",
    "TrackingUID",
    "SegmentNumber",
    "MaskReference",
    "Profile",
    "ProfileHash",
    "PyRadiomicsVersion",
)


def load_radiomics_rules(path: Path) -> RadiomicsRules:
    """Parse and validate the rules file; errors name the file and line (ConfigError)."""
    data, lines = load_yaml_with_lines(path)
    try:
        return RadiomicsRules.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, lines)) from exc


@dataclass(frozen=True)
class RadiomicsRow:
    study_instance_uid: str
    series_instance_uid: str
    tracking_id: str
    tracking_uid: str
    segment_number: int | None
    mask_reference: str  # e.g. the SEG's SOP Instance UID, or the job's mask
    profile: str
    profile_hash: str
    pyradiomics_version: str
    features: Mapping[str, float] = field(default_factory=dict)


def write_radiomics_csv(path: Path, rows: Sequence[RadiomicsRow]) -> Path:
    """One row per lesion; feature columns are the union over rows, sorted. Atomic write."""
    feature_names = sorted({name for row in rows for name in row.features})
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*IDENTITY_COLUMNS, *feature_names])
        for row in rows:
            ident = [
                row.study_instance_uid, row.series_instance_uid, row.tracking_id, row.tracking_uid,
                "" if row.segment_number is None else str(row.segment_number), row.mask_reference,
                row.profile, row.profile_hash, row.pyradiomics_version,
            ]
            values = [repr(row.features[n]) if n in row.features else "" for n in feature_names]
            writer.writerow([*ident, *values])
    tmp.replace(path)
    return path
