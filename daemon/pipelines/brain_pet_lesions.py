"""The brain PET route's lesion region, and the reference regions drawn around it.

1. From the brain MR route (rules `lesion.from_mr`): the patient's latest timepoint of that route
   processed within `window_days` before the PET (same day included: PET/MR), asked of the
   runtime's priors (database, else our SRs read back from the PACS). Its MR series (the
   priors' `prior_volume`) is registered rigidly onto the PET (Mattes mutual information,
   daemon.measure.registration) and each recorded lesion is placed on the PET as the ellipsoid
   of its recorded callipers, volume and centroid (daemon.measure.mr_lesions: the history keeps
   the geometry, not the mask). Each keeps the MR's tracking id and UID, so the radiologist
   reads L1 on both reports.
2. Else the hottest connected focus above the tracer's factor x its reference region
   (rules `lesion.hottest_focus`, with the cited papers), the report saying why the MR's were
   not used.
3. Else no lesion.

A lookup that failed is not "no MR": the priors source raises PriorsUnavailable while the job
has attempts left (the job is retried), and on the last attempt answers "unavailable": the
lesion is then the hottest focus and the report says that the MR's lesions could not be
looked up, and why.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
from scipy import ndimage

from daemon import __version__
from daemon.criteria.rules import RulesSource
from daemon.findings import Lesion, Timepoint
from daemon.imaging.mni_templates import tissue_maps
from daemon.measure import brain_regions, mr_lesions
from daemon.measure.brain_pet_rules import RULES_NAME, BrainPetRules, FromMr, Tracer
from daemon.measure.registration import AlignmentMethod, align
from daemon.pipelines.brain_pet_input import atlas_fit, mni_coordinates
from daemon.pipelines.followup_input import Found, Organs, StudyImage
from daemon.pipelines.priors import UNAVAILABLE, PriorsSource, Request
from daemon.report.inputs import ModelInfo, Reason
from daemon.volume import Code, LesionMask, SegmentLabel

NEOPLASM = Code("108369006", "SCT", "Neoplasm")
ALTERED = Code("49755003", "SCT", "Morphologically Altered Structure")
BoolArray = np.ndarray[tuple[int, ...], np.dtype[np.bool_]]


def _hottest(image: StudyImage, br: BrainPetRules, ras: np.ndarray) -> tuple[np.ndarray, str]:
    """The hottest connected focus above the tracer's factor x its reference; empty when none."""
    volume = image.volume
    tracer: Tracer = image.notes["tracer"]  # type: ignore[assignment]
    rule = br.lesion.hottest_focus.for_tracer(tracer)
    maps = tissue_maps(float(br.atlas.grid_mm))
    first = brain_regions.regions(volume, atlas_fit(image), maps, ras, br.regions, None)
    suv = np.asarray(volume.array, dtype=np.float64)
    ref = first[rule.reference].mask
    if not ref.any():
        return np.zeros(volume.shape, dtype=bool), "reference region empty"
    threshold = float(rule.factor) * float(suv[ref].mean())
    allowed = brain_regions.brain_mask(maps, ras, br.regions)
    for name in rule.exclude:
        allowed &= ~(brain_regions.striatum_of(ras, br.regions.striatum) if name == "striatum"
                     else brain_regions.grey_mask(maps, ras, float(br.regions.grey_matter_thalamus_level.probability_min)))
    hot = (suv >= threshold) & allowed
    labels, n = ndimage.label(hot, structure=np.ones((3, 3, 3)))
    voxel_ml = volume.voxel_volume_mm3 / 1000.0
    best, best_max = 0, -1.0
    for c in range(1, n + 1):
        comp = labels == c
        if comp.sum() * voxel_ml >= float(br.lesion.hottest_focus.min_volume_ml) and suv[comp].max() > best_max:
            best, best_max = c, float(suv[comp].max())
    how = f"hottest focus >= {rule.factor} x {rule.reference.replace('_', ' ')} SUVmean ({threshold:.2f}): {rule.citation.text}"
    return (labels == best) if best else np.zeros(volume.shape, dtype=bool), how


def _found(rules: RulesSource, image: StudyImage, lesions: list[tuple[Lesion | None, BoolArray]],
           said: tuple[str, ...], model: ModelInfo, reasons: tuple[Reason, ...] = ()) -> Found:
    """The lesion labels (1..n), the reference regions drawn around their union, and the carried identities."""
    br = rules.load(BrainPetRules, RULES_NAME)
    labels = np.zeros(image.volume.shape, dtype=np.uint16)
    info, identities = [], {}
    for n, (les, mask) in enumerate(lesions, start=1):
        labels[mask & (labels == 0)] = n
        info.append(SegmentLabel(n, les.tracking_id if les is not None else "lesion", ALTERED, NEOPLASM))
        if les is not None:
            identities[n] = (les.tracking_id, les.tracking_uid)
    union = labels > 0
    maps = tissue_maps(float(br.atlas.grid_mm))
    regions = brain_regions.regions(image.volume, atlas_fit(image), maps, mni_coordinates(image), br.regions, union)
    found = LesionMask(image.volume, labels, tuple(info) or (SegmentLabel(1, "lesion", ALTERED, NEOPLASM),))
    return Found(found, {name: r.mask for name, r in regions.items()}, frozenset(), model, said,
                 identities=identities, reasons=reasons)


