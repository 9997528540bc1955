"""Time-activity curves of a dynamic PET: the mean of a region in each frame, the time to peak
and the slope over a window (Galldiks 2015 for FET: TTP of the lesion's curve; slope [impl]).
Pure: arrays in, numbers out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Curve:
    mid_min: tuple[float, ...]  # frame mid-times, minutes p.i.
    values: tuple[float, ...]  # the region's mean (SUVbw) per frame

    @property
    def time_to_peak_min(self) -> float:
        """The mid-time of the frame where the curve is highest (minutes p.i.)."""
        return self.mid_min[int(np.argmax(self.values))]

    def slope_per_hour(self, window: tuple[float, float]) -> float | None:
        """Least-squares slope (SUV per hour) of the frames whose mid-time lies in `window`; None below 2."""
        t = np.asarray(self.mid_min, dtype=np.float64)
        v = np.asarray(self.values, dtype=np.float64)
        keep = (t >= window[0]) & (t <= window[1])
        if keep.sum() < 2:
            return None
        return float(np.polyfit(t[keep] / 60.0, v[keep], 1)[0])


def curve(frames: Sequence[NDArray[np.float32]], spans: Sequence[tuple[float, float]], mask: BoolArray) -> Curve:
    """The region's mean in each frame (same grid as `mask`), at the frames' mid-times."""
    if not mask.any():
        raise ValueError("empty region: no time-activity curve")
    values = tuple(float(np.asarray(f, dtype=np.float64)[mask].mean()) for f in frames)
    return Curve(tuple((a + b) / 2.0 for a, b in spans), values)


def parse_spans(text: str) -> tuple[tuple[float, float], ...]:
    """"a,b c,d ..." (as brain_pet_input writes the frames' minutes) -> ((a, b), (c, d), ...)."""
    out = []
    for part in text.split():
        a, b = part.split(",")
        out.append((float(a), float(b)))
    return tuple(out)
