"""The perfusion route's lesions: found by the liver route's model, named as the liver route names them.

The liver model (`model`, default the liver route's) segments the portal-venous series of the
same study when there is one, else the averaged perfusion image; its metastasis labels are
measured (the longest axial diameter decides the 15 mm rule) and its liver label is the
liver the healthy-liver region is taken from. Masks found on the portal-venous series are
registered (rigid, SimpleITK) onto the map grid and resampled there (nearest neighbour).
When the liver route recorded its timepoint of this study (the runtime's `PriorsSource`),
each lesion takes the tracking id and UID of the liver-route lesion whose centroid is
nearest (within `MATCH_MM`), so that both reports name the same lesion alike; otherwise
ids are minted here, P1, P2... in order of size (voxel count; ties by position), the same
on every run: the motion correction and the registration here are reproducible
(`single_threaded`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from daemon.findings import Timepoint
from daemon.measure.lesions import MeasuredLesion, MeasureOptions, measure_mask
from daemon.measure.perfusion_analysis import LesionInput
from daemon.measure.registration import Alignment, align, single_threaded
from daemon.pipelines.followup_input import StudyImage, model_finder
from daemon.report.inputs import ModelInfo
from daemon.report.uids import lesion_uid
from daemon.volume import Volume

log = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
MATCH_MM = 15.0  # [impl] a liver-route lesion farther than this from every lesion here is not the same one


@dataclass(frozen=True, eq=False)
class NamedLesion:
    tracking_id: str
    tracking_uid: str
    measured: MeasuredLesion  # on the segmented image
    mask: BoolArray  # on the map grid


@dataclass(frozen=True, eq=False)
class FoundLesions:
    lesions: tuple[NamedLesion, ...]
    liver: BoolArray | None  # on the map grid
    model: ModelInfo
    segmented_on: str  # "portal-venous series" | "averaged perfusion image"
    notes: tuple[str, ...] = ()

    def inputs(self) -> list[LesionInput]:
        return [LesionInput(n.tracking_id, n.mask,
                            n.measured.measurements.long_axis.length_mm if n.measured.measurements.long_axis else None,
                            i) for i, n in enumerate(self.lesions, start=1)]


def resample_mask(mask: BoolArray, source: Volume, target: Volume, alignment: Alignment | None) -> BoolArray:
    """`mask` on `source`'s grid -> `target`'s grid (nearest neighbour), through `alignment`
    (target patient -> source patient; None: the same patient coordinates)."""
    out = np.zeros(target.shape, dtype=bool)
    if not mask.any():
        return out
    kji = np.argwhere(mask).astype(np.float64)
    lo, hi = kji.min(axis=0) - 1, kji.max(axis=0) + 1
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    xyz = source.index_to_patient(corners)
    if alignment is not None:
        xyz = alignment.to_followup(xyz)
    t = target.patient_to_index(xyz)
    t0 = np.maximum(np.floor(t.min(axis=0)).astype(int) - 1, 0)
    t1 = np.minimum(np.ceil(t.max(axis=0)).astype(int) + 2, np.asarray(target.shape))
    if np.any(t1 <= t0):
        return out
    grid = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(t0, t1, strict=True)), indexing="ij"), -1)
    pts = target.index_to_patient(grid.reshape(-1, 3).astype(np.float64))
    if alignment is not None:
        pts = alignment.to_prior(pts)
    src = np.rint(source.patient_to_index(pts)).astype(int)
    inside = np.all((src >= 0) & (src < np.asarray(source.shape)), axis=1)
    values = np.zeros(len(src), dtype=bool)
    values[inside] = mask[src[inside, 0], src[inside, 1], src[inside, 2]]
    out[t0[0]:t1[0], t0[1]:t1[1], t0[2]:t1[2]] = values.reshape(grid.shape[:3])
    return out


def _by_size(m: MeasuredLesion) -> tuple[int, tuple[int, ...]]:
    """Largest first; equal volumes (same voxel count) by the first voxel in array order, so
    that P1, P2... never depend on the order the model's labels came in."""
    first = np.argwhere(m.local_mask)[0] if m.local_mask.any() else np.zeros(3, dtype=int)
    start = tuple(int(sl.start or 0) + int(f) for sl, f in zip(m.box, first, strict=True))
    return -int(np.count_nonzero(m.local_mask)), start


def _names(measured: Sequence[MeasuredLesion], liver_tp: Timepoint | None, patient_key: str,
           study_uid: str, route: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(tracking id, UID) per lesion: the liver route's where it recorded this study, else minted here."""
    notes: list[str] = []
    taken: set[str] = set()
    out: list[tuple[str, str]] = []
    theirs = [les for les in (liver_tp.lesions if liver_tp else ()) if les.measurements.centroid is not None]
    for n, m in enumerate(measured, start=1):
        own = (f"P{n}", lesion_uid(patient_key or study_uid, study_uid, route, n))
        centroid = m.measurements.centroid
        if not theirs or centroid is None:
            out.append(own)
            continue
        here = np.asarray(centroid, dtype=np.float64)
        best = min(theirs, key=lambda les: float(np.linalg.norm(np.asarray(les.measurements.centroid) - here)))
        d = float(np.linalg.norm(np.asarray(best.measurements.centroid) - here))
        if d <= MATCH_MM and best.tracking_uid not in taken:
            taken.add(best.tracking_uid)
            out.append((best.tracking_id, best.tracking_uid))
        else:
            notes.append(f"lesion {own[0]} has no counterpart in the liver route's report of this study "
                         f"(nearest {d:.0f} mm away)")
            out.append(own)
    if liver_tp is not None:
        notes.append(f"lesions named as in the liver route's report of this study ({len(taken)} matched)")
    return out, notes


def find_lesions(model: str, providers: str, image: StudyImage, grid: Volume, liver_tp: Timepoint | None,
                 patient_key: str, study_uid: str, route: str, segmented_on: str) -> FoundLesions:
    """The model's metastases (not its nodes) and liver on `image`, moved onto `grid`."""
    found = model_finder(model, providers)(image)  # type: ignore[arg-type]
    measured = [m for m in measure_mask(image.volume, found.lesions, MeasureOptions(quantity="hu"))
                if m.label not in found.node_labels]
    measured.sort(key=_by_size)
    same_grid = image.volume.shape == grid.shape and np.allclose(image.volume.affine, grid.affine, atol=1e-3)
    with single_threaded():  # the same masks on every run (daemon.measure.registration.single_threaded)
        alignment = None if same_grid else align(image.volume, grid)
    notes = [] if alignment is None else [f"{segmented_on} registered onto the map grid ({alignment.method}, "
                                          f"{alignment.translation_mm:.1f} mm)"]
    names, more = _names(measured, liver_tp, patient_key, study_uid, route)
    shape = image.volume.shape
    lesions = tuple(NamedLesion(tid, uid, m, m.full_mask(shape) if same_grid else
                                resample_mask(m.full_mask(shape), image.volume, grid, alignment))
                    for m, (tid, uid) in zip(measured, names, strict=True))
    liver = found.organs.get("liver")
    if liver is not None and not same_grid:
        liver = resample_mask(liver, image.volume, grid, alignment)
    log.info("perfusion: %d lesion(s) found on the %s", len(lesions), segmented_on)
    return FoundLesions(lesions, liver, found.model, segmented_on, (*notes, *more))
