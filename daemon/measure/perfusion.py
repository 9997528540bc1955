"""Dual-input maximum-slope liver perfusion (perfusion.md §6), pure: arrays in, numbers out.

1. Enhancement: `ΔHU(t) = HU(t) - mean(HU of the baseline frames)`.
2. Input curves: aorta `A(t)`, portal vein `P(t)`, spleen `S(t)`; tissue curve `C(t)`.
3. `t_s`: the time of the splenic peak separates the arterial from the portal phase.
4. `HAP = max_{t < t_s} dC/dt / max A`, `HPP = max_{t > t_s} dC/dt / max P` (s^-1),
   shown in mL/min/100 mL of tissue (x 60 x 100; no division by a density: per 100 mL,
   not per 100 g); `TLP = HAP + HPP`; `HPI = HAP / TLP x 100 %`; `TTP`: time of the
   tissue's peak enhancement, in seconds from the first frame.

Slopes are taken at each frame as the derivative of a quadratic fitted to the frames
around it (`slope_window_frames`; 2 = finite differences): at the maximum slope the curve
is locally straight, so the fit removes noise without biasing the maximum. A frame before
`t_s` belongs to the arterial phase, one after it to the portal phase. The same functions serve a region's mean curve (`curve_values`) and every voxel
(`voxel_maps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

PER_S_TO_ML_MIN_100ML = 60.0 * 100.0  # s^-1 -> mL/min/100 mL
MAP_NAMES = ("HAP", "HPP", "TLP", "HPI", "TTP")
SLOPE_WINDOW = 5  # frames of the local quadratic that gives each slope (rules: slope_window_frames)
UNITS = {"HAP": "ml/min/100ml", "HPP": "ml/min/100ml", "TLP": "ml/min/100ml", "HPI": "%", "TTP": "s"}


@dataclass(frozen=True)
class InputCurves:
    """The enhancement (ΔHU) of the input regions at each frame, and what follows from them."""

    times_s: F64
    aorta: F64
    portal: F64
    spleen: F64

    @property
    def split_s(self) -> float:
        """t_s: the sampled time of the splenic peak."""
        return float(self.times_s[int(np.argmax(self.spleen))])

    @property
    def aortic_peak_hu(self) -> float:
        return float(np.max(self.aorta))

    @property
    def portal_peak_hu(self) -> float:
        return float(np.max(self.portal))

    @property
    def portal_peak_s(self) -> float:
        return float(self.times_s[int(np.argmax(self.portal))])

    def portal_frames(self) -> int:
        """Frames between the splenic and the portal peak (perfusion.md §6: warn under 3)."""
        t = self.times_s
        return int(np.count_nonzero((t > self.split_s) & (t <= self.portal_peak_s)))


@dataclass(frozen=True)
class CurveValues:
    """One tissue curve's maximum slopes and the maps' values."""

    arterial_slope_hu_s: float
    portal_slope_hu_s: float
    hap: float  # mL/min/100 mL
    hpp: float
    tlp: float
    hpi: float | None  # %
    ttp: float  # s from the first frame

    def as_dict(self) -> dict[str, float | None]:
        return {"HAP": self.hap, "HPP": self.hpp, "TLP": self.tlp, "HPI": self.hpi, "TTP": self.ttp}


def enhancement(frames: F32 | F64, baseline_frames: int) -> F32:
    """ΔHU of each frame (axis 0 is time) against the mean of the first `baseline_frames`."""
    a = np.asarray(frames, dtype=np.float32)
    base = a[:baseline_frames].mean(axis=0)
    return np.asarray(a - base[None], dtype=np.float32)


def slope_operator(times: F64, window: int) -> F64:
    """(n, n) matrix W: `W @ curve` is the curve's slope at each frame time, the derivative
    of a quadratic fitted by least squares to the `window` frames around it (a
    Savitzky-Golay derivative for uneven sampling; 2 gives the plain finite difference)."""
    n = times.size
    w = np.zeros((n, n), dtype=np.float64)
    half = max(window, 2) // 2
    for i in range(n):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        if window <= 2:
            lo, hi = (i, i + 2) if i + 1 < n else (i - 1, i + 1)
        dt = times[lo:hi] - times[i]
        degree = min(2, hi - lo - 1)
        v = np.vander(dt, degree + 1, increasing=True)
        w[i, lo:hi] = np.linalg.pinv(v)[1]
    return w


def _phase_slopes(curves: Any, times: F64, split_s: float, window: int) -> tuple[Any, Any]:
    """Max arterial- (frames before t_s) and portal-phase (after t_s) slopes of curves (time on axis 0)."""
    flat = np.asarray(curves, dtype=np.float64).reshape(times.size, -1)
    slopes = (slope_operator(times, window) @ flat).reshape(np.shape(curves))
    arterial = times < split_s - 1e-9
    portal = times > split_s + 1e-9
    neg = -np.inf
    a = slopes[arterial].max(axis=0) if arterial.any() else np.full(slopes.shape[1:], neg)
    p = slopes[portal].max(axis=0) if portal.any() else np.full(slopes.shape[1:], neg)
    return np.maximum(a, 0.0), np.maximum(p, 0.0)


def curve_values(curve: F64, inputs: InputCurves, window: int = SLOPE_WINDOW) -> CurveValues:
    """The maps' values of one tissue curve (ΔHU per frame), e.g. a region's mean curve."""
    a, p = _phase_slopes(np.asarray(curve, dtype=np.float64), inputs.times_s, inputs.split_s, window)
    return from_slopes(float(a), float(p), inputs.aortic_peak_hu, inputs.portal_peak_hu,
                       float(inputs.times_s[int(np.argmax(curve))]))


def from_slopes(arterial_slope: float, portal_slope: float, aortic_peak: float, portal_peak: float,
                ttp: float = float("nan")) -> CurveValues:
    """perfusion.md §6 steps 4-7 from the slopes (HU/s) and the input peaks (HU)."""
    if aortic_peak <= 0 or portal_peak <= 0:
        raise ValueError("the aortic and portal peak enhancements must be positive")
    hap = arterial_slope / aortic_peak * PER_S_TO_ML_MIN_100ML
    hpp = portal_slope / portal_peak * PER_S_TO_ML_MIN_100ML
    tlp = hap + hpp
    return CurveValues(arterial_slope, portal_slope, hap, hpp, tlp, hap / tlp * 100.0 if tlp > 0 else None, ttp)


@dataclass(frozen=True, eq=False)
class VoxelMaps:
    """Per-voxel maps on the dynamic series' grid (mL/min/100 mL, %, s) and helpers."""

    hap: F32
    hpp: F32
    tlp: F32
    hpi: F32  # NaN where TLP is 0
    ttp: F32
    peak_hu: F32  # peak enhancement (a blood-volume proxy, for vessel exclusion)
    mean_hu: F32  # the averaged image

    def get(self, name: str) -> F32:
        return {"HAP": self.hap, "HPP": self.hpp, "TLP": self.tlp, "HPI": self.hpi, "TTP": self.ttp}[name]


