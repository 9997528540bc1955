"""A SYNTHETIC dynamic liver CT perfusion study with known maximum-slope maps.

Anatomy: the torso CT phantom of `daemon.demo.phantom` (its portal-venous image is the
average of the frames) with a portal vein added in the liver hilum. Time: the seed's
sampling (15 frames 1 s apart from 11 s after injection, then 6 frames 20 s apart) or
any other list of times.

Curves (ΔHU over baseline): gamma variates for the aorta `A`, the portal vein `P`, the
spleen, the kidneys and the IVC; a tissue region with arterial flow `F_a` and portal flow
`F_p` (s^-1) enhances as `C = (F_a A + F_p P) * exp(-t / MTT)` (convolution on a 0.01 s
grid), so `dC/dt = F_a A + F_p P` until outflow starts: the maximum slopes, hence HAP and
HPP, are set by the flows. The truth kept for each region is the method of perfusion.md §6
applied to the noise-free curves at the frame times (`expected`; TTP in seconds from the first
frame, as the analysis counts it), beside the designed flows (`designed`, mL/min/100 mL): the
method's values fall below the designed flows (the slope of a local quadratic smooths the
peak slope; outflow has begun when the portal slope peaks), and that bias is the method's own.

Each frame gets its own noise and a respiratory shift (cranio-caudal and antero-posterior,
none on the first frame, the registration reference). Lesions are hypodense metastases with
their own flows. Variants for bad input: fewer frames, a frame of another geometry, no
aortic enhancement (`aorta=False`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from daemon.demo.dicom import SeriesInfo, StudyInfo, demo_uid, series_datasets, write_datasets
from daemon.demo.phantom import Ellipsoid, Grid, liver_ct_phantom, organ_mask
from daemon.imaging.dynamic import DynamicSeries
from daemon.measure.perfusion import InputCurves, curve_values
from daemon.volume import SliceRef, Volume

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SEED_TIMES_S: tuple[float, ...] = tuple(11.0 + n for n in range(15)) + tuple(45.0 + 20.0 * n for n in range(6))
# dense enough for the portal slope (perfusion.md §6 warns when the portal upslope is sparse)
DENSE_TIMES_S: tuple[float, ...] = (tuple(11.0 + n for n in range(15)) + tuple(27.0 + 2.0 * n for n in range(8))
                                    + (60.0, 90.0))
_FINE_DT = 0.01
OUTFLOW_DELAY_S = 10.0


@dataclass(frozen=True)
class Gamma:
    """A gamma variate of peak `peak_hu` at `t0 + alpha * beta` seconds."""

    peak_hu: float
    t0: float
    alpha: float
    beta: float

    def __call__(self, t: F64) -> F64:
        tau = np.clip(np.asarray(t, dtype=np.float64) - self.t0, 0.0, None)
        x = tau / (self.alpha * self.beta)
        with np.errstate(divide="ignore"):
            out = np.where(tau > 0, np.exp(self.alpha * (np.log(np.where(x > 0, x, 1.0)) + 1.0 - x)), 0.0)
        return np.asarray(self.peak_hu * out, dtype=np.float64)


AORTA = Gamma(300.0, 11.0, 6.0, 1.0)  # peak 17 s
PORTAL = Gamma(180.0, 20.0, 4.0, 3.0)  # peak 32 s
SPLEEN = Gamma(120.0, 14.0, 4.0, 2.0)  # peak 22 s: t_s
KIDNEY = Gamma(130.0, 12.0, 4.0, 1.75)  # peak 19 s
IVC = Gamma(80.0, 22.0, 4.0, 3.5)  # peak 36 s
MUSCLE = Gamma(20.0, 15.0, 3.0, 8.0)


@dataclass(frozen=True)
class Flows:
    arterial_per_s: float  # F_a
    portal_per_s: float  # F_p
    mtt_s: float = 20.0

    def designed(self) -> dict[str, float]:
        hap, hpp = self.arterial_per_s * 6000.0, self.portal_per_s * 6000.0
        return {"HAP": hap, "HPP": hpp, "TLP": hap + hpp, "HPI": hap / (hap + hpp) * 100.0}


HEALTHY = Flows(0.0025, 0.0110, 20.0)  # TLP 81 mL/min/100 mL (seed Table 2: healthy BF 81.8)


@dataclass(frozen=True)
class PerfusionLesion:
    lesion: Ellipsoid
    flows: Flows


DEFAULT_LESIONS: tuple[PerfusionLesion, ...] = (
    PerfusionLesion(Ellipsoid("P1", (-95.0, -20.0, 60.0), (16.0, 15.0, 14.0)), Flows(0.0030, 0.0015, 30.0)),
    PerfusionLesion(Ellipsoid("P2", (-50.0, -45.0, 62.0), (13.0, 13.0, 12.0)), Flows(0.0060, 0.0090, 18.0)),
    PerfusionLesion(Ellipsoid("P3", (-105.0, 20.0, 58.0), (5.0, 5.0, 5.0)), Flows(0.0030, 0.0015, 30.0)),
)


@dataclass(frozen=True)
class PerfusionTruth:
    times_s: F64
    regions: dict[str, BoolArray]  # aorta, portal, spleen, liver (parenchyma), lesion ids, on the reference grid
    expected: dict[str, dict[str, float | None]]  # region -> map -> value by the method (noise-free)
    designed: dict[str, dict[str, float]]  # region -> map -> designed value from the flows
    inputs: InputCurves  # the noise-free input curves at the frame times
    shifts_mm: tuple[tuple[float, float, float], ...]  # (z, y, x) shift of each frame
    lesion_diameters_mm: dict[str, float]


@dataclass(frozen=True, eq=False)
class PerfusionPhantom:
    frames: F32  # (t, z, y, x) HU
    grid: Grid
    affine: F64
    truth: PerfusionTruth
    labels: NDArray[np.int16]  # lesion n (DEFAULT_LESIONS order) at label n


@dataclass(frozen=True)
class Protocol:
    grid: Grid = Grid((32, 112, 112), (2.5, 3.5, 3.5), centre=(-20.0, 0.0, 62.0))
    times_s: tuple[float, ...] = SEED_TIMES_S
    lesions: tuple[PerfusionLesion, ...] = DEFAULT_LESIONS
    noise_hu: float = 3.0
    max_shift_mm: tuple[float, float] = (5.0, 2.0)  # cranio-caudal, antero-posterior amplitude
    aorta: bool = True
    seed: int = 16
    extra: dict[str, float] = field(default_factory=dict)


def _tissue(flows: Flows, fine: F64) -> F64:
    drive = flows.arterial_per_s * AORTA(fine) + flows.portal_per_s * PORTAL(fine)
    # no outflow for the first OUTFLOW_DELAY_S (the max-slope assumption), then exponential washout
    kernel = np.exp(-np.clip(fine - OUTFLOW_DELAY_S, 0.0, None) / flows.mtt_s)
    return np.asarray(np.convolve(drive, kernel)[: fine.size] * _FINE_DT, dtype=np.float64)


def _at(fine: F64, curve: F64, times: F64) -> F64:
    return np.asarray(np.interp(times, fine, curve), dtype=np.float64)


def _portal_vein(grid: Grid) -> BoolArray:
    """A vertical cylinder of radius 9 mm at the liver hilum, 40 mm long."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in grid.shape), indexing="ij")
    a = grid.affine()
    x = a[0, 0] * k + a[0, 1] * j + a[0, 2] * i + a[0, 3]
    y = a[1, 0] * k + a[1, 1] * j + a[1, 2] * i + a[1, 3]
    z = a[2, 0] * k + a[2, 1] * j + a[2, 2] * i + a[2, 3]
    return np.asarray(((x + 40.0) ** 2 + (y - 5.0) ** 2 <= 9.0**2) & (np.abs(z - 55.0) <= 20.0))


