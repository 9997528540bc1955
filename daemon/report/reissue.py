"""A re-run whose content changed is sent under new SOP Instance UIDs (conformance §6:
a UID identifies one content; PS3.3 C.12.1.1.1).

Output UIDs are derived from the study, route, software version and revision
(daemon.report.uids), so a re-run of the same study revision (a retried job, a route
re-run after its rules or the priors changed) derives the same UIDs. Sent again under
them, a PACS that does not overwrite instances (Orthanc's default, most archives)
keeps the first content. Here the outputs of one run are compared with the latest issue
of each: the same content keeps that issue's UIDs (a resend stays idempotent); a
changed content gets, for every output of the run, a new UID derived from the base UID,
the content digest and the UID it supersedes, with the references between the run's
objects rewritten, and each SR names the SR it supersedes in Predecessor Documents
Sequence (0040,A360), as corrections do, its Instance Number one past it.

Pure: the caller looks up the latest issues (daemon.store.outbox.latest_issues).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence as DicomSequence

from daemon.report.uids import uid_from

# written at each run whatever the content: not part of it
VOLATILE = frozenset({
    "InstanceCreationDate", "InstanceCreationTime", "ContentDate", "ContentTime",
    "ContributionDateTime", "SeriesDate", "SeriesTime", "StructureSetDate", "StructureSetTime",
})
SR_MODALITY = "SR"


@dataclass(frozen=True)
class Issue:
    """How an output was last issued: the UID it was sent under, the digest of its run's
    content, and its Instance Number (None when unknown)."""

    sop_instance_uid: str
    content_digest: str | None
    instance_number: int | None = None


@dataclass(frozen=True)
class Reissued:
    datasets: list[Dataset]
    base_uids: list[str]  # each dataset's UID as the pipeline derived it
    content_digest: str
    changed: bool  # sent under new UIDs because the content changed


def content_digest(datasets: Sequence[Dataset]) -> str:
    """sha256 of the run's datasets, in order, without what changes at every run."""
    h = hashlib.sha256()
    for ds in datasets:
        out = DicomBytesIO()
        out.is_little_endian, out.is_implicit_VR = True, False
        write_dataset(out, _without_volatile(ds))
        h.update(out.getvalue())
    return h.hexdigest()


def reissue(datasets: Sequence[Dataset], latest: Mapping[str, Issue]) -> Reissued:
    """The run's datasets as they are to be sent (copies where anything changes)."""
    digest = content_digest(datasets)
    bases = [str(ds.SOPInstanceUID) for ds in datasets]
    mapping: dict[str, str] = {}
    for base in bases:
        prev = latest.get(base)
        if prev is not None and prev.content_digest != digest:
            mapping[base] = uid_from("reissue", base, digest, prev.sop_instance_uid)
        elif prev is not None and prev.sop_instance_uid != base:
            mapping[base] = prev.sop_instance_uid  # the same content as its latest issue
    if not mapping:
        return Reissued(list(datasets), bases, digest, changed=False)
    out = []
    for ds, base in zip(datasets, bases, strict=True):
        new = copy.deepcopy(ds)
        _replace_uids(new, mapping)
        meta = getattr(new, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = str(new.SOPInstanceUID)
        prev = latest.get(base)
        if prev is not None and prev.content_digest != digest:
            _supersede(new, prev)
        out.append(new)
    changed = any(latest.get(b) is not None and latest[b].content_digest != digest for b in bases)
    return Reissued(out, bases, digest, changed=changed)


def _without_volatile(ds: Dataset) -> Dataset:
    clean = Dataset()
    for elem in ds:
        if elem.keyword in VOLATILE:
            continue
        if elem.VR == "SQ":
            clean.add_new(elem.tag, "SQ", DicomSequence([_without_volatile(item) for item in elem.value]))
        else:
            clean.add(elem)
    return clean


def _replace_uids(ds: Dataset, mapping: Mapping[str, str]) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _replace_uids(item, mapping)
        elif elem.VR == "UI" and elem.value is not None and str(elem.value) in mapping:
            elem.value = mapping[str(elem.value)]


def _supersede(ds: Dataset, prev: Issue) -> None:
    """The new issue follows `prev`: its Instance Number one past it; an SR names it as
    predecessor (PS3.3 C.17.2.3, Hierarchical SOP Instance Reference Macro)."""
    if prev.instance_number is not None:
        ds.InstanceNumber = max(int(ds.get("InstanceNumber", 0) or 0), prev.instance_number + 1)
    if ds.get("Modality") != SR_MODALITY:
        return
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = prev.sop_instance_uid
    series = Dataset()
    series.SeriesInstanceUID = ds.SeriesInstanceUID
    series.ReferencedSOPSequence = [ref]
    item = Dataset()
    item.StudyInstanceUID = ds.StudyInstanceUID
    item.ReferencedSeriesSequence = [series]
    if "PredecessorDocumentsSequence" not in ds:
        ds.PredecessorDocumentsSequence = DicomSequence()
    ds.PredecessorDocumentsSequence.append(item)
