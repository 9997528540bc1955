"""Split a model's mask by label role: lesions to measure, organs to use as reference regions.

A model may answer both lesions (measured, tracked, reported) and organs (the
liver around its metastases, used for the Chun features and the lesion sites;
never reported as a lesion). Labels are exclusive in a mask, so an organ's array
holds the organ's own voxels only: a metastasis inside the liver is in the lesion
mask, not in the "liver" array (add the lesion mask back where the whole organ is
wanted).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from daemon.segment.manifest import Manifest
from daemon.volume import LesionMask

BoolArray = NDArray[np.bool_]


def split_roles(mask: LesionMask, manifest: Manifest) -> tuple[LesionMask, dict[str, BoolArray]]:
    """The mask restricted to lesion labels (label_info too), and organ name (lower case) -> its voxels.

    Raises ValueError when the mask holds a value the manifest has no label for
    (a mask from another model).
    """
    labels = mask.labels
    present = np.flatnonzero(np.bincount(labels.ravel())) if labels.size else np.zeros(0, dtype=np.intp)
    known = {lab.value for lab in manifest.labels}
    unknown = [int(v) for v in present if v and int(v) not in known]
    if unknown:
        raise ValueError(f"the mask holds label values {unknown} that model {manifest.name} does not have")
    organs = {lab.name.lower(): labels == lab.value for lab in manifest.labels if lab.role == "organ"}
    lesion_values = {lab.value for lab in manifest.labels if lab.role == "lesion"}
    info = tuple(i for i in mask.label_info if i.value in lesion_values)
    if not organs and len(info) == len(mask.label_info):
        return mask, organs
    keep = np.zeros(max(known) + 1, dtype=bool)  # every value present is known
    keep[sorted(lesion_values)] = True
    kept = np.where(keep[labels], labels, 0).astype(labels.dtype, copy=False)
    return LesionMask(volume=mask.volume, labels=kept, label_info=info), organs
