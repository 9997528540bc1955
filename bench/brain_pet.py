"""Seconds per study of the brain PET route on SYNTHETIC phantoms (small grid 64x100x100 at
2.5 mm): static FDOPA and FET, dynamic FET (8 frames of 5 min), dual-phase FDG (two series):
`.venv/bin/python bench/brain_pet.py`."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from daemon.demo import brain_pet_phantom as bp
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.brain_pet import run


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases: dict[str, Callable[[], bp.BrainPetStudy]] = {
            "FDOPA static": lambda: bp.write(out, "FDOPA", t=1),
            "FET static": lambda: bp.write(out, "FET", t=1),
            "FET dynamic": lambda: bp.write_dynamic_fet(out, t=1),
            "FDG dual-phase": lambda: bp.write_dual_phase_fdg(out, t=1),
        }
        for name, make in cases.items():
            study = make()
            for n in range(2):  # the first run also loads nilearn and the MNI maps
                t0 = time.perf_counter()
                run(PipelineInput(study.study_instance_uid, "brain-pet-amino", study.files))
                print(f"{name}, run {n + 1}: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
