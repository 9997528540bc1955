"""TID 1500 measurement groups: per lesion (callipers, volume) and per study (assessment, outcome).

Layout of conformance.md §1/§2.2: per measured lesion one TID 1501 group with Long
Axis and Short Axis NUMs, each with one two-point POLYLINE SCOORD on its source
slice; a TID 1411 group with the same tracking UID for volume and intensities,
referencing the lesion's SEG segment. Tracking UIDs are always passed explicitly.
Each lesion group carries the lesion's name as a TEXT (DCM,121106,"Comment"): the
label OHIF 3.x prints beside its callipers. A lesion may add the Chun features, its
proposed Chun group and, per extra assessment with a result for it, its response.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

from daemon.criteria.assessment import Assessment
from daemon.findings import Calliper, Lesion, LesionKind
from daemon.report import codes as nc
from daemon.report import sr_rano_bm
from daemon.report.inputs import StudyMeasurementGroup
from daemon.report.text import is_proposal, key_numbers, lesion_result, proposed_group
from daemon.volume import SliceRef, Volume

OHIF_BIDIRECTIONAL = "Cornerstone3DTools@^0.1.0:Bidirectional:"

KIND_CONCEPT = nc.nadir("LESIONKIND", "Lesion kind")
KIND_VALUES: dict[LesionKind, CodedConcept] = {
    LesionKind.TARGET: nc.nadir("TARGET", "Target lesion"),
    LesionKind.NON_TARGET: nc.nadir("NONTARGET", "Non-target lesion"),
    LesionKind.NEW: nc.nadir("NEW", "New lesion"),
}
MAX_3D_DIAMETER = nc.nadir("MAX3DDIAM", "Maximum 3D diameter")

# intensity name -> (concept, derivation, unit); names as measure/ writes them
_STATS = {"mean": nc.MEAN, "sd": nc.STD_DEV, "min": nc.MINIMUM, "max": nc.MAXIMUM, "peak": nc.PEAK}
_QUANTITIES = {
    "hu": (nc.ATTENUATION, nc.HU),
    "suv": (nc.SUV_BW, nc.SUV_BW_UNIT),
    "sul": (nc.SUL_JANMA, nc.SUL_JANMA_UNIT),
}
# "<quantity>_<statistic>" as measure/intensity.py names them -> (concept, derivation, unit)
INTENSITY: dict[str, tuple[CodedConcept, CodedConcept | None, CodedConcept]] = {
    f"{q}_{stat}": (concept, derivation, unit)
    for q, (concept, unit) in _QUANTITIES.items()
    for stat, derivation in _STATS.items()
} | {
    # the Chun features of a liver lesion (measure/chun_features.py)
    "lesion_to_liver_hu": (nc.LESION_TO_LIVER_HU, None, nc.HU),
    "interface_hu_per_mm": (nc.INTERFACE_GRADIENT, None, nc.HU_PER_MM),
    "rim_vs_core_hu": (nc.RIM_VS_CORE_HU, None, nc.HU),
    "rim_vs_liver_hu": (nc.RIM_VS_LIVER_HU, None, nc.HU),
}

# lesion / reference-region SUV ratios as measure/ names them ("l_<region>_<statistic>", brain PET) ->
# (DCM 126039) with the statistic as derivation and the region as (NCIt C94970 Reference Region) concept modifier
BACKGROUNDS = {"n": CodedConcept("12738006", "SCT", "Brain"), "s": CodedConcept("31428008", "SCT", "Corpus striatum"),
               "wm": CodedConcept("68523003", "SCT", "Cerebral White Matter"),
               "gm": CodedConcept("389081007", "SCT", "Gray Matter")}
BACKGROUND_RATIOS: dict[str, tuple[CodedConcept, CodedConcept]] = {
    f"l_{key}_{stat}": (_STATS[stat], region) for key, region in BACKGROUNDS.items() for stat in ("max", "mean")
}


def _background(measurement: hd.sr.Measurement, region: CodedConcept) -> hd.sr.Measurement:
    measurement[0].ContentSequence.append(hd.sr.CodeContentItem(
        nc.REFERENCE_REGION, region, relationship_type=hd.sr.RelationshipTypeValues.HAS_CONCEPT_MOD))
    return measurement


@dataclass(frozen=True, eq=False)
class GroupContext:
    algorithm: hd.sr.AlgorithmIdentification | None
    finding: CodedConcept
    ohif_hydratable: bool = False
    volume: Volume | None = None  # to place a centroid anchor when there is no long axis
    volumetric_groups: bool = False  # volume/intensities in a TID 1411 group (see sr.py)
    default_site: CodedConcept | None = None  # the route's organ when a lesion's site is free text
    extra_assessments: tuple[Assessment, ...] = ()  # per-lesion results go into the lesion groups
    treatment_effect: tuple[str, ...] = ()  # tracking ids flagged possible treatment effect (sr_rano_bm)


def tracking(uid: str, label: str, ohif: bool = False) -> hd.sr.TrackingIdentifier:
    text = (OHIF_BIDIRECTIONAL + label) if ohif else label
    return hd.sr.TrackingIdentifier(uid=uid, identifier=text[:64])


# Where the assessment's numbers are anchored (column, row, in SCOORD pixel coordinates):
# near the top-left corner of a slice. OHIF draws a POINT as an arrow pointing at it from
# a tenth of the image further in, with the group's labels beside the arrow's tail: in the
# corner, clear of the lesions' own labels (at the right end of their callipers).
ASSESSMENT_ANCHOR = (4.0, 4.0)


def polyline(c: Calliper) -> hd.sr.CoordinatesForMeasurement:
    s = c.start_image.slice
    if c.end_image.slice != s:
        raise ValueError("a calliper's two end points must lie on the same slice")
    frames = [s.frame_number] if s.frame_number is not None else None
    data = np.array(
        [[c.start_image.column, c.start_image.row], [c.end_image.column, c.end_image.row]],
        dtype=np.float32,
    )
    return hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=data,
        source_image=hd.sr.SourceImageForRegion(s.sop_class_uid, s.sop_instance_uid, frames),
    )


def _sites(lesion: Lesion, ctx: GroupContext) -> list[hd.sr.FindingSite] | None:
    code = nc.site_code(lesion.site, lesion.is_node) or ctx.default_site
    if code is None:
        return None
    words = lesion.site.lower().split()
    side = codes.SCT.Left if "left" in words else codes.SCT.Right if "right" in words else None
    return [hd.sr.FindingSite(code, laterality=side)]


def _kind(lesion: Lesion) -> hd.sr.QualitativeEvaluation:
    return hd.sr.QualitativeEvaluation(KIND_CONCEPT, KIND_VALUES[lesion.kind])


def _proposals(lesion: Lesion, ctx: GroupContext) -> list[hd.sr.QualitativeEvaluation]:
    """The proposed Chun group and each extra assessment's response for this lesion,
    flagged 'to be confirmed' when any of them is a proposal."""
    out = []
    group = nc.CHUN_GROUPS.get(lesion.measurements.notes.get("chun_group", ""))
    proposed = group is not None and proposed_group(lesion)
    if group is not None:
        concept = nc.CHUN_GROUP if proposed else nc.CHUN_GROUP_CONFIRMED
        out.append(hd.sr.QualitativeEvaluation(concept, group))
    for a in ctx.extra_assessments:
        r = lesion_result(a, lesion)
        if r is not None:
            out.append(hd.sr.QualitativeEvaluation(nc.lesion_response_code(a.criterion), nc.category_code(r.category)))
            proposed = proposed or is_proposal(a)
    if proposed:
        out.append(hd.sr.QualitativeEvaluation(nc.REVIEW_STATUS, nc.TO_CONFIRM))
    return out


def _texts(lesion: Lesion) -> list[hd.sr.TextContentItem]:
    """The lesion's name (OHIF's calliper label) and the basis of its proposed Chun group."""
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    out = [hd.sr.TextContentItem(nc.COMMENT, lesion.tracking_id[:64], contains)]
    basis = lesion.measurements.notes.get("chun_basis")
    if basis and "chun_group" in lesion.measurements.notes:
        out.append(hd.sr.TextContentItem(nc.CHUN_BASIS, basis[:1024], contains))
    return out


def anchor(lesion: Lesion, volume: Volume | None) -> hd.sr.CoordinatesForMeasurement | None:
    """Where OHIF shows a lesion's other numbers: its long axis, else a POINT at its centroid."""
    m = lesion.measurements
    if m.long_axis is not None:
        return polyline(m.long_axis)
    if m.centroid is None or volume is None:
        return None
    k, j, i = (float(v) for v in volume.patient_to_index(m.centroid))
    kr = int(round(k))
    if not 0 <= kr < volume.shape[0]:
        return None
    p = volume.index_to_image((kr, j, i))
    frames = [p.slice.frame_number] if p.slice.frame_number is not None else None
    return hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POINT,
        graphic_data=np.array([[p.column, p.row]], dtype=np.float32),
        source_image=hd.sr.SourceImageForRegion(p.slice.sop_class_uid, p.slice.sop_instance_uid, frames),
    )


