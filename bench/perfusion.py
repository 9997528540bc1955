"""Seconds per liver CT perfusion study on this CPU (not a timed test).

A SYNTHETIC dynamic study (daemon.demo.perfusion_phantom): 160 mm of coverage at 2.5 mm (64
slices), 512x512, 21 frames: 15 at 1 s as in the seed, then 6 sparser ones (`TIMES_S`). Not the
seed's 6 at 20 s: those sample this phantom's portal vein (peak 180 HU at 32 s) at 25 s and 45 s
only (56 and 44 HU), under `portal_min_peak_hu`, and the study is "not computable: no portal vein". Timed: what the
ct_perfusion pipeline does between reading the frames and writing the report: motion correction,
the liver model on the averaged image, input regions, voxel maps, per-lesion values and ratios.
Run: .venv/bin/python bench/perfusion.py   (last line: `perfusion seconds per_study=...`)
"""

from __future__ import annotations

import time

from daemon.criteria.params import PerfusionParams
from daemon.criteria.rules import RulesSource
from daemon.demo.perfusion_phantom import Protocol, as_dynamic, perfusion_phantom
from daemon.demo.phantom import Grid
from daemon.measure.perfusion_analysis import analyse, averaged, motion_corrected
from daemon.measure.perfusion_params import DynamicParams
from daemon.pipelines.followup_input import StudyImage
from daemon.pipelines.perfusion_lesions import find_lesions

FOV_MM = 400.0
TIMES_S = (*(11.0 + n for n in range(15)), 29.0, 33.0, 37.0, 45.0, 65.0, 85.0)


def main() -> None:
    grid = Grid((64, 512, 512), (2.5, FOV_MM / 512, FOV_MM / 512), centre=(-20.0, 0.0, 62.0))
    t0 = time.perf_counter()
    ph = perfusion_phantom(Protocol(grid=grid, times_s=TIMES_S))
    made = time.perf_counter() - t0
    rules = RulesSource()
    params, criteria = rules.load(DynamicParams, "perfusion_dynamic"), rules.load(PerfusionParams, "perfusion")
    dyn = as_dynamic(ph)
    t = time.perf_counter()
    moved = motion_corrected(dyn, params)
    t_motion = time.perf_counter() - t
    avg = averaged(dyn, moved)
    t = time.perf_counter()
    found = find_lesions("demo-liver-mets", "cpu", StudyImage(avg, (), dyn.series_instance_uid), dyn.reference, None,
                         "bench", "bench", "liver-ct-perfusion", "averaged perfusion image")
    t_seg = time.perf_counter() - t
    t = time.perf_counter()
    study = analyse(dyn, found.inputs(), params, criteria, found.liver, "model", corrected=moved)
    t_maps = time.perf_counter() - t
    total = t_motion + t_seg + t_maps
    print(f"phantom made in {made:.1f} s (not counted); {len(dyn.frames)} frames of {grid.shape}")
    print(f"motion correction {t_motion:.1f} s, liver model {t_seg:.1f} s, inputs + maps + lesions {t_maps:.1f} s; "
          f"{len(study.lesions)} lesion(s)")
    print(f"perfusion seconds per_study={total:.1f}")


if __name__ == "__main__":
    main()
