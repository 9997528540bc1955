"""Is a series with repeated slice positions dynamic (4D) rather than duplicated? For the QA report.

A dynamic series (a perfusion, a multi-phase or cardiac acquisition in one series) acquires
the same positions again and again over time: repeated positions are its time frames, not a
defect. Frames are told apart as `daemon.imaging.dynamic` reads them: by
TemporalPositionIdentifier (or the enhanced TemporalPositionIndex), else AcquisitionNumber,
else the n-th acquisition time at each position is frame n (AcquisitionDateTime,
AcquisitionTime, ContentTime, TriggerTime). It is dynamic when there are at least two frames,
no frame holds a position twice and every frame covers at least half of the positions (a
slice sent twice makes a one-slice "frame": a duplicate, still reported as one). Pure: headers in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from daemon.imaging.dynamic import frame_time

_MIN_COVERAGE = 0.5  # a frame must hold at least this share of the series' positions


@dataclass(frozen=True)
class Dynamic:
    """The time frames of a dynamic series."""

    frames: int
    positions: int
    times_s: tuple[float, ...] | None  # each frame's first acquisition, seconds from the first frame
    told_by: str  # what told the frames apart
    incomplete: tuple[tuple[int, int], ...]  # (frame number, positions it holds) for frames missing some

    def describe(self) -> str:
        head = (f"dynamic series (4D): {self.frames} time frames of {self.positions} slice positions, "
                f"frames told apart by {self.told_by}")
        if self.times_s is None:
            return head + "; frame times not in the headers"
        steps = sorted({round(b - a, 1) for a, b in zip(self.times_s, self.times_s[1:], strict=False)})
        step = f"{steps[0]:g} s" if len(steps) == 1 else f"{steps[0]:g} to {steps[-1]:g} s"
        times = ", ".join(f"{t:g}" for t in self.times_s)
        return f"{head}; over {self.times_s[-1]:g} s, a frame every {step}; frame times (s): {times}"

    def findings(self) -> list[str]:
        return [f"dynamic series: frame {n} holds {held} of the {self.positions} slice positions"
                for n, held in self.incomplete]


def _time(ds: Dataset) -> float | None:
    t = frame_time(ds)
    if t is None and ds.get("TriggerTime") not in (None, ""):
        t = float(ds.TriggerTime) / 1000.0  # ms
    return t


def _identifier(headers: Sequence[Dataset]) -> tuple[str, list[int]] | None:
    for keyword in ("TemporalPositionIdentifier", "TemporalPositionIndex", "AcquisitionNumber"):
        values = [ds.get(keyword) for ds in headers]
        if any(v in (None, "") for v in values):
            continue
        try:
            numbers = [int(v) for v in values]
        except (TypeError, ValueError):  # a multi-valued or malformed element
            continue
        if len(set(numbers)) > 1:
            return keyword, numbers
    return None


def _rank_by_time(positions: Sequence[int], times: Sequence[float | None]) -> list[int] | None:
    """Frame n = the n-th acquisition at each position (None without every time)."""
    if any(t is None for t in times):
        return None
    out = [0] * len(positions)
    for p in set(positions):
        at = sorted((i for i, q in enumerate(positions) if q == p), key=lambda i: times[i] or 0.0)
        for rank, i in enumerate(at):
            out[i] = rank
    return out


def dynamic_frames(headers: Sequence[Dataset], positions: Sequence[int]) -> Dynamic | None:
    """The frames of a series whose slice `positions` (one key per header, equal = same position)
    repeat; None when the repetition is not a dynamic acquisition."""
    if len(set(positions)) == len(positions):
        return None
    times = [_time(ds) for ds in headers]
    found = _identifier(headers)
    told_by, keys = found if found else ("acquisition time at each position", _rank_by_time(positions, times))
    if keys is None:
        return None
    frames: dict[int, list[int]] = {}
    for i, k in enumerate(keys):
        frames.setdefault(k, []).append(i)
    n_positions = len(set(positions))
    if len(frames) < 2 or any(len({positions[i] for i in idx}) < len(idx) for idx in frames.values()):
        return None
    if any(len(idx) < _MIN_COVERAGE * n_positions for idx in frames.values()):
        return None
    starts = {k: min((t for t in (times[i] for i in idx) if t is not None), default=None) for k, idx in frames.items()}
    order = sorted(frames, key=lambda k: (starts[k] is None, starts[k] or 0.0, k))
    firsts = [starts[k] for k in order]
    rel = None if any(t is None for t in firsts) else tuple(round((t or 0.0) - (firsts[0] or 0.0), 1) for t in firsts)
    incomplete = tuple((n, len(frames[k])) for n, k in enumerate(order, start=1) if len(frames[k]) < n_positions)
    return Dynamic(len(frames), n_positions, rel, told_by, incomplete)
