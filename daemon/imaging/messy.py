"""Detect messy series and plan a regular stack of slices, with a reason for everything done.

Problems found (each a `Problem` with a code, a sentence and what was done):

- `localizers`: localiser/scout images mixed in (ImageType LOCALIZER, or a few
  images in another orientation): always dropped.
- `mixed-orientation`, `mixed-size`: the remaining frames are not one stack
  (different ImageOrientationPatient, or Rows/Columns/PixelSpacing): resample
  keeps the largest consistent stack; refuse refuses.
- `duplicate-slices`: two different instances at one position: resample keeps
  the first (lowest InstanceNumber); refuse refuses. The same SOP Instance UID
  twice (one file copied) is silently read once.
- `missing-slices`, `uneven-spacing`, `gantry-tilt` (slices shifted in-plane
  along the stack, or otherwise misaligned): resample interpolates onto a
  regular orthogonal grid at the usual spacing; refuse refuses.
- `single-slice`: one slice only; its spacing is the SliceThickness.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from daemon.imaging.frames import Frame

F64 = NDArray[np.float64]


class MessyPolicy(StrEnum):
    RESAMPLE = "resample"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    action: str  # "dropped" | "kept largest stack" | "kept first" | "resampled" | "refused" | "noted"

    def __str__(self) -> str:
        return f"{self.code}: {self.message} -> {self.action}"


class SeriesRefused(Exception):
    """A series that cannot become a volume under the current policy; `problems` say why."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems if p.action == "refused") or "no usable frames")


@dataclass(frozen=True, eq=False)
class StackPlan:
    """Frames sorted along the slice normal (ascending), one per position."""

    frames: tuple[Frame, ...]
    depths: F64  # position . normal for each frame
    spacing: float  # the regular slice spacing (mm)
    needs_resampling: bool
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Tolerances:
    relative: float = 0.01  # of the slice spacing
    absolute_mm: float = 0.01
    orientation: float = 1e-3  # on direction cosines


def _same_orientation(a: Frame, b: Frame, tol: Tolerances) -> bool:
    return bool(np.abs(a.row_dir - b.row_dir).max() <= tol.orientation
                and np.abs(a.col_dir - b.col_dir).max() <= tol.orientation)


def _same_size(a: Frame, b: Frame) -> bool:
    return (a.rows, a.columns) == (b.rows, b.columns) and all(
        abs(x - y) <= 1e-4 * max(x, y) for x, y in zip(a.pixel_spacing, b.pixel_spacing, strict=True)
    )


def _cluster(frames: list[Frame], tol: Tolerances) -> list[list[Frame]]:
    """Frames grouped by orientation and size (within tolerance), largest group first."""
    groups: list[list[Frame]] = []
    for f in frames:
        for g in groups:
            if _same_orientation(g[0], f, tol) and _same_size(g[0], f):
                g.append(f)
                break
        else:
            groups.append([f])
    return sorted(groups, key=len, reverse=True)


def _split_groups(frames: list[Frame], policy: MessyPolicy, tol: Tolerances) -> tuple[list[Frame], list[Problem]]:
    problems: list[Problem] = []
    locs = [f for f in frames if f.is_localizer]
    if locs:
        problems.append(Problem("localizers", f"{len(locs)} localiser image(s) mixed in (ImageType LOCALIZER)", "dropped"))
    rest = [f for f in frames if not f.is_localizer]
    ordered = _cluster(rest, tol)
    if len(ordered) <= 1:
        return rest, problems
    main = ordered[0]
    others = ordered[1:]
    small = [g for g in others if len(g) <= 3 and not _same_orientation(g[0], main[0], tol)]
    if small:
        n = sum(len(g) for g in small)
        problems.append(Problem("localizers", f"{n} image(s) in another orientation look like localisers", "dropped"))
    others = [g for g in others if not any(g is s for s in small)]
    if not others:
        return main, problems
    mixed_orientation = any(not _same_orientation(g[0], main[0], tol) for g in others)
    code = "mixed-orientation" if mixed_orientation else "mixed-size"
    what = "orientations" if mixed_orientation else "sizes (Rows/Columns/PixelSpacing)"
    n_other = sum(len(g) for g in others)
    msg = f"{len(others) + 1} different {what}: {len(main)} frames in the largest stack, {n_other} others"
    if policy is MessyPolicy.REFUSE:
        problems.append(Problem(code, msg, "refused"))
        return main, problems
    problems.append(Problem(code, msg, "kept largest stack"))
    return main, problems