def _ribs(grid: Grid, body: BoolArray) -> BoolArray:
    """Ribs: 8 mm bands of the body wall every 25 mm along z (the cranio-caudal landmarks that
    respiratory registration needs; the torso's organs alone barely change along z)."""
    a = grid.affine()
    k = np.arange(grid.shape[0], dtype=np.float64)
    z = a[2, 0] * k + a[2, 3]
    band = (np.mod(z, 25.0) < 8.0)[:, None, None]
    wall = body & ~ndimage.binary_erosion(body, iterations=max(1, int(round(15.0 / grid.spacing[1]))))
    return np.asarray(band & wall)


def _shifts(times: F64, amplitude: tuple[float, float]) -> list[tuple[float, float, float]]:
    """Breathing: a 4.5 s cycle sampled at the frame times, none at the first frame."""
    phase = 2 * np.pi * (times - times[0]) / 4.5
    return [(float(amplitude[0] * np.sin(p)), float(amplitude[1] * np.sin(p)), 0.0) for p in phase]


def _curves(proto: Protocol, fine: F64) -> dict[str, F64]:
    curves = {"aorta": AORTA(fine) if proto.aorta else np.zeros_like(fine), "portal": PORTAL(fine),
              "spleen": SPLEEN(fine), "kidney": KIDNEY(fine), "ivc": IVC(fine), "muscle": MUSCLE(fine),
              "liver": _tissue(HEALTHY, fine)}
    for pl in proto.lesions:
        curves[pl.lesion.lesion_id] = _tissue(pl.flows, fine)
    return curves


