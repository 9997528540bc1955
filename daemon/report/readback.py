"""Read one of Nadir's TID 1500 SRs back into lesions: how priors return when the database lost them.

Groups are merged by Tracking Unique Identifier; lesion groups are the ones with a
99NADIR "Lesion kind" evaluation (study-level groups such as "No lesion" or the
assessment have none). Calliper end points come back in image coordinates exactly;
patient coordinates need the referenced images' geometry (`geometry`), otherwise
they are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from daemon.findings import Calliper, Lesion, LesionKind, Measurements
from daemon.report import codes as nc
from daemon.report.inputs import InstanceRef, PriorStudy
from daemon.report.sr_groups import (
    BACKGROUND_RATIOS,
    INTENSITY,
    KIND_CONCEPT,
    KIND_VALUES,
    MAX_3D_DIAMETER,
    OHIF_BIDIRECTIONAL,
)
from daemon.volume import ImagePoint, SliceRef, Vec3

NAN3: Vec3 = (math.nan, math.nan, math.nan)
_KIND_BY_CODE = {v.value: k for k, v in KIND_VALUES.items()}
_INTENSITY_BY_CODE = {
    (c.value, d.value if d is not None else ""): name for name, (c, d, _) in INTENSITY.items()
}
_RATIO_BY_BACKGROUND = {(d.value, region.value): name for name, (d, region) in BACKGROUND_RATIOS.items()}
_CHUN_GROUP_BY_CODE = {c.value: g for g, c in nc.CHUN_GROUPS.items()}
_CHUN_GROUP_CONCEPTS = (nc.CHUN_GROUP.value, nc.CHUN_GROUP_CONFIRMED.value)


class NotOurReport(ValueError):
    """The dataset is not a TID 1500 measurement report."""


@dataclass(frozen=True)
class ReadBack:
    study_instance_uid: str
    study_date: date | None
    sop_instance_uid: str
    lesions: tuple[Lesion, ...]
    criterion: str | None = None  # the main assessment's (the first assessment group)
    category: str | None = None  # 99NADIR code value, e.g. PD
    comparison_studies: tuple[str, ...] = ()
    # the other assessment groups, in document order: (criterion, category), e.g. Chun's
    other_assessments: tuple[tuple[str | None, str | None], ...] = ()


@dataclass
class _Acc:
    tracking_id: str = ""
    kind: LesionKind | None = None
    axes: dict[str, Calliper] = field(default_factory=dict)
    volume_ml: float | None = None
    max_3d: float | None = None
    intensity: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    segment_number: int | None = None


def _code(item: Dataset, attr: str = "ConceptNameCodeSequence") -> tuple[str, str, str]:
    seq = item.get(attr)
    if not seq:
        return "", "", ""
    c = seq[0]
    return str(c.CodeValue), str(c.CodingSchemeDesignator), str(c.CodeMeaning)


def _children(item: Dataset) -> Iterable[Dataset]:
    seq: Iterable[Dataset] = item.get("ContentSequence", [])
    return seq


def _date(value: Any) -> date | None:
    s = str(value or "")
    if len(s) != 8 or not s.isdigit():
        return None
    return date(int(s[:4]), int(s[4:6]), int(s[6:]))


def to_patient(ds: Dataset, column: float, row: float) -> Vec3:
    """SCOORD (column, row) on an image -> patient LPS mm (pixel centres at +0.5)."""
    ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
    iop = [float(v) for v in ds.ImageOrientationPatient]
    dr, dc = (float(v) for v in ds.PixelSpacing)  # between rows, between columns
    p = ipp + np.asarray(iop[:3]) * (column - 0.5) * dc + np.asarray(iop[3:]) * (row - 0.5) * dr
    return float(p[0]), float(p[1]), float(p[2])


def _calliper(num: Dataset, length: float, geometry: Mapping[str, Dataset]) -> Calliper | None:
    for child in _children(num):
        if child.ValueType != "SCOORD":
            continue
        data = [float(v) for v in child.GraphicData]
        refs = [c for c in _children(child) if c.ValueType == "IMAGE"]
        if len(data) != 4 or not refs:
            return None
        ref = refs[0].ReferencedSOPSequence[0]
        frames = ref.get("ReferencedFrameNumber")
        frame = int(frames[0] if isinstance(frames, list | tuple) else frames) if frames else None
        sl = SliceRef(str(ref.ReferencedSOPInstanceUID), str(ref.ReferencedSOPClassUID), frame)
        a, b = ImagePoint(sl, data[0], data[1]), ImagePoint(sl, data[2], data[3])
        geo = geometry.get(sl.sop_instance_uid)
        pa = to_patient(geo, a.column, a.row) if geo is not None else NAN3
        pb = to_patient(geo, b.column, b.row) if geo is not None else NAN3
        return Calliper(length_mm=length, start=pa, end=pb, start_image=a, end_image=b)
    return None


def _num_value(item: Dataset) -> float:
    return float(item.MeasuredValueSequence[0].NumericValue)


def _derivation(item: Dataset) -> str:
    for child in _children(item):
        if _code(child)[0] == "121401":
            return _code(child, "ConceptCodeSequence")[0]
    return ""


def _background(item: Dataset) -> str:
    for child in _children(item):
        if _code(child)[0] == nc.REFERENCE_REGION.value:
            return _code(child, "ConceptCodeSequence")[0]
    return ""


def _read_num(acc: _Acc, item: Dataset, geometry: Mapping[str, Dataset]) -> None:
    value, scheme, meaning = _code(item)
    if not item.get("MeasuredValueSequence"):
        return
    v = _num_value(item)
    if (value, scheme) in (("103339001", "SCT"), ("103340004", "SCT")):
        cal = _calliper(item, v, geometry)
        if cal is not None:
            acc.axes["long" if value == "103339001" else "short"] = cal
    elif (value, scheme) == (nc.VOLUME.value, "SCT"):
        acc.volume_ml = v / 1000.0
    elif (value, scheme) == (MAX_3D_DIAMETER.value, nc.NADIR_SCHEME):
        acc.max_3d = v
    elif (value, scheme) == (nc.LESION_TO_BACKGROUND.value, "DCM"):
        name = _RATIO_BY_BACKGROUND.get((_derivation(item), _background(item)))
        if name is not None:
            acc.intensity[name] = v
    elif (value, _derivation(item)) in _INTENSITY_BY_CODE:
        acc.intensity[_INTENSITY_BY_CODE[(value, _derivation(item))]] = v
    elif scheme == nc.NADIR_SCHEME and value.startswith("I"):
        acc.intensity[meaning] = v
    elif scheme == nc.NADIR_SCHEME and value.startswith("R"):
        acc.ratios[meaning] = v


def _read_group(acc: _Acc, group: Dataset, geometry: Mapping[str, Dataset]) -> None:
    for item in _children(group):
        value, scheme, _ = _code(item)
        if item.ValueType == "TEXT" and value == "112039":
            text = str(item.TextValue)
            acc.tracking_id = text[len(OHIF_BIDIRECTIONAL):] if text.startswith(OHIF_BIDIRECTIONAL) else text
        elif item.ValueType == "CODE" and (value, scheme) == (KIND_CONCEPT.value, nc.NADIR_SCHEME):
            acc.kind = _KIND_BY_CODE.get(_code(item, "ConceptCodeSequence")[0])
        elif item.ValueType == "CODE" and scheme == nc.NADIR_SCHEME and value in _CHUN_GROUP_CONCEPTS:
            chun = _CHUN_GROUP_BY_CODE.get(_code(item, "ConceptCodeSequence")[0])
            if chun is not None:
                acc.notes["chun_group"] = chun
                if value == nc.CHUN_GROUP_CONFIRMED.value:
                    acc.notes["chun_group_source"] = "radiologist"
        elif item.ValueType == "TEXT" and (value, scheme) == (nc.CHUN_BASIS.value, nc.NADIR_SCHEME):
            acc.notes["chun_basis"] = str(item.TextValue)
        elif item.ValueType == "NUM":
            _read_num(acc, item, geometry)
        elif item.ValueType == "IMAGE" and value == "121191":
            seg_numbers = item.ReferencedSOPSequence[0].get("ReferencedSegmentNumber")
            if seg_numbers is not None:
                acc.segment_number = int(seg_numbers[0] if isinstance(seg_numbers, list) else seg_numbers)


def _tracking_uid(group: Dataset) -> str | None:
    for item in _children(group):
        if item.ValueType == "UIDREF" and _code(item)[0] == "112040":
            return str(item.UID)
    return None


def _assessments(root: Dataset) -> list[tuple[str | None, str | None]]:
    """(criterion meaning, category code value) of each group stating either (an assessment,
    or 'Not evaluable'), in document order."""
    out: list[tuple[str | None, str | None]] = []
    for group in _measurement_groups(root):
        criterion = category = None
        for item in _children(group):
            name = _code(item)[0]
            if item.ValueType == "CODE" and name == "112021":
                criterion = _code(item, "ConceptCodeSequence")[2]
            elif item.ValueType == "CODE" and name == "112048":
                category = _code(item, "ConceptCodeSequence")[0]
        if criterion is not None or category is not None:
            out.append((criterion, category))
    return out


def _measurement_groups(root: Dataset) -> list[Dataset]:
    for item in _children(root):
        if _code(item)[0] == "126010":
            return [g for g in _children(item) if _code(g)[0] == "125007"]
    return []


def read_report(sr: Dataset, geometry: Mapping[str, Dataset] | None = None) -> ReadBack:
    """The lesions of one Nadir SR, merged by tracking UID, in document order."""
    if _code(sr)[0] != "126000":
        raise NotOurReport("not a TID 1500 Imaging Measurement Report (root concept is not 126000)")
    geo = geometry or {}
    accs: dict[str, _Acc] = {}
    for group in _measurement_groups(sr):
        uid = _tracking_uid(group)
        if uid is None:
            continue
        _read_group(accs.setdefault(uid, _Acc()), group, geo)
    lesions = []
    for uid, acc in accs.items():
        if acc.kind is None:
            continue  # a study-level group (no lesion, not evaluable, assessment)
        lesions.append(_lesion(uid, acc))
    assessments = _assessments(sr)
    criterion, category = assessments[0] if assessments else (None, None)
    comparisons = tuple(
        str(s.StudyInstanceUID) for s in sr.get("PertinentOtherEvidenceSequence", [])
    )
    return ReadBack(
        study_instance_uid=str(sr.StudyInstanceUID),
        study_date=_date(sr.get("StudyDate")),
        sop_instance_uid=str(sr.SOPInstanceUID),
        lesions=tuple(lesions),
        criterion=criterion,
        category=category,
        comparison_studies=comparisons,
        other_assessments=tuple(assessments[1:]),
    )


def _lesion(uid: str, acc: _Acc) -> Lesion:
    long_axis = acc.axes.get("long")
    centroid: Vec3 | None = None
    if long_axis is not None and not math.isnan(long_axis.start[0]):
        s, e = np.asarray(long_axis.start), np.asarray(long_axis.end)
        c = (s + e) / 2.0  # approximation: the SR does not carry the mask centroid
        centroid = (float(c[0]), float(c[1]), float(c[2]))
    m = Measurements(
        long_axis=long_axis,
        short_axis=acc.axes.get("short"),
        volume_ml=acc.volume_ml,
        centroid=centroid,
        max_3d_diameter_mm=acc.max_3d,
        intensity=acc.intensity,
        ratios=acc.ratios,
        notes=acc.notes,
    )
    assert acc.kind is not None
    return Lesion(
        tracking_id=acc.tracking_id,
        tracking_uid=uid,
        kind=acc.kind,
        measurements=m,
        segment_number=acc.segment_number,
    )


def as_prior(sr: Dataset) -> PriorStudy:
    """A prior SR as the comparison study of the next report (Pertinent Other Evidence)."""
    ref = InstanceRef(
        study_instance_uid=str(sr.StudyInstanceUID),
        series_instance_uid=str(sr.SeriesInstanceUID),
        sop_class_uid=str(sr.SOPClassUID),
        sop_instance_uid=str(sr.SOPInstanceUID),
    )
    return PriorStudy(str(sr.StudyInstanceUID), _date(sr.get("StudyDate")), (ref,))
