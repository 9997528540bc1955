"""The file edge of radiomics: read rules/radiomics.yaml, write the per-lesion CSV.

Kept apart from daemon/measure/radiomics.py so that the measuring core does no I/O.
One row per lesion: who and when (study, date, series, lesion, mask), how (profile, its
hash, the PyRadiomics version), whether the features could be computed, the features, and
the delta-radiomics against the prior timepoint (`delta_<feature>` columns: current minus
prior) with its status ("computed" or "not computable: <why>", the delta cells then empty).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from daemon.config import ConfigError, format_validation_error, load_yaml_with_lines
from daemon.measure.radiomics import RadiomicsRules

IDENTITY_COLUMNS = (
    "StudyInstanceUID",
    "StudyDate",
    "SeriesInstanceUID",
    "TrackingID",
    "TrackingUID",
    "SegmentNumber",
    "MaskReference",
    "Profile",
    "ProfileHash",
    "PyRadiomicsVersion",
    "FeatureStatus",
    "PriorStudyInstanceUID",
    "PriorStudyDate",
    "DeltaStatus",
)
DELTA_PREFIX = "delta_"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
    study_date: str = ""  # the timepoint, YYYYMMDD
    feature_status: str = "computed"  # or "not computable: <why>"
    prior_study_instance_uid: str = ""
    prior_study_date: str = ""
    delta_status: str = ""  # "computed" or "not computable: <why>"
    deltas: Mapping[str, float] = field(default_factory=dict)  # feature -> current - prior


def csv_name(route: str, study_instance_uid: str) -> str:
    """The file of one study (timepoint) and route: deterministic, so a re-run replaces it."""
    return f"radiomics_{_UNSAFE.sub('_', route)}_{_UNSAFE.sub('_', study_instance_uid)}.csv"


def _identity(row: RadiomicsRow) -> list[str]:
    return [
        row.study_instance_uid, row.study_date, row.series_instance_uid, row.tracking_id, row.tracking_uid,
        "" if row.segment_number is None else str(row.segment_number), row.mask_reference,
        row.profile, row.profile_hash, row.pyradiomics_version, row.feature_status,
        row.prior_study_instance_uid, row.prior_study_date, row.delta_status,
    ]


def write_radiomics_csv(path: Path, rows: Sequence[RadiomicsRow]) -> Path:
    """One row per lesion; feature (then delta) columns are the union over rows, sorted. Atomic write."""
    feature_names = sorted({name for row in rows for name in row.features})
    delta_names = sorted({name for row in rows for name in row.deltas})
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*IDENTITY_COLUMNS, *feature_names, *(DELTA_PREFIX + n for n in delta_names)])
        for row in rows:
            values = [repr(row.features[n]) if n in row.features else "" for n in feature_names]
            changes = [repr(row.deltas[n]) if n in row.deltas else "" for n in delta_names]
            writer.writerow([*_identity(row), *values, *changes])
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path