def _dedupe(frames: list[Frame], depths: F64, policy: MessyPolicy, tol: float) -> tuple[list[Frame], F64, list[Problem]]:
    keep: list[int] = []
    dups: list[float] = []
    for idx in range(len(frames)):
        if keep and abs(depths[idx] - depths[keep[-1]]) <= tol:
            dups.append(float(depths[idx]))
            continue
        keep.append(idx)
    if not dups:
        return frames, depths, []
    per_position = len(frames) / len(keep)
    if per_position >= 2 and len(frames) % len(keep) == 0 and len(dups) == len(frames) - len(keep):
        msg = (f"every one of {len(keep)} slice positions appears {int(per_position)} times "
               "(a 4D, multi-phase or multi-echo series); the first of each position kept "
               "(daemon.imaging.dynamic reads every frame)")
    else:
        msg = f"{len(dups)} duplicate slice(s) at the same position (first at {dups[0]:.2f} mm along the normal)"
    action = "refused" if policy is MessyPolicy.REFUSE else "kept first"
    return [frames[i] for i in keep], depths[keep], [Problem("duplicate-slices", msg, action)]


def _spacing_problems(depths: F64, tol: Tolerances) -> tuple[float, list[Problem]]:
    gaps = np.diff(depths)
    typical = float(np.median(gaps))
    counts = Counter(np.round(gaps, 3).tolist())
    mode = float(max(counts.items(), key=lambda kv: (kv[1], -kv[0]))[0])
    if counts[mode] >= len(gaps) / 2:
        typical = mode
    limit = max(2 * tol.absolute_mm, tol.relative * typical)  # IPP is often written to 0.01 mm
    problems: list[Problem] = []
    missing = [(i, g) for i, g in enumerate(gaps) if g > 1.5 * typical]
    if missing:
        n_missing = sum(int(round(g / typical)) - 1 for _, g in missing)
        where = ", ".join(f"after slice {i} ({g:.2f} mm gap)" for i, g in missing[:3])
        problems.append(Problem("missing-slices", f"about {n_missing} slice(s) missing: {where}", ""))
    uneven = [g for g in gaps if abs(g - typical) > limit and g <= 1.5 * typical]
    if uneven:
        problems.append(Problem(
            "uneven-spacing",
            f"{len(uneven)} gap(s) differ from the usual {typical:.3f} mm (from {min(gaps):.3f} to {max(gaps):.3f} mm)",
            "",
        ))
    return typical, problems


def _tilt_problem(frames: list[Frame], depths: F64, normal: F64, tol: Tolerances) -> Problem | None:
    p0 = frames[0].position
    offsets = np.array([f.position - p0 - (d - depths[0]) * normal for f, d in zip(frames, depths, strict=True)])
    worst = float(np.linalg.norm(offsets, axis=1).max())
    if worst <= max(5 * tol.absolute_mm, 0.05 * min(frames[0].pixel_spacing)):  # header rounding is not tilt
        return None
    span = float(depths[-1] - depths[0])
    shift = float(np.linalg.norm(offsets[-1]))
    angle = math.degrees(math.atan2(shift, span)) if span > 0 else 0.0
    return Problem("gantry-tilt", f"slices shift in-plane along the stack ({worst:.2f} mm; about {angle:.1f} degrees of tilt)", "")


def plan_stack(frames: list[Frame], policy: MessyPolicy = MessyPolicy.RESAMPLE, tol: Tolerances | None = None) -> StackPlan:
    """Sort, check and plan a regular stack; raise SeriesRefused when the policy says so."""
    tol = tol or Tolerances()
    seen: set[tuple[str, int | None]] = set()
    unique = []
    for f in frames:
        key = (f.sop_instance_uid, f.frame_number)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    stack, problems = _split_groups(unique, policy, tol)
    if not stack:
        raise SeriesRefused((*problems, Problem("no-geometry", "no frame with image position and orientation", "refused")))
    normal = stack[0].normal
    stack.sort(key=lambda f: (float(f.position @ normal), f.instance_number))
    depths = np.array([float(f.position @ normal) for f in stack], dtype=np.float64)
    stack, depths, dup = _dedupe(stack, depths, policy, tol.absolute_mm)
    problems += dup
    if len(stack) == 1:
        thick = stack[0].thickness or 1.0
        problems.append(Problem("single-slice", f"one slice only; slice spacing taken as {thick:.3g} mm", "noted"))
        return _finish(stack, depths, thick, False, problems)
    spacing, found = _spacing_problems(depths, tol)
    tilt = _tilt_problem(stack, depths, normal, tol)
    if tilt is not None:
        found.append(tilt)
    action = "refused" if policy is MessyPolicy.REFUSE else "resampled"
    found = [Problem(p.code, p.message, action) for p in found]
    return _finish(stack, depths, spacing, bool(found), problems + found)


def _finish(stack: list[Frame], depths: F64, spacing: float, resample: bool, problems: list[Problem]) -> StackPlan:
    if any(p.action == "refused" for p in problems):
        raise SeriesRefused(tuple(problems))
    return StackPlan(tuple(stack), depths, spacing, resample, tuple(problems))
