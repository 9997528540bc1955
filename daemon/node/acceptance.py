"""What a C-STORE is answered when its dataset cannot be kept as sent.

The statuses are those of the Storage Service Class (PS3.4 Annex B.2.3, Table B.2-1)
and the DIMSE general statuses a C-STORE may carry (PS3.7 Annex C):

- 0xC001-0xC004 "Error: Cannot understand" (PS3.4 Table B.2-1, C000-CFFF; the low
  byte is Nadir's, listed in deploy/CONFORMANCE.md). A UID that is missing or not a
  UID as PS3.5 9.1 defines it is an attribute value Nadir cannot understand: 0xC002.
- 0xA900 "Error: Data Set does not match SOP Class" (PS3.4 Table B.2-1): the
  dataset's SOP Class UID is not the one of the request (its presentation context).
- 0x0122 "Refused: SOP Class not supported" (PS3.7 C.4.2.1.4, general status): a
  storage class Nadir does not accept.
- 0x0111 "Duplicate SOP Instance" (PS3.7 Annex C, general status): another dataset
  than the one stored under this SOP Instance UID; the first copy stays.

All are failures a sender does not retry (unlike 0xA7xx "out of resources").
"""

from __future__ import annotations

from pynetdicom import AllStoragePresentationContexts

from daemon.store.header import (
    Header,
    IncompleteInstance,
    InvalidInstance,
    MissingUid,
)

CANNOT_PARSE = 0xC001
MISSING_UID = 0xC002
UID_MISMATCH = 0xC003
INCOMPLETE = 0xC004
CLASS_MISMATCH = 0xA900
CLASS_NOT_SUPPORTED = 0x0122
DUPLICATE_CONFLICT = 0x0111

STORAGE_CLASSES = frozenset(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)


def refusal_status(exc: InvalidInstance) -> int:
    """The status of a dataset `daemon.store.header` refused."""
    if isinstance(exc, MissingUid):
        return MISSING_UID
    if isinstance(exc, IncompleteInstance):
        return INCOMPLETE
    return CANNOT_PARSE


def identity_refusal(header: Header, affected_uid: str, affected_class: str) -> tuple[int, str] | None:
    """(status, reason) when the dataset is not the instance the request announced,
    or of a class Nadir does not store; None when it is."""
    if affected_class and affected_class not in STORAGE_CLASSES:
        return CLASS_NOT_SUPPORTED, f"SOP Class {affected_class} is not a storage class Nadir accepts"
    if header.sop_instance_uid != affected_uid:
        return UID_MISMATCH, f"dataset SOPInstanceUID {header.sop_instance_uid} differs from the request's"
    if affected_class and header.sop_class_uid != affected_class:
        return CLASS_MISMATCH, f"dataset SOPClassUID {header.sop_class_uid} is not the request's {affected_class}"
    if header.sop_class_uid not in STORAGE_CLASSES:
        return CLASS_NOT_SUPPORTED, f"SOP Class {header.sop_class_uid} is not a storage class Nadir accepts"
    return None
