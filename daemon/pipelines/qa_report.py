"""A study QA report: series inventory, slice-spacing gaps, missing or duplicated
slices, mixed geometry, dynamic (4D) series recognised as such (their repeated positions
are time frames, see `qa_dynamic`); written as a Comprehensive SR (free-text findings in a
container titled "Imaging Study Quality") into the source study.

The checks are technical (geometry of the acquisition), not clinical: their
tolerances are route parameters with the defaults below.

Parameters (route `parameters:`):
  gap_factor: a step between adjacent slices larger than gap_factor x the series'
      median step is a gap (default 1.5)
  position_tolerance_mm: two slices closer than this are duplicates (default 0.01)
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes

from daemon import __version__
from daemon.pipelines.base import PipelineError, PipelineInput
from daemon.pipelines.qa_dynamic import Dynamic, dynamic_frames

log = logging.getLogger(__name__)

SERIES_NUMBER = 9901  # fixed: the QA report series of a study


@dataclass(frozen=True)
class SliceInfo:
    sop_instance_uid: str
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    rows: int | None
    columns: int | None
    pixel_spacing: tuple[float, ...] | None
    frames: int


@dataclass(frozen=True)
class SeriesQa:
    series_instance_uid: str
    series_number: int | None
    modality: str
    description: str
    instances: int
    findings: tuple[str, ...]  # empty: no problem found
    median_spacing_mm: float | None = None
    dynamic: str | None = None  # a dynamic series' frames and times (not a problem)


def _floats(value: object) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None


def slice_info(ds: Dataset) -> SliceInfo:
    pos = _floats(ds.get("ImagePositionPatient"))
    num = ds.get("InstanceNumber")
    return SliceInfo(
        sop_instance_uid=str(ds.SOPInstanceUID),
        instance_number=int(num) if num not in (None, "") else None,
        position=(pos[0], pos[1], pos[2]) if pos is not None and len(pos) == 3 else None,
        orientation=_floats(ds.get("ImageOrientationPatient")),
        rows=int(ds.Rows) if "Rows" in ds else None,
        columns=int(ds.Columns) if "Columns" in ds else None,
        pixel_spacing=_floats(ds.get("PixelSpacing")),
        frames=int(ds.get("NumberOfFrames", 1) or 1),
    )


def _geometry_findings(slices: Sequence[SliceInfo]) -> list[str]:
    out = []
    orientations = {tuple(round(v, 3) for v in s.orientation) for s in slices if s.orientation}
    if len(orientations) > 1:
        out.append(f"mixed geometry: {len(orientations)} different image orientations")
    sizes = {(s.rows, s.columns) for s in slices if s.rows is not None}
    if len(sizes) > 1:
        out.append(f"mixed geometry: {len(sizes)} different matrix sizes ({', '.join(f'{r}x{c}' for r, c in sorted(sizes, key=str))})")
    spacings = {tuple(round(v, 4) for v in s.pixel_spacing) for s in slices if s.pixel_spacing}
    if len(spacings) > 1:
        out.append(f"mixed geometry: {len(spacings)} different pixel spacings")
    return out


def _spacing_findings(
    slices: Sequence[SliceInfo], gap_factor: float, tolerance: float
) -> tuple[list[str], float | None]:
    located = [s for s in slices if s.position is not None and s.orientation is not None and len(s.orientation) == 6]
    if len(located) < 2 or any(s.frames > 1 for s in slices):
        return [], None
    o = np.array(located[0].orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    along = np.sort(np.array([float(np.dot(normal, np.array(s.position))) for s in located]))
    steps = np.diff(along)
    out = []
    duplicates = int(np.sum(steps < tolerance))
    if duplicates:
        out.append(f"duplicated slices: {duplicates} slice position(s) occur more than once")
    real = steps[steps >= tolerance]
    if real.size == 0:
        return out, None
    median = float(np.median(real))
    gaps = real[real > gap_factor * median]
    if gaps.size:
        missing = int(sum(round(g / median) - 1 for g in gaps))
        out.append(
            f"slice-spacing gaps: {gaps.size} gap(s) larger than {gap_factor:g} x the median step of "
            f"{median:.3g} mm (largest {float(gaps.max()):.3g} mm); about {missing} missing slice(s)"
        )
    irregular = real[(real <= gap_factor * median) & (np.abs(real - median) > max(tolerance, 0.01 * median))]
    if irregular.size:
        out.append(f"irregular slice spacing: {irregular.size} step(s) differ from the median {median:.3g} mm")
    return out, median


def _instance_number_findings(slices: Sequence[SliceInfo]) -> list[str]:
    numbers = [s.instance_number for s in slices if s.instance_number is not None]
    dup = len(numbers) - len(set(numbers))
    return [f"duplicated instance numbers: {dup}"] if dup else []


def _position_keys(slices: Sequence[SliceInfo], tolerance: float) -> list[int]:
    """One key per slice, equal for slices less than `tolerance` apart along the normal."""
    o = np.array(slices[0].orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    along = [float(np.dot(normal, np.array(s.position))) for s in slices]
    keys = [0] * len(slices)
    order = sorted(range(len(slices)), key=lambda i: along[i])
    for prev, i in zip(order, order[1:], strict=False):
        keys[i] = keys[prev] + (1 if along[i] - along[prev] >= tolerance else 0)
    return keys


def _dynamic(headers: Sequence[Dataset], slices: Sequence[SliceInfo],
             tolerance: float) -> tuple[Dynamic | None, list[SliceInfo]]:
    """A dynamic series' frames, and one slice per position for the spacing checks (else all slices)."""
    idx = [i for i, s in enumerate(slices) if s.position is not None and s.orientation is not None
           and len(s.orientation) == 6]
    if len(idx) < 2 or any(s.frames > 1 for s in slices):
        return None, list(slices)
    keys = _position_keys([slices[i] for i in idx], tolerance)
    dyn = dynamic_frames([headers[i] for i in idx], keys)
    if dyn is None:
        return None, list(slices)
    first = {k: slices[i] for k, i in reversed(list(zip(keys, idx, strict=True)))}
    return dyn, list(first.values())


