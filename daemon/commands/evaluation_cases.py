"""The case folders of `nadir evaluate-model`: a series and a reader's reference per case,
and the optional cases.yaml grouping cases into a patient's follow-up.

```
CASES_DIR/
  cases.yaml           optional: follow-ups (below)
  <case>/              one folder per case (hidden folders ignored)
    image/             the DICOM series (one image series; other objects there are ignored)
    reference.dcm      the reader's DICOM SEG or RTSTRUCT drawn on that series
```

cases.yaml:

```yaml
followups:
  - patient: P1
    visits:                       # in date order, the baseline first
      - {case: p1-baseline, date: 2025-01-10}
      - {case: p1-month3, date: 2025-04-10}
```

The reference is every segment of the SEG (every ROI of the RTSTRUCT) together; its
lesions are its connected components. A SEG must reference the case's series (or
place its frames on it by position); an RTSTRUCT must be in the series' Frame of
Reference. Any slip is a `CommandError` naming the case and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydicom.errors import InvalidDicomError

from daemon.commands.errors import CommandError
from daemon.config import ConfigError, format_validation_error, load_yaml_with_lines
from daemon.imaging.loader import scan
from daemon.imaging.messy import SeriesRefused
from daemon.imaging.rt_objects import read_structure_set
from daemon.imaging.series import load_volume
from daemon.measure.rt_field import rasterise
from daemon.measure.seg_mapping import SegMappingError, seg_to_masks
from daemon.volume import Volume

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
NOT_IMAGES = (SEG_STORAGE, RTSTRUCT_STORAGE)
CASES_FILE = "cases.yaml"
IMAGE_DIR = "image"
REFERENCE_FILE = "reference.dcm"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Visit(_Strict):
    case: str = Field(min_length=1)
    date: date


class FollowUp(_Strict):
    patient: str = Field(min_length=1)
    visits: tuple[Visit, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _in_order(self) -> FollowUp:
        dates = [v.date for v in self.visits]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("visits are in date order, one per date, the baseline first")
        return self


class CasesFile(_Strict):
    followups: tuple[FollowUp, ...] = ()


@dataclass(frozen=True, eq=False)
class Case:
    name: str
    volume: Volume
    reference: NDArray[np.bool_]
    reference_kind: str  # "SEG" | "RTSTRUCT"
    notes: tuple[str, ...] = ()  # what reading the reference left out


def case_folders(cases_dir: Path) -> list[Path]:
    if not cases_dir.is_dir():
        raise CommandError(f"{cases_dir}: no such folder; give the folder that holds one folder per case")
    found = sorted(p for p in cases_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise CommandError(f"{cases_dir}: no case folder (each case is a folder with {IMAGE_DIR}/ and "
                           f"{REFERENCE_FILE})")
    return found


def _series(folder: Path) -> Volume:
    image_dir = folder / IMAGE_DIR
    if not image_dir.is_dir():
        raise CommandError(f"case {folder.name}: no {IMAGE_DIR}/ folder with the DICOM series")
    series = {uid: s for uid, s in scan(image_dir).series.items() if str(s.first.SOPClassUID) not in NOT_IMAGES}
    if len(series) != 1:
        raise CommandError(f"case {folder.name}: {len(series)} image series in {IMAGE_DIR}/; a case holds one")
    try:
        return load_volume(next(iter(series.values()))).volume
    except SeriesRefused as exc:
        raise CommandError(f"case {folder.name}: the series cannot be used: {exc}") from exc


def _referenced_series(ds: Any) -> set[str]:
    uids = {str(item.SeriesInstanceUID) for item in getattr(ds, "ReferencedSeriesSequence", []) or []}
    for frame in getattr(ds, "ReferencedFrameOfReferenceSequence", []) or []:  # RTSTRUCT
        for study in getattr(frame, "RTReferencedStudySequence", []) or []:
            uids |= {str(s.SeriesInstanceUID) for s in getattr(study, "RTReferencedSeriesSequence", []) or []}
    return uids


def _reference_header(folder: Path) -> Any:
    path = folder / REFERENCE_FILE
    if not path.is_file():
        raise CommandError(f"case {folder.name}: no reference; put the reader's SEG or RTSTRUCT at {path}")
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError) as exc:
        raise CommandError(f"case {folder.name}: {path.name} is not a DICOM file") from exc
    sop_class = str(getattr(header, "SOPClassUID", ""))
    if sop_class not in NOT_IMAGES:
        raise CommandError(f"case {folder.name}: {path.name} is neither a SEG nor an RTSTRUCT (SOP class {sop_class})")
    return header


def check_case_files(folder: Path) -> None:
    """The case's image folder and reference are there (a CommandError naming the case if not)."""
    if not (folder / IMAGE_DIR).is_dir():
        raise CommandError(f"case {folder.name}: no {IMAGE_DIR}/ folder with the DICOM series")
    _reference_header(folder)


