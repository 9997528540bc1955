"""Key images as Secondary Capture: per target lesion, the trend plot and the summary page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from daemon.report.render import RGB

_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))


@dataclass(frozen=True)
class ScIdentity:
    series_instance_uid: str
    series_number: int
    series_description: str
    manufacturer: str
    software_version: str


@dataclass(frozen=True)
class KeyImage:
    """One rendered key image and what it shows."""

    pixels: RGB
    reference: Dataset  # the source slice shown (or any source image for plots)
    shows_slice: bool  # True: reference is the slice drawn (SourceImageSequence)
    description: str  # DerivationDescription / ImageComments
    sop_instance_uid: str
    instance_number: int


def orientation_letters(ds: Dataset) -> tuple[str, str]:
    """PatientOrientation (row, column directions) from ImageOrientationPatient."""
    iop = [float(v) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])]
    out = []
    for vec in (iop[:3], iop[3:]):
        axis = int(np.argmax(np.abs(vec)))
        out.append(_LETTERS[axis][0] if vec[axis] > 0 else _LETTERS[axis][1])
    return out[0], out[1]


def build_sc(image: KeyImage, ident: ScIdentity) -> hd.sc.SCImage:
    ref = image.reference
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref,
        pixel_array=image.pixels,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=ident.series_instance_uid,
        series_number=ident.series_number,
        sop_instance_uid=image.sop_instance_uid,
        instance_number=image.instance_number,
        manufacturer=ident.manufacturer,
        patient_orientation=orientation_letters(ref),
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    sc.SeriesDescription = ident.series_description
    sc.SoftwareVersions = ident.software_version
    sc.BurnedInAnnotation = "YES"
    if "Laterality" not in sc:
        sc.add_new(0x00200060, "CS", None)  # Laterality, Type 2C: empty (either side may show)
    sc.ConversionType = "WSD"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = image.description[:1024]
    sc.ImageComments = image.description[:10240]
    if image.shows_slice:
        item = Dataset()
        item.ReferencedSOPClassUID = ref.SOPClassUID
        item.ReferencedSOPInstanceUID = ref.SOPInstanceUID
        sc.SourceImageSequence = [item]
    return sc


def build_scs(images: Sequence[KeyImage], ident: ScIdentity) -> list[hd.sc.SCImage]:
    return [build_sc(im, ident) for im in images]