def _regions(proto: Protocol, labels: NDArray[np.int16], ids: dict[str, BoolArray]) -> dict[str, BoolArray]:
    portal = _portal_vein(proto.grid)
    lesions = labels > 0
    regions = {"aorta": ids["aorta"], "portal": portal, "spleen": ids["spleen"],
               "kidney": ids["kidney_left"] | ids["kidney_right"], "ivc": ids["ivc"] & ~portal,
               "liver": ids["liver"] & ~portal & ~lesions}
    for n, pl in enumerate(proto.lesions, start=1):
        regions[pl.lesion.lesion_id] = labels == n
    return regions


def perfusion_phantom(proto: Protocol = Protocol()) -> PerfusionPhantom:
    """The frames (HU), their truth, on `proto.grid` (SYNTHETIC)."""
    rng = np.random.default_rng(proto.seed)
    grid = proto.grid
    base = liver_ct_phantom(grid, [pl.lesion for pl in proto.lesions], seed=proto.seed, noise_hu=0.0)
    names = ("aorta", "spleen", "kidney_left", "kidney_right", "ivc", "liver")
    ids = {name: organ_mask(grid, name) for name in names}
    regions = _regions(proto, base.labels, ids)
    body = base.image > -500.0
    base.image[_ribs(grid, body)] = 450.0
    times = np.asarray(proto.times_s, dtype=np.float64)
    fine = np.arange(0.0, float(times[-1]) + 1.0, _FINE_DT)
    curves = _curves(proto, fine)
    sampled = {name: _at(fine, c, times) for name, c in curves.items()}
    muscle = body & ~np.logical_or.reduce([m for m in regions.values()]) & (base.image > 0)
    masks = dict(regions) | {"muscle": muscle}
    frames = np.empty((times.size, *grid.shape), dtype=np.float32)
    shifts = _shifts(times, proto.max_shift_mm)
    spacing = np.asarray(grid.spacing)
    for n in range(times.size):
        frame = base.image.copy()
        for name, mask in masks.items():
            frame[mask] += np.float32(sampled[name][n] - sampled[name].mean())
        # band-limited like a reconstructed CT image, so that moving it by a fraction of a voxel
        # is not an artefact of its own
        frame = ndimage.gaussian_filter(frame, 0.8, mode="nearest")
        shift_vox = np.asarray(shifts[n]) / spacing
        if np.abs(shift_vox).max() > 1e-6:
            frame = ndimage.shift(frame, shift_vox, order=3, mode="nearest")
        frames[n] = frame + rng.standard_normal(grid.shape, dtype=np.float32) * np.float32(proto.noise_hu)
    inputs = InputCurves(times, sampled["aorta"], sampled["portal"], sampled["spleen"])
    expected: dict[str, dict[str, float | None]] = {}
    designed: dict[str, dict[str, float]] = {"liver": HEALTHY.designed()}
    if proto.aorta:
        # the method's clock starts at the first frame (TTP is counted from it, as the analysis does)
        from_first = replace(inputs, times_s=times - times[0])
        for name in ("liver", *(pl.lesion.lesion_id for pl in proto.lesions)):
            expected[name] = curve_values(sampled[name], from_first).as_dict()
    for pl in proto.lesions:
        designed[pl.lesion.lesion_id] = pl.flows.designed()
    diam = {t.lesion_id: t.longest_axial_diameter_mm for t in base.truth.lesions}
    truth = PerfusionTruth(times, regions, expected, designed, inputs, tuple(shifts), diam)
    return PerfusionPhantom(frames, grid, grid.affine(), truth, base.labels)


