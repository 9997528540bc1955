"""SUV (body weight) and SUL (lean body mass) from PET header values, with decay correction.

Pure functions on values already read from the header (the imaging layer reads
the dataset and fills `daemon.volume.PetHeader`); nothing here touches a file.
SUVbw = C [Bq/mL] x W [g] / D_corr [Bq]; D_corr = D x exp(-ln2 x dt / T1/2).
SUL = SUVbw x LBM / W (Janmahasatian 2005 by default, James 1976 as an option).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.criteria.params import SuvParams
from daemon.volume import PetHeader


class SuvError(ValueError):
    """The header values do not allow a quantitative SUV (the message says which; `code` names it for a
    report worded in another language: "weight", else "")."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SuvInputs:
    units: str  # (0054,1001)
    decay_correction: str  # (0054,1102)
    injected_dose_bq: float
    half_life_s: float
    injection_time: datetime
    reference_time: datetime  # from `scan_reference_time`
    weight_kg: float | None
    height_m: float | None = None
    sex: str | None = None
    corrected_image: tuple[str, ...] | None = None  # (0028,0051); None: not checked


@dataclass(frozen=True)
class SuvFactors:
    delta_t_s: float
    decayed_dose_bq: float
    suv_per_bqml: float  # SUVbw = activity [Bq/mL] x this (1.0 when Units is GML)
    bmi: float | None
    lbm_kg: float | None
    sul_per_bqml: float | None  # None when height or sex is missing
    lbm_formula: str
    warnings: tuple[str, ...] = ()


def parse_dt(text: str) -> datetime:
    """A DICOM DT (YYYYMMDDHHMMSS.FFFFFF, trailing parts optional, no offset) as a datetime."""
    body = text.strip().split("+")[0].split("-")[0]
    main, _, frac = body.partition(".")
    if len(main) < 8 or not main.isdigit():
        raise SuvError(f"not a DICOM date-time: {text!r}")
    clock = [int(main[i : i + 2]) for i in range(8, min(len(main), 14), 2)] + [0, 0, 0]
    micro = int((frac + "000000")[:6]) if frac else 0
    return datetime(int(main[0:4]), int(main[4:6]), int(main[6:8]), clock[0], clock[1], clock[2], micro)


def parse_da_tm(da: str, tm: str) -> datetime:
    return parse_dt(da.strip() + tm.strip())


def injection_datetime(start_datetime: str | None, start_time: str | None, series_date: str,
                       reference: datetime | None = None) -> datetime:
    """RadiopharmaceuticalStartDateTime, else SeriesDate + RadiopharmaceuticalStartTime;
    an injection that would fall after the scan reference is taken from the day before (midnight)."""
    if start_datetime:
        return parse_dt(start_datetime)
    if not start_time:
        raise SuvError("no RadiopharmaceuticalStartDateTime nor RadiopharmaceuticalStartTime")
    when = parse_da_tm(series_date, start_time)
    if reference is not None and when > reference:
        when -= timedelta(days=1)
    return when


def scan_reference_time(series: datetime, acquisitions: Sequence[datetime],
                        post_injection: datetime | None = None) -> tuple[datetime, str]:
    """QIBA: SeriesDate/Time unless later than the earliest acquisition (rewritten by
    post-processing); then the GE private post-injection time if present, else the earliest
    AcquisitionDateTime."""
    if not acquisitions or series <= min(acquisitions):
        return series, "SeriesDateTime"
    if post_injection is not None:
        return post_injection, "GE private post-injection DateTime"
    return min(acquisitions), "earliest AcquisitionDateTime"


def decay_corrected_dose(dose_bq: float, half_life_s: float, delta_t_s: float) -> float:
    return dose_bq * math.exp(-math.log(2) * delta_t_s / half_life_s)


def bmi(weight_kg: float, height_m: float) -> float:
    return weight_kg / (height_m * height_m)


def lean_body_mass(params: SuvParams, weight_kg: float, height_m: float, sex: str) -> float:
    """Janmahasatian: 9270 W / (6680 + 216 BMI) male, / (8780 + 244 BMI) female; or James."""
    male = sex.upper() == "M"
    if params.lbm_formula == "james":
        j = params.james_male if male else params.james_female
        return float(j.weight_factor) * weight_kg - float(j.ratio_factor) * (weight_kg / (height_m * 100)) ** 2
    c = params.janmahasatian_male if male else params.janmahasatian_female
    return float(c.numerator) * weight_kg / (float(c.constant) + float(c.bmi_factor) * bmi(weight_kg, height_m))


def _check(params: SuvParams, h: SuvInputs) -> None:
    if h.units.upper() not in params.accepted_units:
        raise SuvError(f"Units {h.units!r} not accepted (accepted: {', '.join(params.accepted_units)})")
    if h.corrected_image is not None:
        missing = [c for c in params.required_corrections if c not in {x.upper() for x in h.corrected_image}]
        if missing:
            raise SuvError(f"CorrectedImage lacks {', '.join(missing)}")
    if h.decay_correction.upper() not in params.accepted_decay_corrections:
        raise SuvError(f"DecayCorrection {h.decay_correction!r} not accepted")
    if not h.weight_kg or h.weight_kg <= 0:
        raise SuvError("PatientWeight missing or 0: SUV not computable", "weight")
    if h.injected_dose_bq <= 0 or h.half_life_s <= 0:
        raise SuvError("RadionuclideTotalDose and RadionuclideHalfLife must be positive")


def _warnings(params: SuvParams, h: SuvInputs, delta: float) -> tuple[str, ...]:
    out = []
    if h.decay_correction.upper() == "START" and not 0 < delta < float(params.max_uptake_s):
        out.append(f"uptake time {delta:.0f} s outside (0, {float(params.max_uptake_s):.0f}) s")
    w = params.weight_range_kg
    if h.weight_kg is not None and not float(w.low) <= h.weight_kg <= float(w.high):
        out.append(f"weight {h.weight_kg} kg outside {w.low}-{w.high} kg")
    return tuple(out)


def suv_factors(header: SuvInputs | PetHeader, params: SuvParams) -> SuvFactors:
    """The factors that turn Bq/mL into SUVbw and SUL, with the numbers behind them."""
    h = header if isinstance(header, SuvInputs) else SuvInputs(
        units=header.units, decay_correction=header.decay_correction,
        injected_dose_bq=header.injected_dose_bq, half_life_s=header.half_life_s,
        injection_time=header.injection_time, reference_time=header.reference_time,
        weight_kg=header.weight_kg, height_m=header.height_m, sex=header.sex,
    )
    _check(params, h)
    weight = float(h.weight_kg or 0)
    delta = (h.reference_time - h.injection_time).total_seconds()
    if h.decay_correction.upper() == "ADMIN":
        delta = 0.0
    dose = decay_corrected_dose(h.injected_dose_bq, h.half_life_s, delta)
    suv = 1.0 if h.units.upper() == "GML" else weight * 1000 / dose
    b = lbm = sul = None
    if h.height_m and h.sex and h.sex.upper() in ("M", "F"):
        b = bmi(weight, h.height_m)
        lbm = lean_body_mass(params, weight, h.height_m, h.sex)
        sul = suv * lbm / weight
    return SuvFactors(delta, dose, suv, b, lbm, sul, params.lbm_formula, _warnings(params, h, delta))
