"""Measurement and tracking accuracy on synthetic phantoms (ground truth known).

Runs:
- a set of ellipsoids (long axes 10-50 mm, rotated in the axial plane, CT/MR-like
  voxels including anisotropic in-plane pixels and 1-5 mm slices, some on an
  oblique pixel grid): long and short axis against the analytic diameters of the
  ellipsoid's largest cross-section on the acquired slice planes, volume against
  4/3 pi abc, 3D diameter against 2 max(a, b, c);
- SUV peak on analytic paraboloid hot spots (PERCIST 1 cm^3 sphere) on PET grids;
- the 3-timepoint phantom patient for tracking (registration + assignment).

Usage: .venv/bin/python bench/measure.py [--lesions N] [--seed S]
The last line is:
measure lesions=<n> long_axis_err_mm median=<a> max=<b> volume_err_pct median=<c> max=<d> tracking_correct=<k>/<m>
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.measure import geometry  # noqa: E402
from daemon.measure.intensity import lesion_intensity  # noqa: E402
from daemon.measure.phantom_patient import run_patient, score  # noqa: E402
from daemon.measure.phantoms import (  # noqa: E402
    axial_truth,
    in_plane_ellipsoid,
    make_volume,
    rotation_z,
    voxel_centres,
)
from daemon.volume import Volume  # noqa: E402

SPACINGS = [
    (1.0, 0.5, 0.5),  # 3D T1 MRI (seed: 0.5 x 0.5 x 1 mm)
    (1.0, 0.94, 0.94),
    (2.5, 0.78, 0.78),  # CT
    (5.0, 0.7, 0.7),  # CT, thick slices
    (3.0, 0.6, 0.9),  # anisotropic in-plane pixels
    (1.25, 1.0, 0.5),
]


def _grid(spacing: tuple[float, float, float], extent: float, oblique_deg: float) -> Volume:
    shape = tuple(int(math.ceil(extent / s)) + 1 for s in spacing)
    vol = make_volume(shape, spacing)  # type: ignore[arg-type]
    if oblique_deg:
        affine = vol.affine.copy()
        affine[:3, :3] = rotation_z(oblique_deg) @ affine[:3, :3]
        vol = Volume(array=vol.array, affine=affine, slices=vol.slices,
                     frame_of_reference_uid=vol.frame_of_reference_uid)
    return vol


def ellipsoid_errors(n: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {"long": [], "short": [], "volume_pct": [], "d3": [], "long_vs_3d_truth": [],
                                   "slice_mm": [], "height_slices": []}
    for case in range(n):
        spacing = SPACINGS[case % len(SPACINGS)]
        a = rng.uniform(5.0, 25.0)
        b = rng.uniform(max(5.0, 0.4 * a), a)
        c = rng.uniform(5.0, 20.0)
        extent = 2 * max(a, b, c) + 12.0
        vol = _grid(spacing, extent, 25.0 if case % 5 == 4 else 0.0)
        centre_index = np.array(vol.shape, dtype=float) / 2 + rng.uniform(-0.5, 0.5, 3)
        centre = vol.index_to_patient(centre_index)
        ell = in_plane_ellipsoid((float(centre[0]), float(centre[1]), float(centre[2])), a, b, c,
                                 rng.uniform(0.0, 180.0))
        mask = ell.inside(voxel_centres(vol))
        axes = geometry.axial_axes(vol, mask)
        if axes is None or axes.short_axis is None:
            raise SystemExit(f"case {case}: no axes")
        slice_z = vol.index_to_patient(np.column_stack([np.arange(vol.shape[0]), np.zeros((vol.shape[0], 2))]))[:, 2]
        true_long, true_short = axial_truth(ell, slice_z)
        out["long"].append(axes.long_axis.length_mm - true_long)
        out["short"].append(axes.short_axis.length_mm - true_short)
        out["long_vs_3d_truth"].append(axes.long_axis.length_mm - 2 * a)
        out["volume_pct"].append(100.0 * (geometry.volume_ml(vol, mask) - ell.volume_ml) / ell.volume_ml)
        d3 = geometry.max_3d_diameter(vol, mask)
        out["d3"].append((d3[0] if d3 else 0.0) - ell.max_3d_diameter_mm)
        out["slice_mm"].append(spacing[0])
        out["height_slices"].append(2 * c / spacing[0])
    return out


def suv_peak_errors(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    errors = []
    for spacing in [(2.0, 2.0, 2.0), (3.27, 4.07, 4.07), (2.5, 1.6, 1.6), (3.0, 2.73, 2.73)]:
        vol = make_volume((32, 32, 32), spacing, modality="PT")
        pts = voxel_centres(vol)
        top = pts[16, 16, 16]
        r2 = np.sum((pts - top) ** 2, axis=-1)
        c, a = rng.uniform(5.0, 20.0), rng.uniform(0.005, 0.03)
        suv = np.maximum(c - a * r2, 0.1)
        radius = (3.0 * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        truth = c - a * 0.6 * radius**2
        stats = lesion_intensity(vol.with_array(suv), r2 <= 15.0**2, "suv", peak_sphere_ml=1.0)
        errors.append(100.0 * (stats["suv_peak"] - truth) / truth)
        assert stats["suv_max"] == c
    return errors


def _dist(name: str, values: list[float], unit: str) -> str:
    v = np.abs(np.asarray(values))
    s = np.asarray(values)
    return (f"{name:<34} n={len(v):>3}  |err| median={np.median(v):.3f} p95={np.percentile(v, 95):.3f} "
            f"max={v.max():.3f} {unit}   signed mean={s.mean():+.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lesions", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    t0 = time.perf_counter()
    errs = ellipsoid_errors(args.lesions, args.seed)
    t1 = time.perf_counter()
    print("synthetic ellipsoids, long axes 10-50 mm; truth = analytic cross-section on the acquired slices")
    print(_dist("long axis", errs["long"], "mm"))
    print(_dist("short axis", errs["short"], "mm"))
    print(_dist("long axis vs true 2a (slice sampling)", errs["long_vs_3d_truth"], "mm"))
    print(_dist("max 3D diameter", errs["d3"], "mm"))
    print(_dist("volume", errs["volume_pct"], "%"))
    print(f"  ({(t1 - t0) / args.lesions * 1000:.0f} ms per lesion for axes, 3D diameter and volume)")
    slice_mm = np.asarray(errs["slice_mm"])
    for thickness in sorted(set(slice_mm.tolist())):
        sel = slice_mm == thickness
        la = np.abs(np.asarray(errs["long"])[sel])
        va = np.abs(np.asarray(errs["volume_pct"])[sel])
        print(f"  slices {thickness:>4} mm: n={int(sel.sum()):>2} long axis |err| median={np.median(la):.3f} "
              f"max={la.max():.3f} mm; volume |err| median={np.median(va):.2f} max={va.max():.2f} %")
    few = np.asarray(errs["height_slices"]) < 3
    if few.any():
        va = np.abs(np.asarray(errs["volume_pct"])[few])
        print(f"  lesions spanning < 3 slices: n={int(few.sum())}, volume |err| max={va.max():.2f} %")
    peak = suv_peak_errors(args.seed)
    print(_dist("SUV peak (1 cm3 sphere), paraboloid", peak, "%"))
    t2 = time.perf_counter()
    run = run_patient()
    result = score(run)
    t3 = time.perf_counter()
    print(f"tracking phantom patient: 3 timepoints, {result.correct}/{result.total} decisions correct "
          f"in {t3 - t2:.1f} s")
    for n, alignments in enumerate(run.alignments):
        for m, al in enumerate(alignments):
            print(f"  timepoint {n} vs {m}: {al.method.value}, {al.rotation_deg:.1f} deg, {al.translation_mm:.1f} mm")
        for e in run.results[n].events:
            print(f"    {e.outcome.value:<11} {e.tracking_id:<4} priors={','.join(e.prior_ids) or '-':<8} "
                  f"confidence={e.confidence:.2f} {e.note}")
    for failure in result.failures:
        print(f"  FAILED: {failure}")
    long_abs = np.abs(errs["long"])
    vol_abs = np.abs(errs["volume_pct"])
    print(f"measure lesions={args.lesions} long_axis_err_mm median={np.median(long_abs):.3f} "
          f"max={long_abs.max():.3f} volume_err_pct median={np.median(vol_abs):.3f} max={vol_abs.max():.3f} "
          f"tracking_correct={result.correct}/{result.total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
