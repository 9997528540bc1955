"""Turn a label mask into per-lesion Measurements.

A lesion is a connected component of a label (26-connectivity by default) or,
when asked, a whole label. Each lesion is measured on a crop of the grid around
it, so the cost follows the lesion's size, not the study's.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.findings import Calliper, Measurements
from daemon.measure import geometry
from daemon.measure.intensity import lesion_intensity
from daemon.volume import ImagePoint, LesionMask, Volume

log = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class MeasureOptions:
    quantity: str = "hu"  # what the image array holds: "hu", "suv", "sul", "signal"
    peak_sphere_ml: float | None = None  # PERCIST 1 cm^3 (from rules/percist.yaml) for PET
    split_components: bool = True  # each connected component is a lesion; False: one per label
    full_connectivity: bool = True  # 26-connectivity; False: 6
    min_voxels: int = 1
    # False: no intensity statistics (e.g. MR signal in arbitrary units, which no reader
    # interprets and which would only crowd the report)
    intensity_statistics: bool = True


@dataclass(frozen=True, eq=False)
class MeasuredLesion:
    label: int  # label value in the mask (the SEG segment number)
    name: str  # the label's name
    component: int  # 1-based, in order of decreasing size within the label
    box: Box  # where local_mask sits on the full grid
    local_mask: BoolArray
    measurements: Measurements

    def full_mask(self, shape: tuple[int, int, int]) -> BoolArray:
        out = np.zeros(shape, dtype=bool)
        out[self.box] = self.local_mask
        return out


def crop(volume: Volume, box: Box) -> Volume:
    """The sub-volume in box, with its geometry and slice references."""
    start = np.array([s.start for s in box], dtype=np.float64)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_patient(start)
    return Volume(
        array=volume.array[box],
        affine=affine,
        slices=volume.slices[box[0]],
        frame_of_reference_uid=volume.frame_of_reference_uid,
        study_instance_uid=volume.study_instance_uid,
        series_instance_uid=volume.series_instance_uid,
        modality=volume.modality,
        pet=volume.pet,
        metadata=dict(volume.metadata),
    )


def _margin(volume: Volume, options: MeasureOptions) -> tuple[int, int, int]:
    if options.peak_sphere_ml is None:
        return 1, 1, 1
    r = (3.0 * options.peak_sphere_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    m = [int(math.ceil(r / s)) + 2 for s in volume.spacing]
    return m[0], m[1], m[2]


def _grow(box: Box, margin: tuple[int, int, int], shape: tuple[int, int, int]) -> Box:
    s = [slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, shape, strict=True)]
    return s[0], s[1], s[2]


def _shift(c: Calliper | None, rows: int, columns: int) -> Calliper | None:
    """Image points measured on a crop -> on the source image (SCOORD of the full slice)."""
    if c is None or (rows == 0 and columns == 0):
        return c

    def move(p: ImagePoint) -> ImagePoint:
        return replace(p, row=p.row + rows, column=p.column + columns)

    return replace(c, start_image=move(c.start_image), end_image=move(c.end_image))


def measure_region(
    image: Volume, local: BoolArray, options: MeasureOptions, offset: tuple[int, int] = (0, 0)
) -> Measurements:
    """All measurements of one lesion given as a mask on (a crop of) the image's grid.

    offset: (row, column) of the crop's first pixel on the source images, so that the
    callipers' image points are on the source images.
    """
    axes = geometry.axial_axes(image, local)
    d3 = geometry.max_3d_diameter(image, local)
    notes = {}
    notes["slices"] = str(int(np.count_nonzero(local.any(axis=(1, 2)))))  # RANO-BM: >= 2 slices
    if axes is not None:
        notes["long_axis_slice"] = image.slices[axes.slice_index].sop_instance_uid
    if options.peak_sphere_ml is not None:
        notes["peak_sphere_ml"] = f"{options.peak_sphere_ml:g}"
    return Measurements(
        long_axis=_shift(axes.long_axis, *offset) if axes else None,
        short_axis=_shift(axes.short_axis, *offset) if axes else None,
        volume_ml=geometry.volume_ml(image, local),
        centroid=geometry.centroid(image, local),
        max_3d_diameter_mm=d3[0] if d3 else None,
        intensity=lesion_intensity(
            image, local, options.quantity, peak_sphere_ml=options.peak_sphere_ml
        )
        if options.intensity_statistics
        else {},
        notes=notes,
    )


def _check_grid(image: Volume, grid: Volume) -> None:
    if image.shape != grid.shape or not np.allclose(image.affine, grid.affine, atol=1e-4):
        raise ValueError("the image and the mask are not on the same grid; resample first")


def _components(labelled: NDArray[np.integer], min_voxels: int) -> list[tuple[int, Box]]:
    """(component id, bounding box), largest first."""
    sized = []
    for n, box in enumerate(ndimage.find_objects(labelled), start=1):
        if box is None:
            continue
        count = int(np.count_nonzero(labelled[box] == n))
        if count >= min_voxels:
            sized.append((count, n, (box[0], box[1], box[2])))
    sized.sort(key=lambda t: (-t[0], t[1]))
    return [(n, box) for _c, n, box in sized]


def measure_mask(
    image: Volume, mask: LesionMask, options: MeasureOptions | None = None
) -> list[MeasuredLesion]:
    """Measure every lesion of every label of the mask on the image (same grid)."""
    opts = options or MeasureOptions()
    _check_grid(image, mask.volume)
    names = {s.value: s.name for s in mask.label_info}
    out: list[MeasuredLesion] = []
    structure = ndimage.generate_binary_structure(3, 3 if opts.full_connectivity else 1)
    for value in sorted(int(v) for v in np.unique(mask.labels) if v != 0):
        binary = np.asarray(mask.labels == value)
        if opts.split_components:
            labelled, _n = ndimage.label(binary, structure=structure)
        else:
            labelled = binary.astype(np.int32)
        for number, (comp_id, box) in enumerate(_components(labelled, opts.min_voxels), start=1):
            grown = _grow(box, _margin(image, opts), image.shape)
            local = np.asarray(labelled[grown] == comp_id)
            sub = crop(image, grown)
            out.append(
                MeasuredLesion(
                    label=value,
                    name=names.get(value, str(value)),
                    component=number,
                    box=grown,
                    local_mask=local,
                    measurements=measure_region(
                        sub, local, opts, (int(grown[1].start), int(grown[2].start))
                    ),
                )
            )
    log.debug("measured %d lesions in %d labels", len(out), len(names))
    return out
