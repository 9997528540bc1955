"""The PET header values SUV needs, read from a PET image header into `daemon.volume.PetHeader`."""

from __future__ import annotations

import logging
from datetime import datetime

from pydicom.dataset import Dataset

from daemon.volume import PetHeader

log = logging.getLogger(__name__)


def _dt(date: object, time: object) -> datetime | None:
    if not date or not time:
        return None
    t = str(time).split(".")
    frac = t[1] if len(t) > 1 else ""
    try:
        base = datetime.strptime(f"{date}{t[0][:6].ljust(6, '0')}", "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return base.replace(microsecond=int(frac[:6].ljust(6, "0"))) if frac else base


def _dt_combined(value: object) -> datetime | None:
    """A DICOM DT (YYYYMMDDHHMMSS.FFFFFF, offset ignored)."""
    if not value:
        return None
    s = str(value).split("+")[0].split("-")[0]
    return _dt(s[:8], s[8:]) if len(s) >= 12 else None


def _float(v: object) -> float | None:
    try:
        return float(v) if v not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def pet_header(ds: Dataset) -> PetHeader | None:
    """PetHeader from a PET header, or None when dose, half-life or times are missing."""
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return None
    rp = seq[0]
    dose = _float(rp.get("RadionuclideTotalDose"))
    half = _float(rp.get("RadionuclideHalfLife"))
    series_date = ds.get("SeriesDate") or ds.get("StudyDate")
    injection = _dt_combined(rp.get("RadiopharmaceuticalStartDateTime")) or _dt(
        series_date, rp.get("RadiopharmaceuticalStartTime")
    )
    decay = str(ds.get("DecayCorrection", "")).upper()
    reference = _dt(series_date, ds.get("SeriesTime"))
    if decay == "ADMIN":
        reference = injection
    elif decay != "START" or reference is None:
        reference = _dt(ds.get("AcquisitionDate") or series_date, ds.get("AcquisitionTime")) or reference
    if dose is None or half is None or injection is None or reference is None:
        log.info("PET header incomplete (dose %s, half-life %s, injection %s)", dose, half, injection)
        return None
    weight = _float(ds.get("PatientWeight"))
    height = _float(ds.get("PatientSize"))
    sex = str(ds.get("PatientSex", "")) or None
    return PetHeader(
        units=str(ds.get("Units", "")),
        decay_correction=decay,
        injected_dose_bq=dose,
        half_life_s=half,
        injection_time=injection,
        reference_time=reference,
        weight_kg=weight if weight else None,
        height_m=height if height else None,
        sex=sex if sex in ("M", "F") else None,
    )