def lesion_group(
    lesion: Lesion,
    ctx: GroupContext,
    segment_source: hd.sr.SourceImageForMeasurementGroup | None = None,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """TID 1501: Long/Short Axis NUMs each with its POLYLINE, then (unless volumetric groups
    are asked for) volume, intensities and ratios each anchored on the long axis so that
    every NUM has an INFERRED FROM SCOORD (OHIF, conformance §2.2 rule 6). Axes not
    measured are coded 'Not Evaluated', never 0."""
    m = lesion.measurements
    measurements: list[hd.sr.Measurement] = []
    evaluations = [_kind(lesion)]
    for concept, cal in ((nc.LONG_AXIS, m.long_axis), (nc.SHORT_AXIS, m.short_axis)):
        if cal is None:
            evaluations.append(hd.sr.QualitativeEvaluation(concept, codes.SCT.NotEvaluated))
            continue
        measurements.append(
            hd.sr.Measurement(
                name=concept,
                value=round(float(cal.length_mm), 3),
                unit=nc.MM,
                referenced_coordinates=[polyline(cal)],
            )
        )
    where = anchor(lesion, ctx.volume)
    if not ctx.volumetric_groups and where is not None:
        measurements.extend(volume_measurements(lesion, where))
    evaluations.extend(_proposals(lesion, ctx))
    evaluations.extend(sr_rano_bm.lesion_evaluations(lesion, ctx.treatment_effect))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(lesion.tracking_uid, lesion.tracking_id, ctx.ohif_hydratable),
        finding_type=ctx.finding,
        finding_sites=_sites(lesion, ctx),
        algorithm_id=ctx.algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations,
        source_images=[segment_source] if segment_source is not None else None,
    )
    group[0].ContentSequence.extend(_texts(lesion))
    group[0].ContentSequence.extend(sr_rano_bm.lesion_texts(lesion))
    return group


