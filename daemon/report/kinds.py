"""The kind of each object Nadir writes (`destinations.<name>.outputs`), told from its SOP Class
and, for the research SR (an SR like the clinical one), from its own series number.

One table: the outbox puts an output in a destination's queue only when the
destination takes its kind (daemon.store.outbox.add). An object of a class that is
in no family here (a site pipeline's own) has no kind and goes to every destination,
as all outputs did before destinations chose.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import (
    BasicTextSRStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    KeyObjectSelectionDocumentStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameSingleBitSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    RTStructureSetStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)

from daemon.config import OutputKind, ReportSettings

KIND_OF_SOP_CLASS: dict[str, OutputKind] = {
    BasicTextSRStorage: "sr",
    EnhancedSRStorage: "sr",
    ComprehensiveSRStorage: "sr",
    Comprehensive3DSRStorage: "sr",
    SegmentationStorage: "seg",
    SecondaryCaptureImageStorage: "sc",
    MultiFrameSingleBitSecondaryCaptureImageStorage: "sc",
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage: "sc",
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage: "sc",
    MultiFrameTrueColorSecondaryCaptureImageStorage: "sc",
    KeyObjectSelectionDocumentStorage: "kos",
    RTStructureSetStorage: "rtstruct",
}


def kind_of(sop_class_uid: str) -> OutputKind | None:
    """The output kind of an object of `sop_class_uid`; None for a class of no kind."""
    return KIND_OF_SOP_CLASS.get(str(sop_class_uid))


def kind_of_dataset(ds: Dataset, report: ReportSettings) -> OutputKind | None:
    """The output kind of `ds`: the research SR is the SR on `report.research_sr`'s series."""
    kind = kind_of(str(ds.SOPClassUID))
    if kind == "sr" and int(ds.get("SeriesNumber") or 0) == report.research_sr.number:
        return "research_sr"
    return kind


def taken_by(kind: OutputKind | None, kinds: frozenset[OutputKind]) -> bool:
    """Whether a destination taking `kinds` takes an output of `kind` (None: of no kind)."""
    return kind is None or kind in kinds
