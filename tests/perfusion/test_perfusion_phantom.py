"""Maximum-slope perfusion on the SYNTHETIC dynamic phantom (daemon/demo/perfusion_phantom.py):
respiratory shifts, automatic input regions, lesion and healthy-liver values, ratios, categories;
bad input refused with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daemon.criteria.params import PerfusionParams
from daemon.criteria.rules import RulesSource
from daemon.demo.perfusion_phantom import (
    DENSE_TIMES_S,
    SEED_TIMES_S,
    PerfusionPhantom,
    Protocol,
    WriteOptions,
    as_dynamic,
    perfusion_phantom,
    write_dynamic,
)
from daemon.demo.phantom import Grid
from daemon.imaging.dynamic import DynamicRefused, load_dynamic
from daemon.imaging.loader import scan
from daemon.measure.perfusion import MAP_NAMES
from daemon.measure.perfusion_analysis import LesionInput, NotComputable, StudyPerfusion, analyse
from daemon.measure.perfusion_motion import Corrected, correct
from daemon.measure.perfusion_params import DynamicParams

RULES = RulesSource()
PARAMS = RULES.load(DynamicParams, "perfusion_dynamic")
CRITERIA = RULES.load(PerfusionParams, "perfusion")
SMALL = Grid((12, 48, 48), (2.5, 8.0, 8.0), centre=(-20.0, 0.0, 62.0))


def lesions(ph: PerfusionPhantom) -> list[LesionInput]:
    tr = ph.truth
    return [LesionInput(n, tr.regions[n], tr.lesion_diameters_mm[n], i) for i, n in enumerate(("P1", "P2", "P3"), 1)]


@pytest.fixture(scope="module")
def dense() -> tuple[PerfusionPhantom, StudyPerfusion, Corrected]:
    """3 HU of noise per voxel and frame, breathing shifts: a realistic study."""
    ph = perfusion_phantom(Protocol(times_s=DENSE_TIMES_S))
    moved = correct(as_dynamic(ph).frames, 0, PARAMS.motion)
    res = analyse(as_dynamic(ph), lesions(ph), PARAMS, CRITERIA, liver=ph.truth.regions["liver"], corrected=moved)
    return ph, res, moved


@pytest.fixture(scope="module")
def noise_free() -> tuple[PerfusionPhantom, StudyPerfusion]:
    """The same study without noise, breathing shifts kept: what remains is the method's own error
    (registration, resampling, partial volume at the lesion border, input regions)."""
    ph = perfusion_phantom(Protocol(times_s=DENSE_TIMES_S, noise_hu=0.0))
    return ph, analyse(as_dynamic(ph), lesions(ph), PARAMS, CRITERIA, liver=ph.truth.regions["liver"])


def test_inputs_found_where_they_are(dense: tuple[PerfusionPhantom, StudyPerfusion, Corrected]) -> None:
    ph, res, _ = dense
    for name in ("aorta", "portal", "spleen"):
        found = getattr(res.inputs, name)
        assert found.sum() >= 8
        assert (found & ph.truth.regions[name]).sum() >= 0.95 * found.sum(), name
    c = res.inputs.curves
    assert c.split_s == pytest.approx(22.0 - 11.0)  # splenic peak, from the first frame
    assert c.aortic_peak_hu == pytest.approx(ph.truth.inputs.aortic_peak_hu, rel=0.05)
    assert c.portal_peak_hu == pytest.approx(ph.truth.inputs.portal_peak_hu, rel=0.05)


def _off(measured: dict[str, float | None], expected: dict[str, float | None]) -> dict[str, float]:
    """Relative error of every map (TTP too: seconds from the first frame)."""
    out = {}
    for name in MAP_NAMES:
        m, e = measured[name], expected[name]
        assert m is not None and e is not None, name
        out[name] = m / e - 1.0
    return out


def test_every_map_within_5_percent_in_lesions_and_healthy_liver(
        noise_free: tuple[PerfusionPhantom, StudyPerfusion]) -> None:
    # `expected`: the method of perfusion.md §6 on the designed (noise-free, unblurred) curves at the frame
    # times. Before the fixes: P2 HAP -8 %, P1 HPP +61 %, healthy HAP +12 % with no noise at all: a linear
    # resampling of the motion-corrected frames (a blur that changes with each frame's sub-voxel shift) and
    # a face-connected erosion (ROI voxels touching the border by a corner) did that, not max slope.
    ph, res = noise_free
    expected = ph.truth.expected
    by = {r.lesion.name: r for r in res.lesions}
    for name in ("P1", "P2"):
        lesion = _off(by[name].values, expected[name])
        healthy = _off(by[name].healthy_values, expected["liver"])
        assert max(abs(v) for v in lesion.values()) < 0.05, (name, lesion)
        assert max(abs(v) for v in healthy.values()) < 0.05, (name, healthy)


def test_the_method_values_against_the_designed_flows(noise_free: tuple[PerfusionPhantom, StudyPerfusion]) -> None:
    # max slope on these samples is below the designed flows, by its own definition (`expected` and
    # `designed` are both analytic): the arterial slope of a 5-frame quadratic smooths the peak (-9 %),
    # and outflow has begun when the portal slope peaks (-15 % liver, -31 % P1, whose portal-phase
    # maximum is the arterial tail just after the splenic peak)
    ph, _ = noise_free
    e, d = ph.truth.expected, ph.truth.designed
    for region in ("liver", "P1", "P2"):
        assert e[region]["HAP"] == pytest.approx(d[region]["HAP"] * 0.91, rel=0.02), region
    assert e["liver"]["HPP"] == pytest.approx(d["liver"]["HPP"] * 0.85, rel=0.02)
    assert e["P1"]["HPP"] == pytest.approx(d["P1"]["HPP"] * 0.69, rel=0.02)


def test_with_noise_healthy_liver_within_5_percent(dense: tuple[PerfusionPhantom, StudyPerfusion, Corrected]) -> None:
    # healthy liver: thousands of voxels, max slope barely moved by 3 HU of noise (Monte Carlo on the
    # curves: SD 1.4 % HAP, 0.3 % HPP). Lesion ROIs (P1 135, P2 64 voxels once eroded) are not held to 5 %
    # with noise: the maximum of noisy slopes is biased up and spread (Monte Carlo on the curves, noise
    # only, 400 draws: P2 TLP +2 % SD 5 %, P1 TLP +11 % SD 16 %, P1 HPP +22 % SD 30 %), and the residual
    # registration error (0.1-0.5 mm) moves the lesion's static edge into its ROI from frame to frame:
    # measured here P2 TLP +4 %, P1 TLP +39 %, P1 HPP +126 % (P1's portal-phase slope, 0.18 HU/s, is the
    # arterial tail). The ratios and categories (test below) hold.
    ph, res, _ = dense
    for r in res.lesions[:2]:
        healthy = _off(r.healthy_values, ph.truth.expected["liver"])
        assert max(abs(healthy[k]) for k in ("HAP", "HPP", "TLP", "HPI")) < 0.05, healthy
        assert r.healthy_values["TTP"] == pytest.approx(ph.truth.expected["liver"]["TTP"], abs=2.0)  # 1 frame


def test_ratios_and_categories(dense: tuple[PerfusionPhantom, StudyPerfusion, Corrected]) -> None:
    _, res, _ = dense
    by = {r.lesion.name: r for r in res.lesions}
    assert by["P1"].assessment.category == "major_response_predicted"
    assert by["P1"].ratios["TLP"] is not None and by["P1"].ratios["TLP"] < 0.68
    assert by["P2"].assessment.category == "not_major"
    assert by["P2"].ratios["TLP"] == pytest.approx(1.0, abs=0.1)
    assert by["P3"].assessment.category == "not_evaluable"  # 10 mm < 15 mm
    for r in res.lesions:
        assert "off_label_method" in r.assessment.flags  # 0.68 comes from deconvolution BF
        assert r.healthy is not None and not (r.healthy & r.lesion.mask).any()


def test_motion_corrected(dense: tuple[PerfusionPhantom, StudyPerfusion, Corrected]) -> None:
    ph, _, moved = dense
    # every frame (registered on 4 mm copies, each from its neighbour's result) within 0.5 mm of the truth
    truth = [float(np.hypot(z, y)) for z, y, _ in ph.truth.shifts_mm]
    assert moved.shifts_mm == pytest.approx(truth, abs=0.5)


def test_seed_sampling_warns_of_a_sparse_portal_phase() -> None:
    # dense until the splenic peak (22 s), then every 20 s: one frame on the portal upslope
    times = (*(11.0 + n for n in range(12)), 35.0, 55.0, 75.0, 95.0)
    ph = perfusion_phantom(Protocol(grid=SMALL, times_s=times, max_shift_mm=(0.0, 0.0)))
    res = analyse(as_dynamic(ph), lesions(ph)[:1], PARAMS, CRITERIA, liver=ph.truth.regions["liver"])
    assert any("sparse portal sampling" in n for n in res.notes)
    assert "sparse_portal_sampling" in res.lesions[0].assessment.flags


def test_seed_sampling_misses_the_portal_peak_and_says_so() -> None:
    # the seed's sampling as perfusion.md §6 reads it: 15 frames 1 s apart from 11 s, then every 20 s from
    # 45 s. The phantom's inputs peak as in the clinic (aorta 17 s, spleen 22 s, portal vein 32 s), so no
    # frame falls between 25 and 45 s: the portal vein's sampled maximum (56 HU at 25 s) is a third of its
    # peak and under the 100 HU a portal vein must reach. Max slope divides the portal slope by that peak:
    # it refuses, and says where the sampling has its hole, rather than divide by a wrong peak.
    ph = perfusion_phantom(Protocol(grid=SMALL, times_s=SEED_TIMES_S, max_shift_mm=(0.0, 0.0)))
    assert ph.truth.inputs.portal_peak_hu < PARAMS.inputs.portal_min_peak_hu
    with pytest.raises(NotComputable, match=r"no portal vein found.* no frame between 14 s and 34 s"):
        analyse(as_dynamic(ph), lesions(ph)[:1], PARAMS, CRITERIA, liver=ph.truth.regions["liver"])


def test_three_frames_not_computable() -> None:
    ph = perfusion_phantom(Protocol(grid=SMALL, times_s=(11.0, 17.0, 30.0), max_shift_mm=(0.0, 0.0)))
    with pytest.raises(NotComputable, match="3 time frames: at least 6"):
        analyse(as_dynamic(ph), lesions(ph), PARAMS, CRITERIA)


def test_no_aorta_not_computable() -> None:
    ph = perfusion_phantom(Protocol(grid=SMALL, times_s=SEED_TIMES_S, aorta=False, max_shift_mm=(0.0, 0.0)))
    with pytest.raises(NotComputable, match="no aorta in the field of view"):
        analyse(as_dynamic(ph), lesions(ph), PARAMS, CRITERIA)


def test_dicom_dynamic_series_read_frame_by_frame(tmp_path: Path) -> None:
    times = (11.0, 12.0, 14.0, 17.0, 25.0, 45.0)
    ph = perfusion_phantom(Protocol(grid=SMALL, times_s=times))
    write_dynamic(ph, tmp_path)
    (series,) = scan(tmp_path).series.values()
    dyn = load_dynamic(series)
    assert len(dyn.frames) == 6
    assert dyn.times_s == pytest.approx(np.asarray(times) - 11.0, abs=1e-3)
    assert np.abs(dyn.frames[3].array - ph.frames[3]).max() <= 0.51  # stored as integer HU


def test_frames_of_different_geometry_refused(tmp_path: Path) -> None:
    ph = perfusion_phantom(Protocol(grid=SMALL, times_s=(11.0, 12.0, 14.0, 17.0, 25.0, 45.0)))
    write_dynamic(ph, tmp_path, WriteOptions(shift_frame=4))
    (series,) = scan(tmp_path).series.values()
    with pytest.raises(DynamicRefused, match="frames of different geometry: frame 5 of 6"):
        load_dynamic(series)
