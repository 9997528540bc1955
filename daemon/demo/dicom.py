"""Write phantom images as real single-frame DICOM series (CT, MR, PET) with realistic headers.

The data is SYNTHETIC and every series says so (SeriesDescription, ImageComments,
Manufacturer, PatientName DEMO^PHANTOM). UIDs are derived from a seed
(`demo_uid`), so the same call writes the same files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

from daemon import __version__
from daemon.demo.phantom import SYNTHETIC_NOTE

F64 = NDArray[np.float64]

SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage, "PT": PositronEmissionTomographyImageStorage}
F18_HALF_LIFE_S = 6586.2  # fluorine-18, 109.77 min


def demo_uid(*parts: object) -> str:
    """A deterministic UID from its parts (seed, study, series, instance...)."""
    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


@dataclass(frozen=True)
class StudyInfo:
    study_instance_uid: str
    study_datetime: datetime
    patient_id: str = "NADIR-DEMO-001"
    patient_name: str = "DEMO^PHANTOM"
    birth_date: str = "19600101"
    sex: str = "F"
    weight_kg: float = 72.0
    height_m: float = 1.68
    accession_number: str = ""
    study_id: str = "1"
    description: str = ""
    body_part: str = ""


@dataclass(frozen=True)
class PetDose:
    """The radiopharmaceutical: values written to the PET headers (SUV calibration)."""

    injected_dose_bq: float = 350e6
    injection_time: datetime = datetime(2024, 1, 1, 9, 0, 0)
    half_life_s: float = F18_HALF_LIFE_S
    radiopharmaceutical: str = "Fludeoxyglucose F^18^"

    def decayed_dose_bq(self, at: datetime) -> float:
        dt = (at - self.injection_time).total_seconds()
        return float(self.injected_dose_bq * 2.0 ** (-dt / self.half_life_s))


@dataclass(frozen=True)
class SeriesInfo:
    series_instance_uid: str
    modality: str  # CT | MR | PT
    series_number: int
    description: str
    frame_of_reference_uid: str
    series_datetime: datetime
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")
    contrast_agent: str = ""  # empty: no contrast
    extra: dict[str, object] = field(default_factory=dict)  # keyword -> value, set on every instance
    pet: PetDose | None = None


def _fmt(dt: datetime) -> tuple[str, str]:
    return dt.strftime("%Y%m%d"), dt.strftime("%H%M%S")


def _patient_study(ds: Dataset, study: StudyInfo) -> None:
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.PatientWeight = f"{study.weight_kg:.1f}"
    ds.PatientSize = f"{study.height_m:.2f}"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Synthetic phantom: no patient data"
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate, ds.StudyTime = _fmt(study.study_datetime)
    ds.AccessionNumber = study.accession_number
    ds.StudyID = study.study_id
    ds.StudyDescription = f"{study.description} ({SYNTHETIC_NOTE})"[:64]
    ds.ReferringPhysicianName = ""


def _series(ds: Dataset, series: SeriesInfo, study: StudyInfo) -> None:
    ds.Modality = series.modality
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SeriesNumber = series.series_number
    ds.SeriesDescription = f"{series.description} SYNTHETIC"[:64]
    ds.SeriesDate, ds.SeriesTime = _fmt(series.series_datetime)
    ds.AcquisitionDate, ds.AcquisitionTime = _fmt(series.series_datetime)
    ds.ContentDate, ds.ContentTime = _fmt(series.series_datetime)
    ds.BodyPartExamined = study.body_part
    if series.modality != "PT":  # PET has the NM/PET Patient Orientation module instead
        ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "Nadir demo (synthetic phantom)"
    ds.ManufacturerModelName = "phantom"
    ds.SoftwareVersions = __version__
    ds.InstitutionName = "Synthetic"
    ds.ImageType = list(series.image_type)
    ds.ImageComments = SYNTHETIC_NOTE
    if series.contrast_agent:
        ds.ContrastBolusAgent = series.contrast_agent
        ds.ContrastBolusRoute = "IV"


def _modality_module(ds: Dataset, series: SeriesInfo, thickness: float) -> None:
    if series.modality == "MR":
        ds.ScanningSequence = ["GR", "IR"]
        ds.SequenceVariant = ["SP", "MP"]
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.SequenceName = "*tfl3d1"
        ds.RepetitionTime = "2300"
        ds.EchoTime = "2.98"
        ds.InversionTime = "900"
        ds.FlipAngle = "9"
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "3"
        ds.ImagingFrequency = "123.2"
        ds.ImagedNucleus = "1H"
    elif series.modality == "CT":
        ds.KVP = "120"
        ds.XRayTubeCurrent = 250
        ds.ExposureTime = 500
        ds.ConvolutionKernel = "B30f"
        ds.GantryDetectorTilt = "0"
        ds.TableHeight = "150"
        ds.RescaleType = "HU"
        ds.AcquisitionNumber = 1
    ds.SliceThickness = f"{thickness:.6g}"


def _pet_module(ds: Dataset, series: SeriesInfo, n_slices: int) -> None:
    pet = series.pet or PetDose()
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"]
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.CountsSource = "EMISSION"
    ds.NumberOfSlices = n_slices
    ds.ReconstructionMethod = "OSEM 3i21s"
    ds.AttenuationCorrectionMethod = "CT"
    ds.ActualFrameDuration = 120000
    ds.FrameReferenceTime = 0
    ds.DecayFactor = "1"
    ds.ImageIndex = 1
    ds.CollimatorType = "NONE"
    ds.PatientOrientationCodeSequence = DicomSequence([])
    ds.PatientGantryRelationshipCodeSequence = DicomSequence([])
    rp = Dataset()
    rp.Radiopharmaceutical = pet.radiopharmaceutical
    rp.RadiopharmaceuticalStartDateTime = pet.injection_time.strftime("%Y%m%d%H%M%S.%f")
    rp.RadiopharmaceuticalStartTime = pet.injection_time.strftime("%H%M%S.%f")
    rp.RadionuclideTotalDose = f"{pet.injected_dose_bq:.6g}"
    rp.RadionuclideHalfLife = f"{pet.half_life_s:.6g}"
    rp.RadionuclidePositronFraction = "0.9673"
    nuc = Dataset()
    nuc.CodeValue, nuc.CodingSchemeDesignator, nuc.CodeMeaning = "77004003", "SCT", "^18^Fluorine"
    rp.RadionuclideCodeSequence = DicomSequence([nuc])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])


def _quantise(plane: NDArray[np.float32], modality: str) -> tuple[NDArray[np.int16] | NDArray[np.uint16], float, float]:
    """Stored values and (slope, intercept) for one slice."""
    if modality == "CT":
        return np.clip(np.rint(plane + 1024.0), 0, 4095).astype(np.uint16), 1.0, -1024.0
    if modality == "PT":
        top = float(plane.max())
        slope = top / 32767.0 if top > 0 else 1.0
        return np.clip(np.rint(plane / slope), 0, 32767).astype(np.int16), slope, 0.0
    return np.clip(np.rint(plane), 0, 65535).astype(np.uint16), 1.0, 0.0


def stored_values(image: NDArray[np.float32], modality: str) -> NDArray[np.float32]:
    """What a reader gets back from `series_datasets` after rescale (quantisation applied)."""
    out = np.empty(image.shape, dtype=np.float32)
    for k in range(image.shape[0]):
        q, slope, icpt = _quantise(image[k], modality)
        out[k] = q.astype(np.float32) * np.float32(slope) + np.float32(icpt)
    return out


def series_datasets(
    image: NDArray[np.float32],
    affine: F64,
    study: StudyInfo,
    series: SeriesInfo,
    seed: object = 0,
) -> list[Dataset]:
    """One single-frame dataset per slice k of `image` (k, j, i) on `affine` (index -> LPS mm).

    Units of `image`: MR signal, HU for CT, Bq/ml for PET.
    """
    nk, nj, ni = image.shape
    cols = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    iop = [float(v) for v in (*cols[:, 2], *cols[:, 1])]
    window = _window(series.modality, image)
    out = []
    for k in range(nk):
        ds = Dataset()
        sop_uid = UID(demo_uid(seed, series.series_instance_uid, k))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SOP_CLASS[series.modality]
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(demo_uid("nadir-demo-implementation"))
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = SOP_CLASS[series.modality]
        ds.SOPInstanceUID = sop_uid
        _patient_study(ds, study)
        _series(ds, series, study)
        _modality_module(ds, series, float(spacing[0]))
        if series.modality == "PT":
            _pet_module(ds, series, nk)
            ds.ImageIndex = k + 1
        ds.InstanceNumber = k + 1
        pos = affine[:3, :3] @ np.array([k, 0.0, 0.0]) + affine[:3, 3]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop]
        ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[2]:.6g}"]
        ds.SpacingBetweenSlices = f"{spacing[0]:.6g}"
        ds.SliceLocation = f"{float(pos @ np.cross(cols[:, 2], cols[:, 1])):.6f}"
        for key, value in series.extra.items():
            setattr(ds, key, value)
        q, slope, icpt = _quantise(image[k], series.modality)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = nj, ni
        ds.BitsAllocated = 16
        ds.BitsStored = 12 if series.modality == "CT" else 16
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if q.dtype == np.int16 else 0
        if series.modality in ("CT", "PT"):
            ds.RescaleSlope = f"{slope:.10g}"
            ds.RescaleIntercept = f"{icpt:.10g}"
        ds.WindowCenter, ds.WindowWidth = window
        ds.PixelData = q.tobytes()
        out.append(ds)
    return out


def _window(modality: str, image: NDArray[np.float32]) -> tuple[str, str]:
    if modality == "CT":
        return "60", "400"
    # the whole range: enhancing lesions are the brightest (and smallest) structures of a
    # post-gadolinium T1, so a percentile window would saturate them into the white matter
    top = float(image.max())
    return f"{top / 2:.6g}", f"{max(top, 1.0):.6g}"


def write_datasets(datasets: list[Dataset], folder: Path, prefix: str = "") -> list[Path]:
    """Write datasets as `<prefix><InstanceNumber:04d>.dcm` under folder."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{prefix}{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def pet_bqml(suv: NDArray[np.float32], dose: PetDose, series_time: datetime, weight_kg: float) -> NDArray[np.float32]:
    """SUVbw -> Bq/ml with decay correction to the series start (DecayCorrection START)."""
    factor = dose.decayed_dose_bq(series_time) / (weight_kg * 1000.0)
    return (suv * np.float32(factor)).astype(np.float32)


def pet_suv_factor(dose: PetDose, series_time: datetime, weight_kg: float) -> float:
    """Bq/ml -> SUVbw multiplier for these headers."""
    return weight_kg * 1000.0 / dose.decayed_dose_bq(series_time)


def later(dt: datetime, minutes: float) -> datetime:
    return dt + timedelta(minutes=minutes)