# study-level numbers with a PS3.16 concept; the others get 99NADIR "S..." codes
STUDY_CONCEPTS: dict[str, CodedConcept] = {"tlg": CodedConcept("126033", "DCM", "Total Lesion Glycolysis")}
STUDY_UNITS = {"ml": "milliliter", "mm": "millimeter", "1": "no units", "g": "gram",
               "mm/m2": "millimeter per square meter",
               "g/ml{SUVlbm(Janma)}": "Standardized Uptake Value lean body mass (Janma)",
               "g/ml{SUVbw}": "Standardized Uptake Value body weight",
               # perfusion (PS3.16 CID 7181 writes "ml/[100]g/min", "ml/[100]ml"; per 100 ml per minute alike)
               "ml/[100]ml/min": "milliliter per 100 milliliter per minute",
               "ml/[100]g/min": "milliliter per 100 gram per minute", "ml/[100]ml": "milliliter per 100 milliliter",
               "ml/[100]g": "milliliter per 100 gram", "s": "second", "%": "Percent"}


def private_concept(prefix: str, name: str) -> CodedConcept:
    """99NADIR concept for a named quantity: I... intensity, R... ratio; meaning = the name."""
    value = prefix + "".join(ch for ch in name.upper() if ch.isalnum())[:15]
    return nc.nadir(value, name[:64])


