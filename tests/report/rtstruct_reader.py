"""The RTSTRUCT read back as a planning system would, by code that is not Nadir's: rt-utils
rasterises each ROI on the source series; the volume is the contours' areas (shapely,
nested contours on a plane as holes) times the slice spacing of the referenced images."""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import Polygon


def rt_utils_masks(series_dir: Path, rtstruct: Path) -> dict[str, NDArray[np.bool_]]:
    """ROI name -> mask in (slice, row, column) order, as rt-utils reads it on the series."""
    from rt_utils import RTStructBuilder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rt-utils warns through `warnings` about what it does not check
        rt = RTStructBuilder.create_from(str(series_dir), str(rtstruct))
        # rt-utils' masks are (row, column, slice), slices sorted by position (as our k: feet to head)
        return {name: np.transpose(rt.get_roi_mask_by_name(name), (2, 0, 1)) for name in rt.get_roi_names()}


def contour_volumes_ml(rtstruct: Path, slice_spacing_mm: float) -> dict[str, float]:
    """ROI name -> sum over planes of the even-odd area of its contours, times the spacing."""
    ds = pydicom.dcmread(rtstruct)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    out: dict[str, float] = {}
    for roi in ds.ROIContourSequence:
        planes: dict[float, list[Polygon]] = defaultdict(list)
        for c in roi.ContourSequence:
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            xyz = np.asarray([float(v) for v in c.ContourData]).reshape(-1, 3)
            assert len(xyz) == int(c.NumberOfContourPoints)
            assert np.ptp(xyz[:, 2]) < 1e-6, "an axial contour lies on one plane"
            planes[round(float(xyz[0, 2]), 3)].append(Polygon(xyz[:, :2]))
        area = 0.0
        for polys in planes.values():
            for p in polys:
                depth = sum(1 for q in polys if q is not p and p.within(q))
                area += p.area if depth % 2 == 0 else -p.area
        out[names[int(roi.ReferencedROINumber)]] = area * slice_spacing_mm / 1000.0
    return out


def within_one_voxel(read: NDArray[np.bool_], truth: NDArray[np.bool_]) -> bool:
    """Every voxel of each mask is at most one voxel (in-plane, 8-neighbourhood) from the other."""
    ring = np.zeros((1, 3, 3), dtype=bool)
    ring[0] = True
    grown_truth = ndimage.binary_dilation(truth, ring)
    grown_read = ndimage.binary_dilation(read, ring)
    return bool(np.all(grown_truth[read]) and np.all(grown_read[truth]))
