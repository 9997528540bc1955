"""Long/short axes of the demo liver patient's lesions: the route's model vs the truth (SYNTHETIC).

Runs the liver route's segmenter (the demo liver model through daemon.segment) and
measurement (daemon.measure) on the phantom timepoints of tests/e2e/test_liver_mets_e2e.py
(daemon.demo.patient, seed 1, no DICOM round trip) and prints, per lesion of 10 mm or more,
the analytic truth, the axis measured on the model's mask, and the same measurement of the
phantom's true mask, which separates the measurement's own error from the network's.
For each metastasis it also prints what the image itself says of the edge: the long axis
of the region darker than halfway between the lesion's core and the liver around it
(image smoothed by 1.5 mm), "half-contrast"; where that misses the truth, so will any
reading of the image (a Chun group 3 look's 10 mm ill-defined interface and patchy rim).

    .venv/bin/python bench/liver_axes.py [--size small|full|cover] [--model models/demo-liver-mets]

--size cover: daemon.demo.patient.LIVER_COVER, the e2e test's grid (the full grid in plane and at its
slice positions, over 24 cm instead of 40).
"""

from __future__ import annotations

import argparse
import sys
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


def half_contrast(volume: Volume, own: np.ndarray, liver: np.ndarray) -> float | None:
    """The long axis of the region darker than halfway between the lesion's core (deeper than half its
    inradius) and the liver 8-12 mm around it, on the image smoothed by 1.5 mm, within 8 mm of the lesion."""
    spacing = np.asarray(volume.spacing)
    margin = np.ceil(14.0 / spacing).astype(int)
    lo = np.maximum(np.argwhere(own).min(axis=0) - margin, 0)
    hi = np.argwhere(own).max(axis=0) + margin + 1
    box = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))
    sub, mine = crop(volume, box), own[box]
    inside = ndimage.distance_transform_edt(mine, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mine, sampling=spacing)
    image = ndimage.gaussian_filter(np.asarray(sub.array, dtype=np.float32), 1.5 / spacing)
    core, ring = inside > inside.max() / 2, (outside >= 8.0) & (outside <= 12.0) & liver[box]
    threshold = (float(image[core].mean()) + float(np.median(image[ring]))) / 2
    comp, _ = ndimage.label((image < threshold) & (outside <= 8.0))
    centre = comp[np.unravel_index(int(np.argmax(inside)), inside.shape)]
    return axis(sub, comp == centre, False) if centre else None


def timepoint_rows(ph: Phantom, model: LoadedModel, name: str
                   ) -> list[tuple[str, float, float | None, float | None, float | None]]:
    """(lesion id, truth, on the model's mask, on the true mask, half-contrast) for lesions >= 10 mm."""
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
        edge = None if node else half_contrast(volume, own, ph.truth.organs["liver"])
        rows.append((les.lesion_id, truth, got, axis(volume, own, node), edge))
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
        for lid, truth, got, on_truth, edge in timepoint_rows(ph, model, f"liver-axes-{tp}"):
            e_model = np.nan if got is None else got - truth
            e_mask = np.nan if on_truth is None else on_truth - truth
            worst_model = max(worst_model, abs(e_model) if got is not None else np.inf)
            worst_mask = max(worst_mask, abs(e_mask))
            print(f"{tp} {lid:3s} truth {truth:6.2f}  model {got or 0:6.2f} ({e_model:+.2f})  "
                  f"true mask {on_truth or 0:6.2f} ({e_mask:+.2f})  network {e_model - e_mask:+.2f}"
                  + ("" if edge is None else f"  half-contrast {edge:6.2f} ({edge - truth:+.2f})"), flush=True)
    print(f"largest |error| model {worst_model:.2f} mm, true mask {worst_mask:.2f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