def volume_measurements(
    lesion: Lesion, where: hd.sr.CoordinatesForMeasurement | None = None
) -> list[hd.sr.Measurement]:
    """Volume (mm3), max 3D diameter, intensity statistics (UCUM units) and ratios."""
    m = lesion.measurements
    rows: list[tuple[CodedConcept, float, CodedConcept, CodedConcept | None]] = []
    if m.volume_ml is not None:
        rows.append((nc.VOLUME, m.volume_ml * 1000.0, nc.MM3, None))
    if m.max_3d_diameter_mm is not None:
        rows.append((MAX_3D_DIAMETER, m.max_3d_diameter_mm, nc.MM, None))
    backgrounds: dict[int, CodedConcept] = {}
    for name, value in sorted(m.intensity.items()):
        if name in BACKGROUND_RATIOS:
            backgrounds[len(rows)] = BACKGROUND_RATIOS[name][1]
            rows.append((nc.LESION_TO_BACKGROUND, value, nc.NO_UNITS, BACKGROUND_RATIOS[name][0]))
            continue
        concept, derivation, unit = INTENSITY.get(name, (private_concept("I", name), None, nc.NO_UNITS))
        rows.append((concept, value, unit, derivation))
    for name, value in sorted(m.ratios.items()):
        rows.append((private_concept("R", name), value, nc.NO_UNITS, None))
    out = [
        hd.sr.Measurement(
            name=concept,
            value=round(float(value), 4),
            unit=unit,
            derivation=derivation,
            referenced_coordinates=[where] if where is not None else None,
        )
        for concept, value, unit, derivation in rows
    ]
    return [_background(x, backgrounds[n]) if n in backgrounds else x for n, x in enumerate(out)]


def volumetric_group(
    lesion: Lesion, ctx: GroupContext, seg: hd.seg.Segmentation, segment_number: int
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(lesion.tracking_uid, lesion.tracking_id, ctx.ohif_hydratable),
        referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, segment_number),
        finding_type=ctx.finding,
        finding_sites=_sites(lesion, ctx),
        algorithm_id=ctx.algorithm,
        measurements=volume_measurements(lesion) or None,
    )


def corner_point(where: SliceRef, at: tuple[float, float] = ASSESSMENT_ANCHOR) -> hd.sr.CoordinatesForMeasurement:
    """A POINT at `at` (default `ASSESSMENT_ANCHOR`) on the slice `where`."""
    frames = [where.frame_number] if where.frame_number is not None else None
    return hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POINT,
        graphic_data=np.array([at], dtype=np.float32),
        source_image=hd.sr.SourceImageForRegion(where.sop_class_uid, where.sop_instance_uid, frames),
    )


def statement_region(where: SliceRef) -> hd.sr.ImageRegion:
    """A POINT at `ASSESSMENT_ANCHOR` on the slice `where`, as the Image Region of a TID 1410 group
    that states something without a number ('No lesion', 'Not evaluable', a category alone).

    OHIF 3.12 cannot show an SR with a group that has no coordinate at all: `coords[0]` of that
    measurement is undefined and `_checkIfCanAddMeasurementsToDisplaySet` (cornerstone-dicom-sr
    getSopClassHandlerModule) throws "Cannot read properties of undefined (reading
    'ReferencedSOPSequence')", which its error boundary turns into a blank viewer; an SR with no
    group throws as well (`_getViewportReferencedDisplaySetData`). TID 1501 has no SCOORD of its
    own, so these statements go in a TID 1410 group with this point, the place the viewer opens
    on, not a region the statement is about (tests/viewer/test_ohif.py, deploy/CONFORMANCE.md §3)."""
    frames = [where.frame_number] if where.frame_number is not None else None
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POINT,
        graphic_data=np.array([ASSESSMENT_ANCHOR], dtype=np.float32),
        source_image=hd.sr.SourceImageForRegion(where.sop_class_uid, where.sop_instance_uid, frames),
    )


