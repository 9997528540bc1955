"""The MNI152 2009a symmetric grey- and white-matter probability maps, read from the files
that ship inside nilearn (no download: `nilearn.datasets.load_mni152_gm_template` /
`load_mni152_wm_template`), as `daemon.measure.brain_atlas.TissueMaps` for the brain PET
route. nilearn is an optional dependency (the extra nadir[pet]); it is imported only here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from daemon.measure.brain_atlas import TissueMaps

MISSING_NILEARN = (
    "nilearn is not installed: the brain PET route's reference regions use the MNI152 template and "
    "tissue maps shipped inside it (install the extra nadir[pet]: pip install 'nadir[pet]')"
)


def _nilearn_datasets() -> Any:
    try:
        from nilearn import datasets
    except ImportError as exc:
        raise ImportError(MISSING_NILEARN) from exc
    return datasets


@lru_cache(maxsize=4)
def tissue_maps(grid_mm: float) -> TissueMaps:
    """The maps at `grid_mm` (from the 1 mm maps, block-averaged); loaded once per process."""
    datasets = _nilearn_datasets()
    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    aff_ijk = np.asarray(gm.affine, dtype=np.float64)
    grey = np.transpose(np.asarray(gm.dataobj, dtype=np.float32), (2, 1, 0))  # (i, j, k) -> (k, j, i)
    white = np.transpose(np.asarray(wm.dataobj, dtype=np.float32), (2, 1, 0))
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1.0  # (k, j, i) -> (i, j, k)
    affine = aff_ijk @ perm
    step = float(grid_mm) / float(np.linalg.norm(affine[:3, 0]))
    if abs(step - 1.0) > 1e-6:
        zoom = 1.0 / step
        grey = np.asarray(ndimage.zoom(grey, zoom, order=1), dtype=np.float32)
        white = np.asarray(ndimage.zoom(white, zoom, order=1), dtype=np.float32)
        scale = np.diag([step, step, step, 1.0])
        affine = affine @ scale
    return TissueMaps(np.clip(grey, 0, 1), np.clip(white, 0, 1), affine)
