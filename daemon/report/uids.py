"""Deterministic DICOM UIDs for everything Nadir writes (conformance.md §6).

`2.25.<uuid5 as integer>`: the same input study, route, software version and object
kind always give the same UID, so a re-send is the same instance at the PACS, and a
correction (a new revision) is a new one.
"""

from __future__ import annotations

import uuid

# Fixed for the life of the product: changing it changes every UID Nadir writes.
NADIR_NAMESPACE = uuid.UUID("6f1c0d2e-4b7a-5e55-9a8c-0d1a2d1b7e11")

OBJECT_KINDS = ("sr", "seg", "sc", "ko", "rtstruct", "research-sr")


def uid_from(*parts: str) -> str:
    """`2.25.` + the name-based UUID of the parts joined by `|` (at most 44 characters)."""
    return "2.25." + str(uuid.uuid5(NADIR_NAMESPACE, "|".join(parts)).int)


def series_uid(study_uid: str, route: str, kind: str, software_version: str) -> str:
    _check_kind(kind)
    return uid_from("series", study_uid, route, kind, software_version)


def sop_uid(
    study_uid: str, route: str, kind: str, software_version: str, index: int, revision: int = 0
) -> str:
    _check_kind(kind)
    return uid_from("sop", study_uid, route, kind, software_version, str(index), str(revision))


def lesion_uid(patient_key: str, first_study_uid: str, route: str, lesion_no: int) -> str:
    """The Tracking UID of a lesion first seen in `first_study_uid` (stable for life)."""
    return uid_from("lesion", patient_key, first_study_uid, route, str(lesion_no))


def marker_uid(study_uid: str, route: str, software_version: str, what: str) -> str:
    """Tracking UID of a study-level group ("no lesion", an assessment...)."""
    return uid_from("marker", study_uid, route, software_version, what)


def device_uid(install_id: str) -> str:
    """The Device Observer UID of one Nadir installation."""
    return uid_from("device", install_id)


def _check_kind(kind: str) -> None:
    if kind not in OBJECT_KINDS:
        raise ValueError(f"unknown object kind {kind!r}; expected one of {OBJECT_KINDS}")
