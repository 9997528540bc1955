"""Long/short axes of the demo liver patient's lesions: the route's model vs the truth (SYNTHETIC).

Runs the liver route's segmenter (the demo liver model through daemon.segment) and
measurement (daemon.measure) on the phantom timepoints of tests/e2e/test_liver_mets_e2e.py
(daemon.demo.patient, seed 1, no DICOM round trip) and prints, per lesion of 10 mm or more,
the analytic truth, the axis measured on the model's mask, and the same measurement of the
phantom's true mask, which separates the measurement's own error from the network's.
For each metastasis it also prints what the image itself says of the edge: the long axis
of the region darker than halfway between the lesion's core and the liver around it
(image smoothed by 1.5 mm), "half-contrast", and of the region whose surface has the steepest
mean gradient, whatever its HU, "strongest edge" (the edge the eye sees); where both miss the
truth, the image does not place the edge (a Chun group 3 look's 10 mm ill-defined interface and
patchy rim), and no reading of it can be trusted to do better.

    .venv/bin/python bench/liver_axes.py [--size small|full|cover] [--model models/demo-liver-mets]

--size cover: daemon.demo.patient.LIVER_COVER, the e2e test's grid (the full grid in plane and at its
slice positions, over 24 cm instead of 40).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.demo.patient import GRIDS, LIVER_COVER, POSES, TIMEPOINTS, liver_lesions_at  # noqa: E402
from daemon.demo.phantom import Phantom, liver_ct_phantom, phantom_volume  # noqa: E402
from daemon.measure.geometry import axial_axes  # noqa: E402
from daemon.measure.lesions import MeasureOptions, crop, measure_mask  # noqa: E402
from daemon.segment import load_model, segment, split_roles  # noqa: E402
from daemon.segment.runtime import LoadedModel  # noqa: E402
from daemon.volume import Volume  # noqa: E402

MEASURED_FROM_MM = 10.0  # as the e2e test


def axis(volume: Volume, mask: np.ndarray, node: bool) -> float | None:
    axes = axial_axes(volume, mask)
    if axes is None:
        return None
    cal = axes.short_axis if node else axes.long_axis
    return None if cal is None else cal.length_mm


@dataclass(frozen=True)
class Around:
    """A lesion's neighbourhood: the image smoothed by 1.5 mm, the distances inside and outside the
    true lesion's surface (mm), its core (deeper than half its inradius) and the liver 8-12 mm around it."""

    volume: Volume
    image: np.ndarray
    inside: np.ndarray
    outside: np.ndarray
    core: np.ndarray
    ring: np.ndarray

    def region(self, level: float) -> np.ndarray | None:
        """The connected region darker than `level` HU, within 8 mm of the lesion, around its centre."""
        comp, _ = ndimage.label((self.image < level) & (self.outside <= 8.0))
        centre = comp[np.unravel_index(int(np.argmax(self.inside)), self.inside.shape)]
        return (comp == centre) if centre else None


def around(volume: Volume, own: np.ndarray, liver: np.ndarray) -> Around:
    spacing = np.asarray(volume.spacing)
    margin = np.ceil(14.0 / spacing).astype(int)
    lo = np.maximum(np.argwhere(own).min(axis=0) - margin, 0)
    hi = np.argwhere(own).max(axis=0) + margin + 1
    box = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))
    sub, mine = crop(volume, box), own[box]
    inside = ndimage.distance_transform_edt(mine, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mine, sampling=spacing)
    image = ndimage.gaussian_filter(np.asarray(sub.array, dtype=np.float32), 1.5 / spacing)
    return Around(sub, image, inside, outside, inside > inside.max() / 2,
                  (outside >= 8.0) & (outside <= 12.0) & liver[box])


def half_contrast(a: Around) -> float | None:
    """The long axis of the region darker than halfway between the lesion's core and the liver around it."""
    level = (float(a.image[a.core].mean()) + float(np.median(a.image[a.ring]))) / 2
    region = a.region(level)
    return None if region is None else axis(a.volume, region, False)


def strongest_edge(a: Around) -> float | None:
    """The long axis of the region whose surface has the steepest mean HU gradient, of the levels from
    the core's mean to the liver's median in 1 HU steps: the edge the eye sees, wherever its HU."""
    gradient = np.sqrt(sum(np.gradient(a.image, s, axis=k) ** 2 for k, s in enumerate(a.volume.spacing)))
    best: tuple[float, np.ndarray] | None = None
    for level in np.arange(float(a.image[a.core].mean()), float(np.median(a.image[a.ring])), 1.0):
        region = a.region(level)
        if region is None:
            continue
        steep = float(gradient[region & ~ndimage.binary_erosion(region)].mean())
        if best is None or steep > best[0]:
            best = (steep, region)
    return None if best is None else axis(a.volume, best[1], False)


Row = tuple[str, float, float | None, float | None, dict[str, float | None]]


def timepoint_rows(ph: Phantom, model: LoadedModel, name: str) -> list[Row]:
    """(lesion id, truth, on the model's mask, on the true mask, the image's own readings: half-contrast
    and strongest edge, for metastases) for lesions >= 10 mm."""
    volume = phantom_volume(ph, name)
    lesions, _ = split_roles(segment(volume, model), model.manifest)
    measured = measure_mask(volume, lesions, MeasureOptions(quantity="hu", intensity_statistics=False))
    rows = []
    for les in ph.truth.lesions:
        node = les.kind == "node"
        truth = les.perpendicular_diameter_mm if node else les.longest_axial_diameter_mm
        if truth < MEASURED_FROM_MM:
            continue
        own = ph.labels == les.label
        best = max(measured, key=lambda m: int(m.full_mask(own.shape)[own].sum()), default=None)
        got = None
        if best is not None and best.full_mask(own.shape)[own].any():
            cal = best.measurements.short_axis if node else best.measurements.long_axis
            got = None if cal is None else cal.length_mm
        near = None if node else around(volume, own, ph.truth.organs["liver"])
        image = {} if near is None else {"half-contrast": half_contrast(near), "strongest edge": strongest_edge(near)}
        rows.append((les.lesion_id, truth, got, axis(volume, own, node), image))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="small", choices=("small", "full", "cover"))
    ap.add_argument("--seed", type=int, default=1, help="the patient's seed (the e2e test's: 1)")
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parents[1] / "models" / "demo-liver-mets")
    args = ap.parse_args()
    model = load_model(args.model, providers="cpu")
    worst_model = worst_mask = 0.0
    grid = LIVER_COVER if args.size == "cover" else GRIDS[("CT", args.size)]
    for t, tp in enumerate(TIMEPOINTS):
        ph = liver_ct_phantom(grid, liver_lesions_at(t), POSES[t], seed=args.seed * 10 + t)
        for lid, truth, got, on_truth, image in timepoint_rows(ph, model, f"liver-axes-{tp}"):
            e_model = np.nan if got is None else got - truth
            e_mask = np.nan if on_truth is None else on_truth - truth
            worst_model = max(worst_model, abs(e_model) if got is not None else np.inf)
            worst_mask = max(worst_mask, abs(e_mask))
            print(f"{tp} {lid:3s} truth {truth:6.2f}  model {got or 0:6.2f} ({e_model:+.2f})  "
                  f"true mask {on_truth or 0:6.2f} ({e_mask:+.2f})  network {e_model - e_mask:+.2f}"
                  + "".join(f"  {name} {v:6.2f} ({v - truth:+.2f})" for name, v in image.items() if v is not None),
                  flush=True)
    print(f"largest |error| model {worst_model:.2f} mm, true mask {worst_mask:.2f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