@dataclass(frozen=True)
class WriteOptions:
    study_uid: str = demo_uid("perfusion-study", 16)
    series_uid: str = demo_uid("perfusion-series", 16)
    description: str = "Liver perfusion 4D"
    study_description: str = "CT perfusion liver"
    patient_id: str = "NADIR-PERF-001"
    start: datetime = datetime(2024, 3, 4, 10, 0, 0)
    shift_frame: int | None = None  # this frame written 10 mm further along z (frames of different geometry)


def write_dynamic(ph: PerfusionPhantom, folder: Path, options: WriteOptions = WriteOptions()) -> list[Path]:
    """One CT series, one instance per slice and frame, frames told by TemporalPositionIdentifier."""
    study = StudyInfo(options.study_uid, options.start, patient_id=options.patient_id,
                      description=options.study_description, body_part="ABDOMEN")
    series = SeriesInfo(options.series_uid, "CT", 4, options.description, demo_uid(options.study_uid, "for"),
                        options.start, contrast_agent="Iobitridol 350",
                        extra={"KVP": "80", "NumberOfTemporalPositions": len(ph.truth.times_s)})
    paths: list[Path] = []
    nz = ph.frames.shape[1]
    for n, t in enumerate(ph.truth.times_s):
        affine = ph.affine.copy()
        if options.shift_frame == n:
            affine[:3, 3] += affine[:3, 0] / np.linalg.norm(affine[:3, 0]) * 10.0
        when = options.start + timedelta(seconds=float(t))
        datasets = series_datasets(ph.frames[n], affine, study, replace(series, series_datetime=options.start),
                                   seed=(options.series_uid, n))
        for k, ds in enumerate(datasets):
            ds.InstanceNumber = n * nz + k + 1
            ds.TemporalPositionIdentifier = n + 1
            ds.AcquisitionNumber = n + 1
            ds.AcquisitionTime = when.strftime("%H%M%S.%f")
            ds.ContentTime = ds.AcquisitionTime
            ds.TriggerTime = f"{float(t) * 1000.0:.1f}"  # ms
        paths += write_datasets(datasets, folder, prefix=f"f{n:02d}_")
    return paths


def lesion_masks(ph: PerfusionPhantom, ids: Sequence[str] | None = None) -> dict[str, BoolArray]:
    """The lesions' true masks on the reference grid."""
    names = [pl for pl in ph.truth.regions if pl.startswith("P")] if ids is None else list(ids)
    return {name: ph.truth.regions[name] for name in names}


def as_dynamic(ph: PerfusionPhantom, series_uid: str = "1.2.826.0.1.3680043.10.1234.16") -> DynamicSeries:
    """The frames as a DynamicSeries in memory (no DICOM), for the pure steps' tests and the bench."""
    slices = tuple(SliceRef(f"{series_uid}.{k + 1}", "1.2.840.10008.5.1.4.1.1.2") for k in range(ph.frames.shape[1]))
    volumes = tuple(Volume(array=ph.frames[n], affine=ph.affine, slices=slices, frame_of_reference_uid="1.2.3",
                           series_instance_uid=series_uid, modality="CT") for n in range(ph.frames.shape[0]))
    return DynamicSeries(volumes, ph.truth.times_s - ph.truth.times_s[0], series_uid)


