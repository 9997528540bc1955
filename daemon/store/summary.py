"""Study summaries for routing, read from a folder of DICOM files or a stored study.

This is the impure side of `daemon.routing`: it reads headers (never pixel data)
and the database, and hands routing a frozen `StudySummary`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.routing import SeriesSummary, StudySummary, Values
from daemon.store.jobs import utc
from daemon.store.models import Instance, Study
from daemon.store.spool import Spool

log = logging.getLogger(__name__)

# Read from the study's first instance; every other keyword is a series attribute
# (a study-level test reads the union of the series' values).
STUDY_KEYWORDS = (
    "StudyInstanceUID", "StudyDescription", "StudyDate", "StudyID", "AccessionNumber",
    "PatientID", "PatientSex", "PatientAge", "ReferringPhysicianName", "IssuerOfPatientID",
)
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})


def attributes(ds: Dataset) -> dict[str, Values]:
    """Every top-level keyword of `ds` with its values as strings (no sequences or binary)."""
    out: dict[str, Values] = {}
    for elem in ds:
        if elem.VR in _BINARY_VRS or not elem.keyword or elem.tag.is_private:
            continue
        value = elem.value
        if value is None or value == "":
            out[elem.keyword] = ("",)
        elif isinstance(value, MultiValue | list | tuple):
            out[elem.keyword] = tuple(str(v) for v in value)
        else:
            out[elem.keyword] = (str(value),)
    # PET: the radiopharmaceutical is inside a sequence; routing reads its name as a top-level
    # keyword (e.g. FDG for the whole-body route)
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if seq and seq[0].get("Radiopharmaceutical"):
        out.setdefault("Radiopharmaceutical", (str(seq[0].Radiopharmaceutical),))
    return out


@dataclass(frozen=True)
class _SeriesFiles:
    first: Dataset
    count: int


def summarise(
    study_uid: str,
    representatives: dict[str, _SeriesFiles],
    calling_aes: Iterable[str] = (),
    last_received: datetime | None = None,
    revision: int = 1,
) -> StudySummary:
    series = tuple(
        SeriesSummary(uid, attributes(rep.first), rep.count) for uid, rep in representatives.items()
    )
    study_attrs: dict[str, Values] = {}
    if representatives:
        first_all = attributes(next(iter(representatives.values())).first)
        study_attrs = {k: v for k, v in first_all.items() if k in STUDY_KEYWORDS}
    return StudySummary(study_uid, study_attrs, series, tuple(sorted(set(calling_aes))), last_received, revision)


def read_header(path: Path) -> Dataset | None:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        log.debug("not a DICOM file: %s (%s)", path, exc)
        return None


def summaries_of_folder(folder: Path) -> tuple[list[StudySummary], dict[str, list[Path]]]:
    """Summaries of every study found in a folder of DICOM files (recursively)."""
    reps: dict[str, dict[str, _SeriesFiles]] = defaultdict(dict)
    files: dict[str, list[Path]] = defaultdict(list)
    counts: Counter[tuple[str, str]] = Counter()
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            path = Path(root) / name
            ds = read_header(path)
            if ds is None or "StudyInstanceUID" not in ds or "SeriesInstanceUID" not in ds:
                continue
            study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
            counts[(study, series)] += 1
            files[study].append(path)
            if series not in reps[study]:
                reps[study][series] = _SeriesFiles(ds, 0)
    out = []
    for study, series_map in reps.items():
        fixed = {uid: _SeriesFiles(rep.first, counts[(study, uid)]) for uid, rep in series_map.items()}
        out.append(summarise(study, fixed))
    return out, dict(files)


def stored_files(session: Session, spool: Spool, study_id: int) -> list[Path]:
    rows = session.scalars(select(Instance.path).where(Instance.study_id == study_id).order_by(Instance.id))
    return [spool.absolute(p) for p in rows]


def summary_of_stored(session: Session, spool: Spool, study: Study) -> StudySummary:
    """The summary of a stored study: one header per series, counts and calling AEs from the database."""
    rows = session.execute(
        select(Instance.series_instance_uid, func.count(Instance.id), func.min(Instance.path))
        .where(Instance.study_id == study.id)
        .group_by(Instance.series_instance_uid)
    ).all()
    reps: dict[str, _SeriesFiles] = {}
    for series_uid, count, path in rows:
        ds = read_header(spool.absolute(path))
        if ds is not None:
            reps[series_uid] = _SeriesFiles(ds, int(count))
    aes = session.scalars(select(Instance.calling_ae).where(Instance.study_id == study.id).distinct())
    return summarise(study.study_instance_uid, reps, list(aes), utc(study.last_received), study.revision)