def _mr_timepoint(rule: FromMr, priors: PriorsSource, req: Request) -> tuple[Timepoint, str, Request] | Reason:
    """The brain MR route's latest timepoint of the patient within the window (and its series), or why none."""
    if req.study_date is None:
        return Reason("no_date", "the PET has no study date, so no MR window can be applied")
    # the MR route's history before the day after the PET: an MR of the same day (PET/MR) counts
    mr_req = replace(req, route=rule.route, modalities=("MR",), study_date=req.study_date + timedelta(days=1))
    got = priors.find(mr_req)  # PriorsUnavailable (a retry may help) propagates: the job is retried
    if got.source == UNAVAILABLE:
        return Reason("lookup", f"the brain MR's lesions could not be looked up ({got.note})", {"note": got.note})
    earliest = req.study_date - timedelta(days=rule.window_days)
    within = [(tp, got.series[n] if n < len(got.series) else "") for n, tp in enumerate(got.timepoints)
              if tp.study_date is not None and earliest <= tp.study_date <= req.study_date]
    if not within:
        return Reason("no_mr", f"no brain MR of the patient processed by route {rule.route} within "
                      f"{rule.window_days} days before the PET ({got.note})",
                      {"route": rule.route, "days": str(rule.window_days)})
    tp, series = within[-1]
    if not tp.lesions:
        return Reason("mr_no_lesion", f"the brain MR of {tp.study_date} (route {rule.route}) recorded no lesion",
                      {"date": str(tp.study_date), "route": rule.route})
    return tp, series, mr_req


def find_lesion(rules: RulesSource, image: StudyImage, organs: Organs, priors: PriorsSource, req: Request) -> Found:
    """The brain MR route's lesions carried onto the PET, else the hottest focus; the regions around them."""
    br = rules.load(BrainPetRules, RULES_NAME)
    rule = br.lesion.from_mr
    said: tuple[str, ...] = ()
    coded: tuple[Reason, ...] = ()  # where the lesion region came from
    if rule.route:
        got = _mr_timepoint(rule, priors, req)
        if not isinstance(got, Reason):
            tp, series, mr_req = got
            mr = priors.prior_volume(mr_req, tp.study_instance_uid, series) if series else None
            alignment = align(mr, image.volume) if mr is not None else None
            mr_date = {"date": str(tp.study_date)}
            if mr is None or alignment is None:
                got = Reason("mr_images", f"the images of the brain MR of {tp.study_date} could not be had for the "
                             "PET-MR registration", mr_date)
            elif alignment.method is AlignmentMethod.NONE:
                got = Reason("mr_registration", f"the brain MR of {tp.study_date} could not be registered onto the "
                             f"PET ({alignment.note})", mr_date)
            else:
                placed = mr_lesions.place(tp.lesions, image.volume, alignment)
                how = (f"Lesion region{'s' if len(placed) > 1 else ''} "
                       f"{', '.join(les.tracking_id for les, _ in placed)} from the brain MR of {tp.study_date} "
                       f"(study {tp.study_instance_uid}, route {rule.route}): each placed as the ellipsoid of its "
                       f"recorded callipers and volume after rigid PET-MR registration ({alignment.method}, "
                       f"{alignment.rotation_deg:.1f} deg, {alignment.translation_mm:.1f} mm); "
                       f"tracking identifiers as on the MR. {rule.citation.text}")
                model = ModelInfo("nadir-brain-pet-from-mr", __version__, "")
                return _found(rules, image, [(les, m) for les, m in placed], (how,), model,
                              (Reason("from_mr", how, mr_date),))
        said, coded = (f"Lesion not taken from a brain MR: {got.text}.",), (got,)
    return _hottest_found(rules, image, said, coded)


def _hottest_found(rules: RulesSource, image: StudyImage, said: tuple[str, ...],
                   reasons: tuple[Reason, ...] = ()) -> Found:
    br = rules.load(BrainPetRules, RULES_NAME)
    lesion, how = _hottest(image, br, mni_coordinates(image))
    said += (f"Lesion region: {how}." if lesion.any() else f"No focus met the rule: {how}.",)
    model = ModelInfo("nadir-brain-pet-rule", __version__, "")
    return _found(rules, image, [(None, lesion)] if lesion.any() else [], said, model, reasons)


def find_hottest(rules: RulesSource, image: StudyImage, organs: Organs) -> Found:
    """The hottest focus only (the route's rule finder where no priors are at hand)."""
    return _hottest_found(rules, image, ())