def write_portal_venous(ph: PerfusionPhantom, folder: Path, options: WriteOptions = WriteOptions()) -> list[Path]:
    """The portal-venous image of the same study (the frames' average) as its own series, on the
    frames' frame of reference: what the liver route segments in a perfusion study."""
    study = StudyInfo(options.study_uid, options.start, patient_id=options.patient_id,
                      description=options.study_description, body_part="ABDOMEN")
    pv = SeriesInfo(demo_uid(options.study_uid, "pv"), "CT", 2, "Abdomen portal venous", demo_uid(options.study_uid, "for"),
                    options.start, image_type=("ORIGINAL", "PRIMARY", "AXIAL"), contrast_agent="Iobitridol 350")
    average = ph.frames.mean(axis=0).astype(np.float32)
    return write_datasets(series_datasets(average, ph.affine, study, pv, seed="pv"), folder, prefix="pv_")


# vendor naming of the maps written by `write_vendor_maps` (rules/perfusion_vendor.yaml patterns)
VENDOR_NAMES = {"GE MEDICAL SYSTEMS": {"BF": "BF", "BV": "BV", "HABF": "HABF", "HPBF": "HPBF"},
                "SIEMENS": {"BF": "Body Perfusion Blood Flow", "BV": "Blood Volume", "HABF": "ALP", "HPBF": "PVP"}}


def vendor_maps(ph: PerfusionPhantom) -> dict[str, F32]:
    """SYNTHETIC deconvolution-like maps from the designed flows: BF = HABF + HPBF (mL/100 g/min),
    BV = BF x MTT / 60 (mL/100 g), each region's designed value, 0 elsewhere."""
    shape = ph.frames.shape[1:]
    out = {name: np.zeros(shape, dtype=np.float32) for name in ("BF", "BV", "HABF", "HPBF")}
    flows = {"liver": HEALTHY} | {pl.lesion.lesion_id: pl.flows for pl in DEFAULT_LESIONS}
    for name, f in flows.items():
        mask = ph.truth.regions.get(name)
        if mask is None:
            continue
        d = f.designed()
        out["HABF"][mask], out["HPBF"][mask], out["BF"][mask] = d["HAP"], d["HPP"], d["TLP"]
        out["BV"][mask] = d["TLP"] * f.mtt_s / 60.0
    return out


def write_vendor_maps(ph: PerfusionPhantom, folder: Path, manufacturer: str, options: WriteOptions = WriteOptions(),
                      photometric_rgb: tuple[str, ...] = ()) -> list[Path]:
    """The maps as derived CT series named as `manufacturer` names them, and the portal-venous image
    (the frames' average) as its own series; maps named in `photometric_rgb` are written as RGB."""
    study = StudyInfo(options.study_uid, options.start, patient_id=options.patient_id,
                      description=options.study_description, body_part="ABDOMEN")
    for_uid = demo_uid(options.study_uid, "for")
    paths = write_portal_venous(ph, folder, options)
    for n, (name, values) in enumerate(vendor_maps(ph).items(), start=10):
        info = SeriesInfo(demo_uid(options.study_uid, "map", name), "CT", n, VENDOR_NAMES[manufacturer][name],
                          for_uid, options.start, image_type=("DERIVED", "SECONDARY", "AXIAL"),
                          extra={"Manufacturer": manufacturer, "SoftwareVersions": "synthetic"})
        datasets = series_datasets(values, ph.affine, study, info, seed=("map", name))
        if name in photometric_rgb:
            for ds in datasets:
                grey = np.clip(ds.pixel_array.astype(np.float64) / 2, 0, 255).astype(np.uint8)
                ds.PixelData = np.repeat(grey[..., None], 3, axis=-1).tobytes()
                ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
                ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
                for kw in ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth"):
                    if kw in ds:
                        delattr(ds, kw)
        paths += write_datasets(datasets, folder, prefix=f"map_{name}_")
    return paths
