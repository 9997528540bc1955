"""Fixtures for the imaging tests (SYNTHETIC series)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import Written, make_datasets, ramp
from numpy.typing import NDArray

from daemon.demo.dicom import stored_values, write_datasets
from daemon.demo.phantom import Grid


@pytest.fixture
def write_series(tmp_path: Path) -> Callable[..., Written]:
    counter = [0]

    def make(grid: Grid, modality: str = "MR", image: NDArray[np.float32] | None = None,
             shuffle: bool = True, **kw: object) -> Written:
        img = ramp(grid.shape) if image is None else image
        dsets = make_datasets(grid, modality, img, **kw)
        counter[0] += 1
        folder = tmp_path / f"series{counter[0]}"
        order = list(range(len(dsets)))
        if shuffle:
            np.random.default_rng(counter[0]).shuffle(order)
        write_datasets([dsets[o] for o in order], folder)
        return Written(folder, grid.affine(), stored_values(img, modality), dsets)

    return make
