"""SUV max / peak, HU statistics, reference regions and ratios, whole-body PET features.

All images are synthetic, with values known analytically.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from daemon.measure.intensity import lesion_intensity, peak, sphere_weights
from daemon.measure.lesions import MeasureOptions, measure_mask
from daemon.measure.phantoms import make_volume, voxel_centres
from daemon.measure.reference import (
    ratios,
    reference_stats,
    region_from_label,
    sphere_at,
    sphere_in_organ,
)
from daemon.measure.wholebody import wholebody_features
from daemon.volume import Code, LesionMask, SegmentLabel

ONE_CM3 = 1.0  # the PERCIST sphere in these tests; the pipeline reads it from rules/percist.yaml


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (3.27, 4.07, 4.07), (2.5, 1.6, 1.6)])
def test_sphere_kernel_has_the_nominal_volume(spacing: tuple[float, float, float]) -> None:
    w = sphere_weights(spacing, ONE_CM3)
    assert abs(w.sum() * np.prod(spacing) / 1000.0 - 1.0) < 0.01


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (3.27, 4.07, 4.07)])
def test_suv_peak_of_a_paraboloid_matches_the_sphere_mean(spacing: tuple[float, float, float]) -> None:
    """SUV = C - a r^2: its mean over a sphere of radius R centred on the top is C - 3/5 a R^2."""
    vol = make_volume((32, 32, 32), spacing, modality="PT")
    pts = voxel_centres(vol)
    top = pts[16, 16, 16]
    r2 = np.sum((pts - top) ** 2, axis=-1)
    c, a = 12.0, 0.02
    suv = np.maximum(c - a * r2, 0.5)
    lesion = r2 <= 14.0**2
    radius = (3.0 * ONE_CM3 * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    truth = c - a * 3.0 / 5.0 * radius**2
    stats = lesion_intensity(vol.with_array(suv), lesion, "suv", peak_sphere_ml=ONE_CM3)
    assert stats["suv_max"] == float(suv[lesion].max()) == c
    assert abs(stats["suv_peak"] - truth) / truth < 0.01
    found = peak(suv, lesion, vol.spacing, ONE_CM3)
    assert found is not None and found[1] == (16, 16, 16)


def test_suv_peak_need_not_contain_the_hottest_voxel() -> None:
    vol = make_volume((20, 20, 20), (2.0, 2.0, 2.0), modality="PT")
    suv = np.full(vol.shape, 5.0)
    suv[3, 3, 3] = 50.0  # a single hot voxel at the edge of a uniform region
    suv[10:17, 10:17, 10:17] = 8.0  # a warm block larger than the sphere
    lesion = np.zeros(vol.shape, dtype=bool)
    lesion[2:18, 2:18, 2:18] = True
    stats = lesion_intensity(vol.with_array(suv), lesion, "suv", peak_sphere_ml=ONE_CM3)
    assert stats["suv_max"] == 50.0
    assert abs(stats["suv_peak"] - 8.0) < 1e-9


def test_hu_statistics() -> None:
    vol = make_volume((4, 4, 4), (1.0, 1.0, 1.0))
    hu = np.arange(64, dtype=np.float64).reshape(4, 4, 4)
    mask = np.zeros(vol.shape, dtype=bool)
    mask[1, 1, 1:3] = True  # values 21, 22
    stats = lesion_intensity(vol.with_array(hu), mask, "hu")
    assert stats == {"hu_mean": 21.5, "hu_sd": 0.5, "hu_min": 21.0, "hu_max": 22.0}


def test_reference_regions_and_ratios_say_where_they_come_from() -> None:
    vol = make_volume((40, 40, 40), (2.5, 2.5, 2.5), modality="PT")
    pts = voxel_centres(vol)
    liver = np.sum((pts - pts[20, 20, 20]) ** 2, axis=-1) <= 30.0**2
    lesion = np.sum((pts - pts[20, 20, 12]) ** 2, axis=-1) <= 6.0**2
    suv = np.where(liver, 2.0, 0.5)
    suv[lesion] = 6.0
    image = vol.with_array(suv)
    region = sphere_in_organ("liver", image, liver, 30.0, organ_name="liver", exclude=lesion)
    assert region is not None and "sphere 30 mm" in region.source and "liver" in region.source
    ref = reference_stats(image, region, "suv")
    assert ref.stats["suv_mean"] == 2.0 and ref.stats["suv_sd"] == 0.0
    assert abs(ref.voxels * vol.voxel_volume_mm3 - 4 / 3 * math.pi * 15.0**3) / (4 / 3 * math.pi * 15.0**3) < 0.1
    lesion_stats = lesion_intensity(image, lesion, "suv")
    values, sources = ratios(lesion_stats, ref, {"l_liver_max": ("suv_max", "suv_mean"),
                                                  "missing": ("suv_peak", "suv_mean")})
    assert values == {"l_liver_max": 3.0}
    assert sources["l_liver_max"].startswith("liver suv_mean: sphere 30 mm")
    # a 5 cm sphere does not fit in a 6 cm organ: none rather than a wrong region
    assert sphere_in_organ("liver", image, liver, 70.0, organ_name="liver") is None
    labels = np.where(liver, 2, 0).astype(np.int16)
    info = (SegmentLabel(2, "liver", Code("123037004", "SCT", "Anatomical Structure"),
                         Code("10200004", "SCT", "Liver")),)
    by_label = region_from_label("liver", LesionMask(volume=vol, labels=labels, label_info=info), 2)
    assert by_label.source == "label 'liver' (value 2)"
    fixed = sphere_at("brain", image, tuple(pts[20, 20, 20]), 20.0)  # type: ignore[arg-type]
    assert fixed.mask.sum() > 0 and fixed.source.startswith("sphere 20 mm diameter at (")


def test_measure_mask_on_pet_reports_suv_and_peak_note() -> None:
    vol = make_volume((20, 24, 24), (3.0, 3.0, 3.0), modality="PT")
    suv = np.ones(vol.shape)
    suv[8:13, 8:13, 8:13] = 7.0
    suv[10, 10, 10] = 9.0
    labels = (suv > 2).astype(np.int16)
    found = measure_mask(vol.with_array(suv), LesionMask(volume=vol, labels=labels, label_info=()),
                         MeasureOptions(quantity="suv", peak_sphere_ml=ONE_CM3))
    (lesion,) = found
    m = lesion.measurements
    assert m.intensity["suv_max"] == 9.0
    assert 7.0 < m.intensity["suv_peak"] < 9.0
    assert m.notes["peak_sphere_ml"] == "1"
    assert abs(m.volume_ml - 125 * 27 / 1000) < 1e-9  # type: ignore[operator]


def test_wholebody_tmtv_count_and_dmax() -> None:
    vol = make_volume((30, 30, 30), (2.0, 2.0, 2.0), modality="PT")
    suv = np.full(vol.shape, 1.0)
    suv[2:5, 2:5, 2:5] = 4.0  # exactly at the threshold: included (>=)
    suv[20:24, 20:24, 20:24] = 9.0
    suv[10, 25, 3] = 5.0  # a single voxel
    wb = wholebody_features(vol.with_array(suv), 4.0)
    assert wb.lesion_count == 3
    assert math.isclose(wb.tmtv_ml, (27 + 64 + 1) * 8 / 1000)
    assert math.isclose(wb.tlg, (27 * 4.0 + 64 * 9.0 + 5.0) * 8 / 1000)
    c1 = np.array([3.0, 3.0, 3.0]) * 2.0
    c2 = np.array([21.5, 21.5, 21.5]) * 2.0
    assert math.isclose(wb.dmax_mm, float(np.linalg.norm(c2 - c1)))
    strict = wholebody_features(vol.with_array(suv), 4.0, inclusive=False, min_voxels=2)
    assert strict.lesion_count == 1 and strict.dmax_mm == 0.0
    inside = np.zeros(vol.shape, dtype=bool)
    inside[15:, 15:, 15:] = True
    assert wholebody_features(vol.with_array(suv), 4.0, within=inside).lesion_count == 1


def test_with_ratios_records_the_reference() -> None:
    from daemon.findings import Measurements
    from daemon.measure.reference import ReferenceStats, with_ratios

    ref = ReferenceStats("normal_brain", "sphere 20 mm diameter at (0.0, 0.0, 0.0) mm", {"suv_mean": 2.0})
    m = with_ratios(Measurements(intensity={"suv_max": 5.0, "suv_mean": 3.0}), ref,
                    {"l_n_max": ("suv_max", "suv_mean"), "l_n_mean": ("suv_mean", "suv_mean")})
    assert m.ratios == {"l_n_max": 2.5, "l_n_mean": 1.5}
    assert m.ratio_references["l_n_max"].startswith("normal_brain suv_mean: sphere 20 mm")
