"""A patient's lesion history: one row per (route, study) with the lesions measured there.

What tracking and the response criteria need of earlier timepoints: each lesion's
tracking identifier and UID, kind, callipers (length, end points in patient and
image coordinates), volume, centroid and 3D diameter. Stored as JSON in one row per
timepoint, written by the pipeline once its report is built (a re-run replaces the
row), read back as `daemon.findings.Timepoint`s, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from daemon.findings import Calliper, Lesion, LesionKind, Measurements, Timepoint
from daemon.store.db import Base
from daemon.volume import ImagePoint, SliceRef

UID_LENGTH = 64


class LesionTimepoint(Base):
    __tablename__ = "lesion_timepoints"
    __table_args__ = (UniqueConstraint("route", "study_instance_uid", name="uq_lesion_timepoint_route_study"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    route: Mapped[str] = mapped_column(String(128))
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    study_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    series_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), default="")
    sr_series_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), default="")
    sr_sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), default="")
    lesions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    recorded: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _point(p: ImagePoint) -> dict[str, Any]:
    s = p.slice
    return {"sop": s.sop_instance_uid, "cls": s.sop_class_uid, "frame": s.frame_number, "c": p.column, "r": p.row}


def _calliper(c: Calliper | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"mm": c.length_mm, "start": list(c.start), "end": list(c.end),
            "start_image": _point(c.start_image), "end_image": _point(c.end_image)}


def lesion_to_json(les: Lesion) -> dict[str, Any]:
    m = les.measurements
    return {
        "id": les.tracking_id, "uid": les.tracking_uid, "kind": les.kind.value,
        "segment": les.segment_number, "site": les.site, "node": les.is_node,
        "long": _calliper(m.long_axis), "short": _calliper(m.short_axis),
        "volume_ml": m.volume_ml, "centroid": list(m.centroid) if m.centroid else None,
        "d3": m.max_3d_diameter_mm, "intensity": dict(m.intensity), "notes": dict(m.notes),
        **({"radiomics": dict(m.radiomics)} if m.radiomics else {}),  # for the next study's delta-radiomics
    }


def _vec(v: Sequence[float]) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def _image_point(d: dict[str, Any]) -> ImagePoint:
    return ImagePoint(SliceRef(str(d["sop"]), str(d["cls"]), d.get("frame")), float(d["c"]), float(d["r"]))


def _read_calliper(d: dict[str, Any] | None) -> Calliper | None:
    if not d:
        return None
    return Calliper(float(d["mm"]), _vec(d["start"]), _vec(d["end"]),
                    _image_point(d["start_image"]), _image_point(d["end_image"]))


def lesion_from_json(d: dict[str, Any]) -> Lesion:
    centroid = d.get("centroid")
    m = Measurements(
        long_axis=_read_calliper(d.get("long")),
        short_axis=_read_calliper(d.get("short")),
        volume_ml=d.get("volume_ml"),
        centroid=_vec(centroid) if centroid else None,
        max_3d_diameter_mm=d.get("d3"),
        intensity={str(k): float(v) for k, v in (d.get("intensity") or {}).items()},
        notes={str(k): str(v) for k, v in (d.get("notes") or {}).items()},
        radiomics={str(k): float(v) for k, v in (d.get("radiomics") or {}).items()},
    )
    return Lesion(
        tracking_id=str(d["id"]), tracking_uid=str(d["uid"]), kind=LesionKind(d["kind"]),
        measurements=m, segment_number=d.get("segment"), site=str(d.get("site", "")),
        is_node=bool(d.get("node", False)),
    )


def save_timepoint(
    session: Session, patient_id: str, route: str, timepoint: Timepoint,
    series_instance_uid: str = "", sr: tuple[str, str] = ("", ""),
) -> None:
    """Record (or replace) the lesions of one study for a route; the caller commits."""
    session.execute(delete(LesionTimepoint).where(
        LesionTimepoint.route == route, LesionTimepoint.study_instance_uid == timepoint.study_instance_uid
    ))
    session.add(LesionTimepoint(
        patient_id=patient_id, route=route, study_instance_uid=timepoint.study_instance_uid,
        study_date=timepoint.study_date, series_instance_uid=series_instance_uid,
        sr_series_instance_uid=sr[0], sr_sop_instance_uid=sr[1],
        lesions=[lesion_to_json(les) for les in timepoint.lesions], recorded=datetime.now(UTC),
    ))


def history(session: Session, patient_id: str, route: str, before: date | None,
            exclude_study: str = "") -> list[tuple[Timepoint, LesionTimepoint]]:
    """The patient's earlier timepoints on this route, oldest first (dated before `before`), with their rows."""
    rows = session.scalars(
        select(LesionTimepoint).where(LesionTimepoint.patient_id == patient_id, LesionTimepoint.route == route)
    ).all()
    out = []
    for row in rows:
        if row.study_instance_uid == exclude_study:
            continue
        if before is not None and (row.study_date is None or row.study_date >= before):
            continue
        tp = Timepoint(row.study_instance_uid, row.study_date, tuple(lesion_from_json(d) for d in row.lesions))
        out.append((tp, row))
    out.sort(key=lambda t: (t[0].study_date or date.min, t[0].study_instance_uid))
    return out
