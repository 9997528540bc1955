"""Find DICOM series in a folder or a list of files, reading headers only (no pixel data).

The header-only pass (`scan`) is what series selection looks at; pixels are read
later, only for the chosen series (`daemon.imaging.series.load_volume`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Instance:
    """One file: its path and its header (read with stop_before_pixels)."""

    path: Path
    header: Dataset

    @property
    def sop_instance_uid(self) -> str:
        return str(self.header.get("SOPInstanceUID", ""))

    @property
    def number_of_frames(self) -> int:
        return int(self.header.get("NumberOfFrames", 1) or 1)


@dataclass(frozen=True, eq=False)
class SeriesFiles:
    """The instances of one series, as found on disk (in file order)."""

    series_instance_uid: str
    study_instance_uid: str
    instances: tuple[Instance, ...]

    @property
    def first(self) -> Dataset:
        return self.instances[0].header

    @property
    def modality(self) -> str:
        return str(self.first.get("Modality", ""))

    @property
    def description(self) -> str:
        return str(self.first.get("SeriesDescription", ""))

    @property
    def number_of_frames(self) -> int:
        return sum(i.number_of_frames for i in self.instances)


@dataclass(frozen=True)
class ScanResult:
    series: dict[str, SeriesFiles]
    skipped: tuple[tuple[Path, str], ...] = field(default=())  # (path, why) of files that are not images


def _files(source: Path | Sequence[Path]) -> Iterable[Path]:
    if isinstance(source, Path):
        if source.is_dir():
            yield from sorted(p for p in source.rglob("*") if p.is_file())
        else:
            yield source
    else:
        yield from source


def read_header(path: Path) -> Dataset:
    """The header of one file, without pixel data (raises InvalidDicomError, OSError)."""
    return pydicom.dcmread(path, stop_before_pixels=True)


def scan(source: Path | Sequence[Path]) -> ScanResult:
    """Group the image instances under a folder (recursively) or in a list of files by series."""
    groups: dict[str, list[Instance]] = {}
    skipped: list[tuple[Path, str]] = []
    for path in _files(source):
        try:
            ds = read_header(path)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            skipped.append((path, f"not readable as DICOM: {exc}"))
            continue
        uid = ds.get("SeriesInstanceUID")
        if not uid or "Rows" not in ds:
            skipped.append((path, "not an image (no SeriesInstanceUID or no Rows)"))
            continue
        groups.setdefault(str(uid), []).append(Instance(path, ds))
    series = {
        uid: SeriesFiles(uid, str(insts[0].header.get("StudyInstanceUID", "")), tuple(insts))
        for uid, insts in groups.items()
    }
    if skipped:
        log.debug("skipped %d files that are not images", len(skipped))
    return ScanResult(series=series, skipped=tuple(skipped))