Statement = hd.sr.MeasurementsAndQualitativeEvaluations | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations


# numbers a criterion computes beyond the sums, by its cut-off (details["cutoff"]) and number name. The
# amino-acid PET ratios each cut-off compares are shown in its group (sr.py `_lesion_anchor`: on the lesion's
# slice) so that OHIF can place the group: a group with no NUM on an image stops OHIF 3.12 drawing the SR.
# There the NUM has its SCOORD as only child (OHIF skips a NUM with more), so the statistic and region are in
# a 99NADIR concept; the lesion groups hold the same ratios as (DCM 126039) with derivation and region.
_L_N_MAX = nc.nadir("RLNMAX", "L/N SUVmax ratio")
CRITERION_NUMBERS: dict[tuple[str, str], tuple[CodedConcept, CodedConcept]] = {
    ("fdg_dual_phase_horky", "index"): (nc.HORKY_INDEX, nc.NO_UNITS),
    ("fdg_dual_phase_horky_wm", "index"): (nc.HORKY_INDEX, nc.NO_UNITS),
    ("fdg_dual_phase_horky", "l_gm_delayed"): (nc.nadir("RLGMMAX", "L/GM SUVmax ratio"), nc.NO_UNITS),
    ("fdopa_cicone_rsuv", "ratio"): (_L_N_MAX, nc.NO_UNITS),
    ("fdopa_lizarraga_ratios", "l_n"): (_L_N_MAX, nc.NO_UNITS),
    ("fdopa_lizarraga_ratios", "l_s"): (nc.nadir("RLSMAX", "L/S SUVmax ratio"), nc.NO_UNITS),
    ("fet_galldiks", "tbr_mean"): (nc.nadir("RTBRMEAN", "TBRmean (L/N SUVmean ratio)"), nc.NO_UNITS),
    ("fet_puranik_twm", "ratio"): (nc.nadir("RTWM", "T/WM ratio (SUVmax / SUVmean)"), nc.NO_UNITS),
}


def criterion_numbers(assessment: Assessment) -> list[tuple[CodedConcept, float | None, CodedConcept]]:
    cutoff = str(assessment.details.get("cutoff", ""))
    return [(concept, assessment.numbers.get(name), unit)
            for (cut, name), (concept, unit) in CRITERION_NUMBERS.items() if cut == cutoff]


Stated = tuple[str, float]  # a NUM's concept code and value


def stated_numbers(group: Statement) -> set[Stated]:
    """The NUMs a group holds, as `assessment_group` compares them."""
    return {(str(i.ConceptNameCodeSequence[0].CodeValue), float(i.MeasuredValueSequence[0].NumericValue))
            for i in group[0].ContentSequence if i.ValueType == "NUM"}


