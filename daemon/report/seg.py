"""The DICOM Segmentation: one binary segment per lesion, labelled with its tracking identifier."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from daemon.findings import Lesion
from daemon.report.identity import ObjectIdentity
from daemon.report.inputs import ModelInfo, ReferenceRegion
from daemon.volume import LesionMask

log = logging.getLogger(__name__)

# each segment's Recommended Display CIELab Value (PS3.3 C.8.20.4; OHIF warns without it):
# distinct colours in segment order, the first the red of the key images' contours
PALETTE_RGB: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 160, 255), (255, 200, 40), (60, 200, 90), (200, 90, 255),
    (255, 130, 30), (40, 210, 210), (255, 100, 200), (160, 220, 60), (150, 110, 70),
)


def display_colour(segment_number: int) -> hd.color.CIELabColor:
    """The recommended display colour of a segment (numbered from 1)."""
    return hd.color.CIELabColor.from_rgb(*PALETTE_RGB[(segment_number - 1) % len(PALETTE_RGB)])


# a reference region's segment category (CID 7150; pydicom's table writes 91723000)
ANATOMICAL_STRUCTURE = codes.SCT.AnatomicalStructure


@dataclass(frozen=True, eq=False)
class SegResult:
    dataset: hd.seg.Segmentation
    segment_of: dict[str, int]  # tracking UID -> segment number in the SEG


def ordered_sources(mask: LesionMask, sources: Sequence[Dataset]) -> list[Dataset]:
    """The source datasets in the mask's slice order (each slice an instance)."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    out = []
    for ref in mask.volume.slices:
        if ref.frame_number is not None:
            raise ValueError("multi-frame sources are not supported by the SEG writer yet")
        ds = by_uid.get(ref.sop_instance_uid)
        if ds is None:
            raise KeyError(f"source instance {ref.sop_instance_uid} of the mask was not given")
        out.append(ds)
    return out


def _algorithm(model: ModelInfo | None, software_version: str) -> hd.AlgorithmIdentificationSequence:
    if model is None:
        return hd.AlgorithmIdentificationSequence(
            name="Nadir", family=codes.DCM.ArtificialIntelligence, version=software_version
        )
    return hd.AlgorithmIdentificationSequence(
        name=model.name[:64],
        family=codes.DCM.ArtificialIntelligence,
        version=model.version[:64],
        parameters={"sha256": model.sha256},
    )


def build_seg(
    mask: LesionMask,
    lesions: Sequence[Lesion],
    sources: Sequence[Dataset],
    ident: ObjectIdentity,
    model: ModelInfo | None,
    regions: Sequence[ReferenceRegion] = (),
) -> SegResult | None:
    """A BINARY SEG of the lesions that have a non-empty label, then the route's reference regions
    (category Anatomical Structure); None if no lesion has voxels."""
    images = ordered_sources(mask, sources)
    algo = _algorithm(model, ident.software_version)
    descriptions: list[hd.seg.SegmentDescription] = []
    planes: list[np.ndarray] = []
    segment_of: dict[str, int] = {}
    for lesion in lesions:
        if lesion.segment_number is None:
            continue
        binary = np.asarray(mask.labels == lesion.segment_number)
        if not binary.any():
            log.warning("lesion %s has an empty mask; left out of the SEG", lesion.tracking_id)
            continue
        number = len(descriptions) + 1
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=lesion.tracking_id[:64],
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Neoplasm,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
                tracking_uid=lesion.tracking_uid,
                tracking_id=lesion.tracking_id[:64],
                display_color=display_colour(number),
            )
        )
        planes.append(binary)
        segment_of[lesion.tracking_uid] = number
    if not descriptions:
        return None
    for region in regions:
        if not region.mask.any():
            continue
        number = len(descriptions) + 1
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=region.label[:64],
            segmented_property_category=ANATOMICAL_STRUCTURE,
            segmented_property_type=hd.sr.CodedConcept(region.code.value, region.code.scheme, region.code.meaning),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algo,
            display_color=display_colour(number)))
        planes.append(np.asarray(region.mask, dtype=bool))
    pixels = np.stack(planes, axis=-1).astype(np.uint8)  # (frames, rows, cols, segments)
    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=ident.series_instance_uid,
        series_number=ident.series_number,
        sop_instance_uid=ident.sop_instance_uid,
        instance_number=ident.instance_number,
        manufacturer=ident.manufacturer,
        manufacturer_model_name="Nadir",
        software_versions=ident.software_version,
        device_serial_number=ident.device_serial_number,
        omit_empty_frames=True,
        content_label="LESIONS",
        content_description="Nadir lesion segmentation",
    )
    seg.SeriesDescription = ident.series_description
    return SegResult(dataset=seg, segment_of=segment_of)