def assess_series(uid: str, headers: Sequence[Dataset], gap_factor: float, tolerance: float) -> SeriesQa:
    first = headers[0]
    slices = [slice_info(ds) for ds in headers]
    dyn, one_frame = _dynamic(headers, slices, tolerance)
    spacing, median = _spacing_findings(one_frame, gap_factor, tolerance)
    findings = (_geometry_findings(slices) + (dyn.findings() if dyn else []) + spacing
                + _instance_number_findings(slices))
    number = first.get("SeriesNumber")
    return SeriesQa(
        series_instance_uid=uid,
        series_number=int(number) if number not in (None, "") else None,
        modality=str(first.get("Modality", "")),
        description=str(first.get("SeriesDescription", "")),
        instances=len(headers),
        findings=tuple(findings),
        median_spacing_mm=median,
        dynamic=dyn.describe() if dyn else None,
    )


def assess_study(headers: Iterable[Dataset], gap_factor: float = 1.5, tolerance: float = 0.01) -> list[SeriesQa]:
    by_series: dict[str, list[Dataset]] = defaultdict(list)
    for ds in headers:
        by_series[str(ds.SeriesInstanceUID)].append(ds)
    result = [assess_series(uid, group, gap_factor, tolerance) for uid, group in by_series.items()]
    return sorted(result, key=lambda s: (s.series_number is None, s.series_number or 0, s.series_instance_uid))


def _series_item(qa: SeriesQa) -> hd.sr.ContainerContentItem:
    item = hd.sr.ContainerContentItem(name=codes.DCM.ImagingSeriesQuality, relationship_type="CONTAINS")
    label = f"series {qa.series_number if qa.series_number is not None else '?'} {qa.modality} {qa.description!r}".strip()
    spacing = f", slice step {qa.median_spacing_mm:.3g} mm" if qa.median_spacing_mm else ""
    text = [f"{label}: {qa.instances} instance(s){spacing}; UID {qa.series_instance_uid}"]
    text += [qa.dynamic] if qa.dynamic else []
    text += list(qa.findings) or ["no problem found"]
    item.ContentSequence = DicomSequence(
        [hd.sr.TextContentItem(name=codes.DCM.Finding, value=t[:1024], relationship_type="CONTAINS") for t in text]
    )
    return item


def build_report(inp: PipelineInput, evidence: Sequence[Dataset], series: Sequence[SeriesQa]) -> Dataset:
    root = hd.sr.ContainerContentItem(name=codes.DCM.ImagingStudyQuality)
    problems = sum(len(s.findings) for s in series)
    summary = (
        f"{len(series)} series, {sum(s.instances for s in series)} instances; "
        + (f"{problems} problem(s) found" if problems else "no problem found")
    )
    root.ContentSequence = DicomSequence(
        [
            hd.sr.TextContentItem(name=codes.DCM.Comment, value=summary, relationship_type="CONTAINS"),
            *[_series_item(s) for s in series],
        ]
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=root,
        series_instance_uid=inp.uid("series"),
        series_number=SERIES_NUMBER,
        # a later revision of the study is a new document in the same series (conformance.md 6)
        sop_instance_uid=inp.uid("sr", f"revision={inp.revision}"),
        instance_number=inp.revision,
        manufacturer="Nadir",
        is_complete=True,
        series_description="Nadir study QA report",
        software_versions=__version__,
    )
    return sr


def read_headers(files: Iterable[Path]) -> list[Dataset]:
    out: list[Dataset] = []
    for f in files:
        try:
            out.append(pydicom.dcmread(f, stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            log.warning("QA report: cannot read %s: %s", f.name, exc)
    return out


def run(inp: PipelineInput) -> list[Dataset]:
    headers = [ds for ds in read_headers(inp.files) if "SeriesInstanceUID" in ds and "SOPInstanceUID" in ds]
    if not headers:
        raise PipelineError(f"study {inp.study_instance_uid}: no readable instance")
    gap_factor = float(inp.parameters.get("gap_factor", 1.5))
    tolerance = float(inp.parameters.get("position_tolerance_mm", 0.01))
    series = assess_study(headers, gap_factor, tolerance)
    evidence = [ds for ds in headers if str(ds.StudyInstanceUID) == inp.study_instance_uid]
    return [build_report(inp, evidence, series)]