def assessment_group(
    assessment: Assessment, uid: str, ctx: GroupContext, anchor: SliceRef | None, place: SliceRef | None = None,
    stated: Collection[Stated] = (),
) -> Statement:
    """Criterion and category as codes; the numbers as NUMs, each with a POINT SCOORD near
    the top-left corner of the slice `anchor` (`corner_point`).

    OHIF reads a NUM of a group without its own SCOORD through the NUM's SCOORD child
    (conformance §2.2 rule 6), so without an anchor the numbers stay in the text only.
    The anchor is a place to show them, not a region they were measured in: on a
    lesion's calliper OHIF printed them over that lesion's labels. Without a NUM, the
    group is a TID 1410 one with a POINT on `place` (`statement_region`), if given.

    `stated`: the numbers an earlier group under the same tracking UID holds (`stated_numbers`), left
    out: a reader merges the groups of one tracking UID, and OHIF printed a ratio two cut-offs compare
    (the L/N SUVmax ratio of Cicone's and of Lizarraga's) twice beside the lesion.
    """
    evaluations = [
        hd.sr.QualitativeEvaluation(codes.DCM.ResponseEvaluationMethod, nc.criterion_code(assessment.criterion)),
        hd.sr.QualitativeEvaluation(codes.DCM.CurrentResponse, nc.category_code(assessment.category)),
    ]
    if is_proposal(assessment):
        evaluations.append(hd.sr.QualitativeEvaluation(nc.REVIEW_STATUS, nc.TO_CONFIRM))
    evaluations.extend(sr_rano_bm.assessment_evaluations(assessment))
    measurements: list[hd.sr.Measurement] = []
    if anchor is not None:
        k = key_numbers(assessment)
        rows: Sequence[tuple[CodedConcept, float | None, CodedConcept]] = (
            (nc.SUM_OF_DIAMETERS, k.sum, nc.MM),
            (nc.BASELINE_SUM, k.baseline, nc.MM),
            (nc.NADIR_SUM, k.nadir, nc.MM),
            (nc.PCT_VS_BASELINE, k.pct_baseline, nc.PERCENT),
            (nc.PCT_VS_NADIR, k.pct_nadir, nc.PERCENT),
        )
        rows = (*rows, *criterion_numbers(assessment), *sr_rano_bm.volumetric_numbers(assessment))
        for concept, value, unit in rows:
            if value is None or (concept.value, round(float(value), 3)) in stated:
                continue
            measurements.append(
                hd.sr.Measurement(
                    name=concept,
                    value=round(float(value), 3),
                    unit=unit,
                    referenced_coordinates=[corner_point(anchor)],
                )
            )
    label = tracking(uid, f"{assessment.criterion} assessment")
    if not measurements and place is not None:
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=label,
            referenced_region=statement_region(place),
            algorithm_id=ctx.algorithm,
            qualitative_evaluations=evaluations,
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=label,
        algorithm_id=ctx.algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations,
    )


def outcome_group(
    label: str, uid: str, ctx: GroupContext, name: CodedConcept, value: CodedConcept, place: SliceRef | None
) -> Statement:
    """'No lesion', 'Not evaluable', 'No suitable series': one coded statement, no NUM; a TID 1410
    group with a POINT on `place` so that OHIF can show the SR (`statement_region`), TID 1501
    when the study has no image to place it on."""
    evaluations = [hd.sr.QualitativeEvaluation(name, value)]
    if place is not None:
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking(uid, label),
            referenced_region=statement_region(place),
            finding_type=ctx.finding,
            algorithm_id=ctx.algorithm,
            qualitative_evaluations=evaluations,
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(uid, label),
        finding_type=ctx.finding,
        algorithm_id=ctx.algorithm,
        qualitative_evaluations=evaluations,
    )


def study_group(group: StudyMeasurementGroup, uid: str, ctx: GroupContext, anchor: SliceRef,
                row: float) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """Study-level numbers (TMTV, body composition...) as NUMs with private concepts (no PS3.16
    code for most; TLG has one), each with a POINT on `anchor` at (4, row) so that OHIF can
    place them (conformance §2.2 rule 6) without printing over the assessment's numbers."""
    where = corner_point(anchor, (ASSESSMENT_ANCHOR[0], row))
    measurements = [
        hd.sr.Measurement(
            name=STUDY_CONCEPTS.get(m.name) or nc.nadir(private_concept("S", m.name).value, m.meaning[:64]),
            value=round(float(m.value), 4),
            unit=CodedConcept(m.unit, "UCUM", STUDY_UNITS.get(m.unit, m.unit)),
            referenced_coordinates=[where],
        )
        for m in group.items
    ]
    evaluations = None
    if group.assessment is not None:  # one lesion's numbers under its assessment (CT perfusion)
        a = group.assessment
        evaluations = [
            hd.sr.QualitativeEvaluation(codes.DCM.ResponseEvaluationMethod, nc.criterion_code(a.criterion)),
            hd.sr.QualitativeEvaluation(codes.DCM.CurrentResponse, nc.category_code(a.category)),
            *(hd.sr.QualitativeEvaluation(nc.FLAG, nc.flag_code(flag)) for flag in a.flags),
        ]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(group.tracking_uid or uid, group.label),
        algorithm_id=ctx.algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations,
    )
