"""SYNTHETIC brain PET studies for the brain PET route, on the MNI152 anatomy
(daemon.demo.phantom.brain_pet_phantom: grey 1.3, white 0.9, striatum 2.8 SUVbw), with one
lesion of designed SUV, repositioned between visits (daemon.demo.patient.POSES):

- `write`: a static FDOPA, FET or FDG PET;
- `write_dynamic_fet`: a dynamic FET PET, one series of `FRAMES` time frames (FrameReferenceTime,
  ActualFrameDuration, AcquisitionTime per frame) whose lesion time-activity curve peaks at a
  designed time and whose normal brain rises steadily;
- `write_dual_phase_fdg`: an FDG PET with an early and a delayed series in the same study, the
  lesion-to-grey-matter ratio rising by a designed Horky index;
- `write_demo_patient_fdopa`: the demo patient's FDOPA PET (daemon.demo.patient: the brain
  metastases B1..B5 of its brain MR at the same timepoint, same Patient ID) acquired later the
  same day with the patient lying differently, for a lesion region carried over from the MR.

The truth of a ratio is the ratio as measured on the designed regions of the written image
(`designed_ratios`): a 5 mm FWHM blur and 5 % noise on a 2.5 mm grid change the maxima of small
regions (the striatum's maximum is noise above its 2.8 plateau, the lesion's is below its 4.0
plateau), so the designed plateau values are not what any region drawn on the image can give.
Each designed region is measured by the definition the route uses for it (`designed_regions`):
the striatum is the phantom's contralateral striatum; the lesion is the focus above the tracer's
threshold relative to the normal brain (rules/amino_pet_route.yaml `lesion.hottest_focus`: Pauleit
2005's 1.6 x background for FET) and the normal brain, white and grey matter are the rules'
regions, each drawn by the route's own code with the designed pose in place of the fitted
template: what the route measures differs from the truth only by its template registration.

Not patient data: every series says SYNTHETIC PHANTOM. Used by tests/report/test_brain_pet.py,
tests/routing/test_pet_routes.py and bench/brain_pet.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray

from daemon.demo.dicom import (
    PetDose,
    SeriesInfo,
    StudyInfo,
    demo_uid,
    pet_bqml,
    series_datasets,
    write_datasets,
)
from daemon.demo.patient import (
    BRAIN_SCRIPT,
    DATES,
    GRIDS,
    PET_BRAIN_SUV,
    POSES,
    _series_info,
    _study,
    _write_pet,
    lesions_at,
)
from daemon.demo.phantom import (
    _BRAIN_CENTRE_RAS,
    PET_GREY_SUV,
    PET_STRIATUM_SUV,
    STRIATUM,
    Ellipsoid,
    Phantom,
    Pose,
    _paint,
    _sample_template,
    brain_pet_phantom,
    mni_template,
)
from daemon.measure.brain_atlas import AtlasFit, mni_of_grid
from daemon.volume import SliceRef, Volume

F32 = NDArray[np.float32]
TRACER_NAMES = {"FDOPA": "Fluorodopa F^18^", "FET": "O-(2-[18F]fluoroethyl)-L-tyrosine",
                "FDG": "Fludeoxyglucose F^18^"}
# one lesion in the right hemisphere white matter (anatomical frame of daemon.demo.phantom)
LESION = Ellipsoid("L", (-28.0, -10.0, 12.0), (8.0, 7.0, 7.0))
LESION_SUV = 4.0
STRIATUM_SUV = PET_STRIATUM_SUV
GRID = GRIDS[("PT-brain", "small")]
# dynamic FET: 8 frames of 5 min from injection; the lesion peaks at DYNAMIC_TTP_MIN then washes
# out (the early-peak pattern), the normal brain rises steadily (Galldiks 2015's two patterns)
FRAMES = tuple((5.0 * n, 5.0) for n in range(8))  # (start, duration) minutes p.i.
DYNAMIC_TTP_MIN = 17.5
# dual-phase FDG: early and delayed acquisitions (minutes p.i.), the delayed lesion/GM ratio
# higher by DUAL_PHASE_INDEX (Horky's index)
EARLY_MIN, DELAYED_MIN = 45.0, 180.0
FDG_EARLY_LESION_SUV = 3.0
DUAL_PHASE_INDEX = 0.35


@dataclass(frozen=True)
class BrainPetStudy:
    folder: Path
    study_instance_uid: str
    files: tuple[Path, ...]
    phantom: Phantom


def _lesion(suv: float) -> Ellipsoid:
    return Ellipsoid(LESION.lesion_id, LESION.centre, LESION.radii, intensity=suv, core_fraction=0.0)


def _no_striatum(ph: Phantom, t: int) -> Phantom:
    """FET and FDG: no striatal uptake above grey matter (the striatum is grey matter)."""
    image = ph.image.copy()
    scratch = np.zeros(image.shape, dtype=np.int16)
    _paint(image, scratch, GRID.affine(), STRIATUM, POSES[t], {s.lesion_id: (PET_GREY_SUV, PET_GREY_SUV)
                                                                for s in STRIATUM})
    return Phantom(image, ph.labels, ph.truth)


def _phantom(tracer: str, t: int, seed: int, suv: float, noise: float = 0.05) -> Phantom:
    ph = brain_pet_phantom(GRID, [_lesion(suv)], POSES[t], seed=seed, noise=noise)
    return ph if tracer == "FDOPA" else _no_striatum(ph, t)


def _files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(folder.rglob("*.dcm")))


def write(out: Path, tracer: str, t: int = 0, seed: int = 7, *, with_dose: bool = True,
          description: str = "", body_part: str = "BRAIN") -> BrainPetStudy:
    """One static brain PET study (pose t of daemon.demo.patient.POSES)."""
    kind = f"pet-brain-{tracer.lower()}"
    folder = out / f"{kind}-t{t}{'' if with_dose else '-nodose'}"
    study = _study(seed, kind, t, description or f"PET brain {tracer} SYNTHETIC PHANTOM", body_part)
    ph = _phantom(tracer, t, seed * 10 + t, LESION_SUV)
    dose = PetDose(injected_dose_bq=185e6, injection_time=DATES[t], radiopharmaceutical=TRACER_NAMES[tracer])
    series = _series_info(seed, kind, t, "PT", 4, f"PET brain {tracer} static", DATES[t] + timedelta(minutes=20),
                          demo_uid(seed, kind, t, "for"), pet=dose, image_type=("ORIGINAL", "PRIMARY"))
    _write_pet(folder, ph, study, series, dose, seed)
    if not with_dose:  # the header's dose removed: SUV not computable
        for f in folder.rglob("*.dcm"):
            ds = pydicom.dcmread(f)
            del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
            ds.save_as(f)
    return BrainPetStudy(folder, study.study_instance_uid, _files(folder), ph)


def lesion_tac(minutes: float) -> float:
    """The designed lesion SUV at `minutes` p.i.: a rise to 4.0 at DYNAMIC_TTP_MIN, then washout."""
    if minutes <= DYNAMIC_TTP_MIN:
        return LESION_SUV * minutes / DYNAMIC_TTP_MIN
    return LESION_SUV * (1.0 - 0.01 * (minutes - DYNAMIC_TTP_MIN))


def brain_tac(minutes: float) -> float:
    """The designed normal-brain scale at `minutes` p.i. (steadily increasing, 1 at 40 min)."""
    return float(1.0 - np.exp(-minutes / 15.0)) / float(1.0 - np.exp(-40.0 / 15.0))


def _dynamic_frames(t: int, seed: int) -> tuple[F32, F32, Phantom]:
    """The noise-free background (lesion hole) and lesion unit images: frame = b*bg + l*unit."""
    bg = _phantom("FET", t, seed, 0.0, noise=0.0)
    one = _phantom("FET", t, seed, 1.0, noise=0.0)
    return bg.image, (one.image - bg.image).astype(np.float32), one


def write_dynamic_fet(out: Path, t: int = 0, seed: int = 7, *, frame_times: bool = True) -> BrainPetStudy:
    """A dynamic FET PET: `FRAMES` frames in one series; `frame_times=False` drops the frames' times
    (FrameReferenceTime, ActualFrameDuration, AcquisitionTime): a 4D series whose frames cannot be timed."""
    kind = "pet-brain-fet-dyn"
    folder = out / f"{kind}-t{t}{'' if frame_times else '-notimes'}"
    study = _study(seed, kind, t, "PET brain FET dynamic glioma SYNTHETIC PHANTOM", "BRAIN")
    injection = DATES[t]
    dose = PetDose(injected_dose_bq=185e6, injection_time=injection, radiopharmaceutical=TRACER_NAMES["FET"])
    series = _series_info(seed, kind, t, "PT", 4, "PET brain FET dynamic", injection, demo_uid(seed, kind, t, "for"),
                          pet=dose, image_type=("ORIGINAL", "PRIMARY"))
    bg, unit, one = _dynamic_frames(t, seed * 10 + t)
    rng = np.random.default_rng(seed * 10 + t)
    nk = GRID.shape[0]
    datasets = []
    for f, (start, duration) in enumerate(FRAMES):
        mid = start + duration / 2.0
        suv = bg * np.float32(brain_tac(mid)) + unit * np.float32(lesion_tac(mid))
        suv = np.maximum(suv * (1.0 + rng.standard_normal(suv.shape, dtype=np.float32) * np.float32(0.03)), 0.0)
        frame = series_datasets(pet_bqml(suv, dose, injection, study.weight_kg), GRID.affine(), study, series,
                                seed=(seed, f))
        acquired = injection + timedelta(minutes=start)
        for k, ds in enumerate(frame):
            ds.InstanceNumber = ds.ImageIndex = f * nk + k + 1
            ds.SeriesType = ["DYNAMIC", "IMAGE"]
            ds.NumberOfTimeSlices = len(FRAMES)
            ds.AcquisitionDate, ds.AcquisitionTime = acquired.strftime("%Y%m%d"), acquired.strftime("%H%M%S")
            ds.ContentTime = ds.AcquisitionTime
            ds.ActualFrameDuration = int(duration * 60000)
            ds.FrameReferenceTime = f"{mid * 60000:.0f}"  # from the series start (= the injection)
            if not frame_times:
                for keyword in ("FrameReferenceTime", "ActualFrameDuration", "AcquisitionTime", "ContentTime"):
                    delattr(ds, keyword)
        datasets += frame
    write_datasets(datasets, folder, prefix="PT04-")
    return BrainPetStudy(folder, study.study_instance_uid, _files(folder), one)


def _pet_series(study: StudyInfo, seed: int, kind: str, t: int, number: int, description: str, when: datetime,
                dose: PetDose) -> SeriesInfo:
    return _series_info(seed, kind, t, "PT", number, description, when, demo_uid(seed, kind, t, "for"), pet=dose,
                        image_type=("ORIGINAL", "PRIMARY"))


def write_dual_phase_fdg(out: Path, t: int = 0, seed: int = 7, *, phases: tuple[str, ...] = ("early", "delayed"),
                         study_minutes: float = 0.0, injected_after: timedelta = timedelta(0)) -> BrainPetStudy:
    """Dual-phase FDG of a brain metastasis: the early (EARLY_MIN p.i.) and delayed (DELAYED_MIN) series
    in one study; `phases` = ("early",) or ("delayed",) writes one of them only (two studies, each its own
    study UID, `study_minutes` apart in their study times); `injected_after`: the tracer injected that
    long after DATES[t] (a delayed study of another injection, e.g. the next day)."""
    kind = "pet-brain-fdg-" + "-".join(phases)
    folder = out / f"{kind}-t{t}"
    injection = DATES[t] + injected_after
    study = _study(seed, kind, t, "PET brain FDG dual phase metastasis SYNTHETIC PHANTOM", "BRAIN")
    study = replace(study, study_datetime=injection + timedelta(minutes=study_minutes))
    dose = PetDose(injected_dose_bq=250e6, injection_time=injection, radiopharmaceutical=TRACER_NAMES["FDG"])
    designed = {"early": FDG_EARLY_LESION_SUV, "delayed": FDG_EARLY_LESION_SUV * (1.0 + DUAL_PHASE_INDEX)}
    minutes = {"early": EARLY_MIN, "delayed": DELAYED_MIN}
    ph = None
    for n, phase in enumerate(phases):
        ph = _phantom("FDG", t, seed * 10 + t + n, designed[phase])
        series = _pet_series(study, seed, kind, t, 4 + n, f"PET brain FDG {phase}",
                             injection + timedelta(minutes=minutes[phase]), dose)
        _write_pet(folder, ph, study, series, dose, seed)
    assert ph is not None
    return BrainPetStudy(folder, study.study_instance_uid, _files(folder), ph)


def designed_masks(t: int) -> dict[str, NDArray[np.bool_]]:
    """The designed lesion, left (contralateral) striatum and white matter (p >= 0.9) on the small grid."""
    labels = np.zeros(GRID.shape, dtype=np.int16)
    _paint(np.zeros(GRID.shape, np.float32), labels, GRID.affine(), STRIATUM, POSES[t],
           {s.lesion_id: (1.0, 1.0) for s in STRIATUM})
    left = np.isin(labels, [i + 1 for i, s in enumerate(STRIATUM) if s.lesion_id.endswith("left")])
    lesion = np.zeros(GRID.shape, dtype=np.int16)
    _paint(np.zeros(GRID.shape, np.float32), lesion, GRID.affine(), [_lesion(1.0)], POSES[t], {"L": (1.0, 1.0)})
    tpl = mni_template()
    white = _sample_template(tpl.white, tpl.affine_lps, GRID, POSES[t]) >= 0.9
    return {"lesion": lesion > 0, "striatum": left, "white_matter": np.asarray(white, dtype=bool)}


def designed_fit(t: int) -> AtlasFit:
    """The designed PET patient (LPS mm) -> MNI RAS mm mapping of pose t: the phantom's anatomical
    frame is MNI LPS with its origin at _BRAIN_CENTRE_RAS (daemon.demo.phantom)."""
    to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    to_ras[:3, 3] = _BRAIN_CENTRE_RAS
    return AtlasFit(np.asarray(to_ras @ np.linalg.inv(POSES[t].matrix()), dtype=np.float64), 1.0, 1.0,
                    f"designed pose {t}")


def designed_regions(suv: F32, t: int, tracer: str = "FDOPA") -> dict[str, NDArray[np.bool_]]:
    """The lesion and reference regions by the route's definitions on the designed anatomy: the
    route's finder (daemon.pipelines.brain_pet_lesions.find_hottest, rules/amino_pet_route.yaml)
    given the designed pose instead of its template fit; the striatum as designed (`designed_masks`).
    The lesion is the threshold focus that overlaps the designed lesion (empty if none does)."""
    from daemon.criteria.rules import RULES_DIR, RulesSource
    from daemon.pipelines.brain_pet_lesions import find_hottest
    from daemon.pipelines.followup_input import StudyImage

    volume = Volume(np.asarray(suv, dtype=np.float32), GRID.affine(),
                    tuple(SliceRef(f"designed.{k}", "") for k in range(GRID.shape[0])), "designed")
    fit = designed_fit(t)
    ras = mni_of_grid(volume, fit).astype(np.float32)
    notes = {"tracer": tracer, "atlas_matrix": " ".join(f"{v:.9g}" for v in fit.matrix.ravel())}
    image = StudyImage(volume, (), "", {f"mni_{a}": volume.with_array(ras[..., n]) for n, a in enumerate("xyz")},
                       (), notes)
    found = find_hottest(RulesSource(RULES_DIR, None), image, {})
    designed = designed_masks(t)
    lesion = np.asarray(found.lesions.labels > 0, dtype=bool)
    lesion = lesion if (lesion & designed["lesion"]).any() else np.zeros(GRID.shape, dtype=bool)
    return {**{k: np.asarray(v, dtype=bool) for k, v in found.organs.items()}, "lesion": lesion,
            "striatum": designed["striatum"]}


RATIO_REGIONS = {"s": "striatum", "n": "normal_brain", "wm": "white_matter", "gm": "grey_matter_thalamus"}


def designed_ratios(suv: F32, t: int, tracer: str = "FDOPA") -> dict[str, float]:
    """The truth of the ratios (`l_s_max`, `l_s_mean`, `l_n_...`, `l_wm_...`, `l_gm_...`, as the route
    names them): SUVmax / SUVmax and SUVmean / SUVmean of the designed regions (`designed_regions`)."""
    m = designed_regions(suv, t, tracer)
    les = np.asarray(suv, dtype=np.float64)[m["lesion"]]
    out = {"lesion_suv_max": float(les.max()), "lesion_suv_mean": float(les.mean())}
    for key, name in RATIO_REGIONS.items():
        ref = np.asarray(suv, dtype=np.float64)[m[name]]
        out |= {f"l_{key}_max": float(les.max() / ref.max()), f"l_{key}_mean": float(les.mean() / ref.mean()),
                f"{name}_suv_max": float(ref.max()), f"{name}_suv_mean": float(ref.mean())}
    return out


# the demo patient's FDOPA PET after its MR: 3 hours later, the head turned and shifted
PET_AFTER_MR = timedelta(hours=3)
PET_AFTER_MR_POSE = Pose(rotation_deg=(3.0, -2.0, 6.0), translation_mm=(5.0, -8.0, 10.0))


def write_demo_patient_fdopa(out: Path, t: int = 0, seed: int = 1, pose: Pose = PET_AFTER_MR_POSE) -> BrainPetStudy:
    """The demo patient's FDOPA PET at timepoint t (its lesions B1..B5 as on the brain MR written by
    daemon.demo.patient.write_brain_mr(out, t, "small", seed)), PET_AFTER_MR after the MR, in `pose`."""
    kind = "pet-brain-after-mr"
    folder = out / f"{kind}-t{t}"
    study = _study(seed, kind, t, "PET brain FDOPA metastases SYNTHETIC PHANTOM", "BRAIN")
    when = DATES[t] + PET_AFTER_MR
    study = replace(study, study_datetime=when)
    lesions = [Ellipsoid(e.lesion_id, e.centre, e.radii, e.angles_deg, e.kind, PET_BRAIN_SUV[e.lesion_id][t],
                         e.core_fraction, e.site) for e in lesions_at(BRAIN_SCRIPT, t)]
    ph = brain_pet_phantom(GRID, lesions, pose, seed=seed * 10 + t)
    dose = PetDose(injected_dose_bq=185e6, injection_time=when, radiopharmaceutical=TRACER_NAMES["FDOPA"])
    series = _series_info(seed, kind, t, "PT", 4, "PET brain FDOPA static", when + timedelta(minutes=20),
                          demo_uid(seed, kind, t, "for"), pet=dose, image_type=("ORIGINAL", "PRIMARY"))
    _write_pet(folder, ph, study, series, dose, seed)
    return BrainPetStudy(folder, study.study_instance_uid, _files(folder), ph)
