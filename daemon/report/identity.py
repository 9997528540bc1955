"""Who writes an output object and where it goes: its series, its instance, the device.

One identity for the SEG, the RT Structure Set and the KOS (the SR adds its options to
the same fields, daemon.report.sr.SrIdentity); `object_identity` derives it from the
study, the route, the object kind and the settings (deterministic UIDs, daemon.report.uids).
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config import ReportSettings, Series
from daemon.report.uids import series_uid, sop_uid


@dataclass(frozen=True)
class ObjectIdentity:
    series_instance_uid: str
    series_number: int
    sop_instance_uid: str
    instance_number: int
    series_description: str
    manufacturer: str
    software_version: str
    device_serial_number: str
    institution_name: str | None = None


def object_identity(study_uid: str, route: str, kind: str, series: Series, revision: int,
                    settings: ReportSettings, software_version: str) -> ObjectIdentity:
    """The identity of the one object of `kind` (daemon.report.uids.OBJECT_KINDS) of a study and route."""
    return ObjectIdentity(
        series_instance_uid=series_uid(study_uid, route, kind, software_version),
        series_number=series.number,
        sop_instance_uid=sop_uid(study_uid, route, kind, software_version, 1, revision),
        instance_number=1 + revision,
        series_description=series.description,
        manufacturer=settings.manufacturer,
        software_version=software_version,
        device_serial_number=settings.install_id,
        institution_name=settings.institution_name,
    )