def voxel_maps(delta: F32, times: F64, inputs: InputCurves, mean_hu: F32, window: int = SLOPE_WINDOW) -> VoxelMaps:
    """Every voxel's maps from its (smoothed) enhancement curve; memory in slabs of slices."""
    shape = delta.shape[1:]
    out = {k: np.empty(shape, dtype=np.float32) for k in ("hap", "hpp", "ttp", "peak")}
    ka, kp = PER_S_TO_ML_MIN_100ML / inputs.aortic_peak_hu, PER_S_TO_ML_MIN_100ML / inputs.portal_peak_hu
    for z0 in range(0, shape[0], 8):
        part = delta[:, z0:z0 + 8]
        a, p = _phase_slopes(part, times, inputs.split_s, window)
        out["hap"][z0:z0 + 8] = a * ka
        out["hpp"][z0:z0 + 8] = p * kp
        out["ttp"][z0:z0 + 8] = times[np.argmax(part, axis=0)]
        out["peak"][z0:z0 + 8] = part.max(axis=0)
    tlp = out["hap"] + out["hpp"]
    with np.errstate(invalid="ignore", divide="ignore"):
        hpi = np.where(tlp > 0, out["hap"] / tlp * 100.0, np.nan).astype(np.float32)
    return VoxelMaps(out["hap"], out["hpp"], tlp.astype(np.float32), hpi, out["ttp"], out["peak"], mean_hu)


def region_curve(delta: F32, mask: BoolArray) -> F64:
    """The mean enhancement curve of a region."""
    return np.asarray(delta[:, mask].mean(axis=1), dtype=np.float64)