def _reference(folder: Path, volume: Volume) -> tuple[NDArray[np.bool_], str, tuple[str, ...]]:
    path = folder / REFERENCE_FILE
    header = _reference_header(folder)
    kind = "SEG" if str(header.SOPClassUID) == SEG_STORAGE else "RTSTRUCT"
    drawn_on = _referenced_series(header)
    if drawn_on and volume.series_instance_uid not in drawn_on:
        raise CommandError(f"case {folder.name}: the reference {kind} is drawn on series {', '.join(sorted(drawn_on))}, "
                           f"not on the case's series {volume.series_instance_uid}")
    notes: list[str] = []
    try:
        if kind == "SEG":
            masks = list(seg_to_masks(hd.seg.segread(path), volume).values())
        else:
            masks = _rtstruct_masks(pydicom.dcmread(path), volume, notes)
    except (SegMappingError, ValueError) as exc:
        raise CommandError(f"case {folder.name}: the reference {kind} does not fit the series: {exc}") from exc
    union = np.zeros(volume.shape, dtype=bool)
    for mask in masks:
        union |= mask
    return union, kind, tuple(f"reference: {n}" for n in notes)


def _rtstruct_masks(ds: Any, volume: Volume, notes: list[str]) -> list[NDArray[np.bool_]]:
    """Each ROI's contours rasterised on the series' grid (daemon.measure.rt_field); what the
    reader of RT objects left out (a contour of one point...) goes to the notes."""
    structure, warnings = read_structure_set(ds)
    notes.extend(warnings)
    if not structure.rois:
        raise ValueError("no ROI with a closed contour" + "".join(f"; {w}" for w in warnings))
    out = []
    for roi in structure.rois:
        if roi.frame_of_reference_uid != volume.frame_of_reference_uid:
            raise ValueError(f"ROI {roi.number} ({roi.name}) is drawn in Frame of Reference "
                             f"{roi.frame_of_reference_uid}, the series is in {volume.frame_of_reference_uid}")
        out.append(rasterise([c.points for c in roi.contours], np.eye(4), volume.affine, volume.shape))
    return out


def read_case(folder: Path) -> Case:
    volume = _series(folder)
    reference, kind, notes = _reference(folder, volume)
    return Case(folder.name, volume, reference, kind, notes)


def read_followups(cases_dir: Path, names: set[str]) -> tuple[FollowUp, ...]:
    """cases.yaml's follow-ups (none without the file); errors name the file and line."""
    path = cases_dir / CASES_FILE
    if not path.is_file():
        return ()
    try:
        data, lines = load_yaml_with_lines(path)
        parsed = CasesFile.model_validate(data or {})
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    except ValidationError as exc:
        raise CommandError(format_validation_error(path, exc, lines, unknown="unknown key")) from exc
    for n, f in enumerate(parsed.followups):
        for m, v in enumerate(f.visits):
            if v.case not in names:
                line = lines.get(("followups", n, "visits", m, "case"))
                raise CommandError(f"{path}:{line}: followups.{n}.visits.{m}.case: no case folder {v.case!r}")
    return parsed.followups
