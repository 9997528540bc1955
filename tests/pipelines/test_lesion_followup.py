"""The lesion-follow-up skeleton's own steps (pure): a lesion's site from the organ masks
around it, and the caveats the report must carry about the comparison."""

from __future__ import annotations

import numpy as np

from daemon.findings import Measurements
from daemon.measure.lesions import MeasuredLesion
from daemon.measure.registration import AlignmentMethod, identity
from daemon.pipelines.lesion_followup import Anatomy, _caveats, _site
from daemon.pipelines.priors import Priors
from daemon.volume import Code

ANATOMY = Anatomy(Code("1", "SCT", "x"), Code("10200004", "SCT", "Liver"), site="abdomen", organ_sites=("liver",))


def _lesion(centre: tuple[int, int, int], shape: tuple[int, int, int]) -> tuple[MeasuredLesion, np.ndarray]:
    full = np.zeros(shape, dtype=bool)
    z, y, x = centre
    full[z - 2:z + 3, y - 2:y + 3, x - 2:x + 3] = True
    box = tuple(slice(c - 2, c + 3) for c in centre)
    return MeasuredLesion(1, "metastasis", 1, box, full[box], Measurements()), full  # type: ignore[arg-type]


def test_a_lesion_inside_an_organ_mask_that_leaves_it_out_is_in_that_organ() -> None:
    shape = (20, 30, 30)
    lesion, full = _lesion((10, 12, 12), shape)
    liver = np.zeros(shape, dtype=bool)
    liver[2:18, 2:25, 2:25] = True
    liver &= ~full  # as split_roles gives it: a voxel is liver or lesion
    assert _site(ANATOMY, {"liver": liver}, lesion, node=False) == "liver"
    outside, _ = _lesion((10, 12, 27), shape)  # at the volume's edge, beside the liver
    assert _site(ANATOMY, {"liver": liver}, outside, node=False) == "abdomen"
    assert _site(ANATOMY, {}, lesion, node=False) == "abdomen"
    assert _site(ANATOMY, {"liver": liver}, lesion, node=True) == "lymph node"


def test_caveats_name_a_failed_lookup_and_a_comparison_without_registration() -> None:
    failed = Priors((), (), "none", "no earlier timepoint (PACS query failed: refused): treated as a baseline")
    assert any("could not be read" in c for c in _caveats(failed, []))
    fine = Priors((), (), "none", "no earlier timepoint (none in Nadir's database): treated as a baseline")
    assert _caveats(fine, []) == []
    unregistered = [identity(AlignmentMethod.NONE, "the latest prior's images could not be had")]
    assert any("positions only" in c for c in _caveats(fine, unregistered))
    registered = [identity(AlignmentMethod.REGISTRATION, "rigid")]
    assert _caveats(fine, registered) == []
