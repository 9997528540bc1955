"""Key Object Selection (TID 2010): key images, long-axis slices, SR and SEG, with the impression."""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from daemon.report.identity import ObjectIdentity
from daemon.report.sr import character_set, write_in


def build_kos(
    referenced: Sequence[Dataset],
    impression_line: str,
    ident: ObjectIdentity,
    observer: hd.sr.ObserverContext,
) -> hd.ko.KeyObjectSelectionDocument:
    """One KOS 'Of Interest' listing every object in `referenced` (deduplicated)."""
    seen: set[str] = set()
    objects: list[Dataset] = []
    for ds in referenced:
        uid = str(ds.SOPInstanceUID)
        if uid not in seen:
            seen.add(uid)
            objects.append(ds)
    return _kos(codes.DCM.OfInterest, objects, impression_line, ident, observer)


def _kos(title: CodedConcept, objects: Sequence[Dataset], description: str, ident: ObjectIdentity,
         observer: hd.sr.ObserverContext) -> hd.ko.KeyObjectSelectionDocument:
    """A KOS titled `title` selecting `objects`, described (at most 1024 characters) by `description`."""
    content = hd.ko.KeyObjectSelection(
        document_title=title,
        referenced_objects=list(objects),
        observer_device_context=observer,
        description=description[:1024] or None,
    )
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=list(objects),
        content=content,
        series_instance_uid=ident.series_instance_uid,
        series_number=ident.series_number,
        sop_instance_uid=ident.sop_instance_uid,
        instance_number=ident.instance_number,
        manufacturer=ident.manufacturer,
    )
    kos.SeriesDescription = ident.series_description
    write_in(kos, character_set(objects))
    return kos


REJECTED_FOR_QUALITY = CodedConcept("113001", "DCM", "Rejected for Quality Reasons")


def build_rejection(
    rejected: Sequence[Dataset],
    reason: str,
    ident: ObjectIdentity,
    observer: hd.sr.ObserverContext,
) -> hd.ko.KeyObjectSelectionDocument:
    """IOCM: a KOS titled 'Rejected for Quality Reasons' withdrawing instances already sent
    (conformance §6; what a PACS does with it varies)."""
    return _kos(REJECTED_FOR_QUALITY, rejected, reason, ident, observer)
