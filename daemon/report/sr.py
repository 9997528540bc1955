"""The TID 1500 Imaging Measurement Report (Comprehensive SR) of one study and route."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from daemon.criteria.assessment import Assessment
from daemon.findings import Lesion, LesionKind
from daemon.report import codes as nc
from daemon.report import sr_rano_bm
from daemon.report.identity import ObjectIdentity
from daemon.report.inputs import InstanceRef, ModelInfo, Outcome, ReportRequest
from daemon.report.seg import SegResult
from daemon.report.sr_groups import (
    GroupContext,
    Stated,
    assessment_group,
    criterion_numbers,
    lesion_group,
    outcome_group,
    stated_numbers,
    study_group,
    volumetric_group,
)
from daemon.report.text import Impression
from daemon.report.uids import device_uid, marker_uid
from daemon.volume import SliceRef

log = logging.getLogger(__name__)

LANGUAGE_CODES = {
    "en": CodedConcept("en-US", "RFC5646", "English (United States)"),
    "fr": CodedConcept("fr-FR", "RFC5646", "French (France)"),
}
PROCEDURES: dict[str, CodedConcept | Code] = {
    "MR": codes.LN.MRIUnspecifiedBodyRegion,
    "CT": codes.LN.CTUnspecifiedBodyRegion,
    "PT": CodedConcept("443271005", "SCT", "PET/CT FDG imaging of whole body"),
}
Group = (
    hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
)


@dataclass(frozen=True)
class SrIdentity(ObjectIdentity):
    """An output object's identity (daemon.report.identity) and the SR's options of the report settings."""

    ohif_hydratable: bool = False
    volumetric_groups: bool = False
    assessment_numbers_on_image: bool = True


def segment_source(seg: Dataset, segment_number: int) -> hd.sr.SourceImageForMeasurementGroup:
    """The SEG frames of one segment, as a TID 1501 group's source image."""
    shared = seg.SharedFunctionalGroupsSequence[0].get("SegmentIdentificationSequence")
    frames = [
        n
        for n, item in enumerate(seg.PerFrameFunctionalGroupsSequence, start=1)
        if int((item.get("SegmentIdentificationSequence") or shared)[0].ReferencedSegmentNumber)
        == segment_number
    ]
    return hd.sr.SourceImageForMeasurementGroup(str(seg.SOPClassUID), str(seg.SOPInstanceUID), frames)


def device_observer(ident: SrIdentity) -> hd.sr.ObserverContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(ident.device_serial_number),
        name="Nadir",
        manufacturer_name=ident.manufacturer,
        model_name=f"Nadir {ident.software_version}",
        serial_number=ident.device_serial_number,
    )
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device
    )


def observation_context(ident: SrIdentity) -> hd.sr.ObservationContext:
    return hd.sr.ObservationContext(observer_device_context=device_observer(ident))


def algorithm(model: ModelInfo | None) -> hd.sr.AlgorithmIdentification | None:
    if model is None:
        return None
    return hd.sr.AlgorithmIdentification(
        name=model.name[:64], version=model.version[:64], parameters=[f"sha256={model.sha256}"]
    )


def _anchor(lesions: Sequence[Lesion]) -> SliceRef | None:
    """The slice of the longest current target long axis: OHIF shows the assessment's
    numbers there (the slice the viewer opens on for that group)."""
    axes = [les.measurements.long_axis for les in lesions if les.kind == LesionKind.TARGET]
    present = [a for a in axes if a is not None]
    return max(present, key=lambda a: a.length_mm).start_image.slice if present else None


def _lesion_anchor(extra: Assessment, lesions: Sequence[Lesion]) -> SliceRef | None:
    """The slice of the lesion an extra assessment is about, when the criterion computes a
    number of its own (sr_groups.CRITERION_NUMBERS); None otherwise."""
    if not any(value is not None for _c, value, _u in criterion_numbers(extra)):
        return None
    lesion = next((les for les in lesions if les.tracking_id == extra.details.get("lesion")), None)
    axis = lesion.measurements.long_axis if lesion is not None else None
    return axis.start_image.slice if axis is not None else None


def measurement_groups(
    req: ReportRequest, ident: SrIdentity, seg: SegResult | None
) -> list[Group]:
    finding = nc.as_coded(req.finding) if req.finding else codes.SCT.Neoplasm
    ctx = GroupContext(
        algorithm=algorithm(req.model),
        finding=finding,
        ohif_hydratable=ident.ohif_hydratable,
        volume=req.volume,
        volumetric_groups=ident.volumetric_groups,
        default_site=nc.as_coded(req.finding_site) if req.finding_site else None,
        extra_assessments=req.extra_assessments,
        treatment_effect=sr_rano_bm.treatment_effect_lesions(req.assessment),
    )
    study, route, ver = req.study_instance_uid, req.route, ident.software_version
    # where OHIF shows the groups that state something without a number; only in an SR with no
    # lesion group: PixelMed reads every Measurement Group after a TID 1410 one as TID 1410, so beside
    # lesion groups (TID 1501) a statement stays TID 1501 (conformance: OHIF cannot show that SR)
    place = _place(req) if not req.timepoint.lesions else None
    groups: list[Group] = []
    if req.outcome == Outcome.NO_SUITABLE_SERIES:
        groups.append(
            outcome_group(
                "No suitable series", marker_uid(study, route, ver, "no-series"), ctx,
                codes.DCM.PresenceOfProperty, codes.DCM.PresenceUndetermined, place,
            )
        )
    elif req.outcome == Outcome.ANALYSIS_FAILED:
        groups.append(
            outcome_group(
                "Analysis failed", marker_uid(study, route, ver, "analysis-failed"), ctx,
                codes.DCM.PresenceOfProperty, codes.DCM.PresenceUndetermined, place,
            )
        )
    elif req.outcome == Outcome.NO_LESION or not req.timepoint.lesions:
        groups.append(
            outcome_group(
                "No lesion", marker_uid(study, route, ver, "no-lesion"), ctx,
                codes.DCM.PresenceOfProperty, codes.DCM.Absent, place,
            )
        )
    for lesion in req.timepoint.lesions:
        number = seg.segment_of.get(lesion.tracking_uid) if seg is not None else None
        if seg is None or number is None:
            groups.append(lesion_group(lesion, ctx))
        elif ctx.volumetric_groups:
            groups.append(lesion_group(lesion, ctx))
            groups.append(volumetric_group(lesion, ctx, seg.dataset, number))
        else:
            groups.append(lesion_group(lesion, ctx, segment_source(seg.dataset, number)))
    drawn_uid: str | None = None  # the tracking UID of the main assessment group, if OHIF can place it
    if req.assessment is not None:
        uid = marker_uid(study, route, ver, "assessment")
        anchor = _anchor(req.timepoint.lesions) if ident.assessment_numbers_on_image else None
        main = assessment_group(req.assessment, uid, ctx, anchor, place)
        groups.append(main)
        if any(item.ValueType in ("NUM", "SCOORD") for item in main[0].ContentSequence):
            drawn_uid = uid
    elif req.outcome == Outcome.NOT_EVALUABLE:
        groups.append(
            outcome_group(
                "Not evaluable", marker_uid(study, route, ver, "not-evaluable"), ctx,
                codes.DCM.CurrentResponse, nc.category_code("NE"), place,
            )
        )
    stated: dict[str, set[Stated]] = {}  # the numbers written under each per-lesion tracking UID
    for extra in req.extra_assessments:
        # its own group after the main one (read back as the main: the first); its numbers,
        # if any, stay in the text: on the main group's anchor OHIF would overprint them.
        # Without a NUM it has no SCOORD, and OHIF 3.12 cannot place a group with no
        # coordinate: `measurement.coords[0].ReferencedSOPSequence` throws in
        # cornerstone-dicom-sr getSopClassHandlerModule `_checkIfCanAddMeasurementsToDisplaySet`,
        # and the whole SR draws nothing. So it takes the main assessment group's tracking
        # UID: one study-level assessment, which OHIF (like every TID 1500 reader that merges
        # groups by tracking UID) shows as one measurement at the main group's anchor; each
        # criterion keeps its own group, identifier, method and category.
        code = nc.criterion_code(extra.criterion).value
        where = _lesion_anchor(extra, req.timepoint.lesions) if ident.assessment_numbers_on_image else None
        if where is not None:  # a per-lesion number of its own (Horky's index): on that lesion's slice
            uid = marker_uid(study, route, ver, f"assessment-{code}-{extra.details['lesion']}")
            group = assessment_group(extra, uid, ctx, where, stated=stated.get(uid, set()))
            stated.setdefault(uid, set()).update(stated_numbers(group))
            groups.append(group)
            continue
        uid = drawn_uid or marker_uid(study, route, ver, f"assessment-{code}")
        groups.append(assessment_group(extra, uid, ctx, None, None if drawn_uid else place))
    groups.extend(_study_groups(req, ctx, ident))
    # TID 1500 lists TID 1410 groups before TID 1501 ones, and PixelMed's validator reads them in that
    # order: the statement groups placed for OHIF (sr_groups.statement_region) go first; the others
    # keep their order (OHIF opens on the first measurement: a lesion's, not a reference region's)
    statements = [g for g in groups if _is_statement(g)]
    return statements + [g for g in groups if not _is_statement(g)]


def _is_statement(group: Group) -> bool:
    """A TID 1410 group that states something without a number (sr_groups.statement_region)."""
    return isinstance(group, hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations) and not any(
        item.ValueType == "NUM" for item in group[0].ContentSequence)


def _place(req: ReportRequest) -> SliceRef | None:
    """Where a group without a NUM is put for OHIF (sr_groups.statement_region): the slice of the
    longest target long axis, else the measured series' middle slice, else the first source image
    (the Image Library's, `_library_images`); None when the study has no image."""
    found = _anchor(req.timepoint.lesions)
    if found is None and req.volume is not None and req.volume.slices:
        found = req.volume.slices[len(req.volume.slices) // 2]
    if found is None:
        first = next((ds for ds in req.source_images if "Rows" in ds), None)
        if first is not None:
            frame = 1 if int(first.get("NumberOfFrames", 1) or 1) > 1 else None
            found = SliceRef(str(first.SOPInstanceUID), str(first.SOPClassUID), frame)
    return found


def _free_slice(req: ReportRequest) -> SliceRef | None:
    """The measured series' slice nearest its middle on which no lesion's calliper is drawn: OHIF
    prints a group's labels beside its anchor, and on a small image (a 64-row PET) long
    study-level labels would cover the lesions' labels of their slice."""
    if req.volume is None or not req.volume.slices:
        return None
    taken = {cal.start_image.slice.sop_instance_uid for les in req.timepoint.lesions
             for cal in (les.measurements.long_axis, les.measurements.short_axis) if cal is not None}
    slices = req.volume.slices
    middle = len(slices) // 2
    order = sorted(range(len(slices)), key=lambda k: abs(k - middle))
    return next((slices[k] for k in order if slices[k].sop_instance_uid not in taken), slices[middle])


def _study_groups(req: ReportRequest, ctx: GroupContext, ident: SrIdentity) -> list[Group]:
    """Study-level measurements (e.g. TMTV, body composition), a group each: plain numbers on a
    slice without lesion labels (`_free_slice`); one lesion's numbers under its assessment (CT
    perfusion) on the main assessment's slice (else the middle slice) below its numbers."""
    assessed = _anchor(req.timepoint.lesions)
    if assessed is None and req.volume is not None:
        assessed = req.volume.slices[len(req.volume.slices) // 2]
    free = _free_slice(req) or assessed
    if assessed is None or free is None:
        return []
    study, route, ver = req.study_instance_uid, req.route, ident.software_version
    shown = [g for g in req.study_measurements if g.items or g.assessment is not None]
    # 40 rows apart below the assessment's numbers; closer on a small image (a 64-row PET), all
    # in its upper half, so that every anchor and the labels OHIF prints below it stay on the image
    rows = float(req.volume.shape[1]) if req.volume is not None else 512.0
    step = min(40.0, rows / 2.0 / max(len(shown), 1))
    return [study_group(g, marker_uid(study, route, ver, f"study-{g.label}"), ctx,
                        assessed if g.assessment is not None else free, step * (n + 1))
            for n, g in enumerate(shown)]


def qualitative_evaluations(req: ReportRequest, impression: Impression) -> hd.sr.ContainerContentItem:
    """TID 1500 row 12: the impression text, the category and the criterion's citation."""
    box = hd.sr.ContainerContentItem(
        name=nc.QUALITATIVE_EVALUATIONS, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    items: list[hd.sr.ContentItem] = []
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    a = req.assessment
    if a is not None:
        items.append(hd.sr.CodeContentItem(codes.DCM.CurrentResponse, nc.category_code(a.category), contains))
        items.append(hd.sr.TextContentItem(nc.CRITERION_CITATION, _cut(a.citation.text), contains))
    items.append(hd.sr.TextContentItem(codes.DCM.Impression, _cut(impression.line), contains))
    reasons = list(a.reasons) if a is not None else ([req.reason] if req.reason else [])
    worded = impression.reasons  # the template's sentences (brain PET in French) in place of the criteria's own
    for reason in worded or reasons:
        items.append(hd.sr.TextContentItem(nc.REASON, _cut(reason), contains))
    for x in req.extra_assessments:
        items.append(hd.sr.TextContentItem(nc.CRITERION_CITATION, _cut(f"{x.criterion}: {x.citation.text}"), contains))
        for reason in () if worded else x.reasons:
            items.append(hd.sr.TextContentItem(nc.REASON, _cut(f"{x.criterion}: {reason}"), contains))
    for g in () if worded else req.study_measurements:
        said = "; ".join(f"{m.meaning} {m.value:.4g} {m.unit}" for m in g.items)
        items.append(hd.sr.TextContentItem(nc.REASON, _cut(f"{g.label}: {said}. {g.basis}"), contains))
    box.ContentSequence = hd.sr.ContentSequence(items)
    return box


def _cut(text: str) -> str:
    return text[:1024] if len(text) > 1024 else text  # UT would allow more; viewers show less


def prior_evidence(refs: Sequence[InstanceRef]) -> list[Dataset]:
    out = []
    for r in refs:
        ds = Dataset()
        ds.StudyInstanceUID = r.study_instance_uid
        ds.SeriesInstanceUID = r.series_instance_uid
        ds.SOPClassUID = r.sop_class_uid
        ds.SOPInstanceUID = r.sop_instance_uid
        out.append(ds)
    return out


def _library_images(req: ReportRequest) -> list[Dataset]:
    """Every source image the groups point at (Image Library; OHIF needs it)."""
    wanted: set[str] = set()
    for les in req.timepoint.lesions:
        for cal in (les.measurements.long_axis, les.measurements.short_axis):
            if cal is not None:
                wanted.add(cal.start_image.slice.sop_instance_uid)
    if req.study_measurements and req.volume is not None and req.volume.slices:  # their anchors (_study_groups)
        middle = req.volume.slices[len(req.volume.slices) // 2]
        for where in (_free_slice(req), _anchor(req.timepoint.lesions) or middle):
            if where is not None:
                wanted.add(where.sop_instance_uid)
    place = _place(req)
    if place is not None:
        wanted.add(place.sop_instance_uid)
    images = [ds for ds in req.source_images if str(ds.SOPInstanceUID) in wanted]
    if not images:
        images = [ds for ds in req.source_images if "Rows" in ds][:1]
    return images


def build_sr(
    req: ReportRequest, ident: SrIdentity, impression: Impression, seg: SegResult | None
) -> hd.sr.ComprehensiveSR:
    report = hd.sr.MeasurementReport(
        observation_context=observation_context(ident),
        procedure_reported=_procedure(req),
        imaging_measurements=measurement_groups(req, ident, seg),
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            LANGUAGE_CODES[impression.language]
        ),
        referenced_images=_library_images(req) or None,
    )
    root = report[0]
    root.ContentSequence.append(qualitative_evaluations(req, impression))
    evidence = list(req.source_images)
    if seg is not None:
        evidence.append(seg.dataset)
    for prior in req.priors:
        evidence.extend(prior_evidence(prior.instances))
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=root,
        series_instance_uid=ident.series_instance_uid,
        series_number=ident.series_number,
        sop_instance_uid=ident.sop_instance_uid,
        instance_number=ident.instance_number,
        manufacturer=ident.manufacturer,
        is_complete=req.outcome not in (Outcome.NO_SUITABLE_SERIES, Outcome.ANALYSIS_FAILED),
        is_final=False,
        is_verified=False,
        institution_name=ident.institution_name,
        previous_versions=list(req.previous_versions) or None,
    )
    sr.SeriesDescription = ident.series_description
    sr.ManufacturerModelName = "Nadir"
    sr.SoftwareVersions = ident.software_version
    sr.DeviceSerialNumber = ident.device_serial_number
    write_in(sr, character_set(req.source_images))
    sr.CodingSchemeIdentificationSequence = [nc.coding_scheme_identification()]
    return sr


_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "PN", "UC"})
# typographic characters of our texts (and of criteria's reasons) that Latin-1 lacks
_LATIN1_FOLD = str.maketrans({
    "\u2014": "-", "\u2013": "-", "\u2212": "-", "\u2192": "->", "\u2190": "<-", "\u2265": ">=",
    "\u2264": "<=", "\u2026": "...", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
})


def latin1_text(text: str) -> str:
    """`text` with what Latin-1 cannot write folded ("proposed — confirm" -> "proposed - confirm")."""
    folded = text.translate(_LATIN1_FOLD)
    return folded.encode("latin-1", errors="replace").decode("latin-1")


def write_in(ds: Dataset, charset: str) -> None:
    """Set `ds`'s Specific Character Set; in Latin-1, fold every text value Latin-1 cannot hold
    (nested sequences included), so that writing never has to substitute characters."""
    ds.SpecificCharacterSet = charset
    if charset != "ISO_IR 100":
        return
    for elem in ds.iterall():
        if elem.VR not in _TEXT_VRS or not isinstance(elem.value, str):
            continue
        try:
            elem.value.encode("latin-1")
        except UnicodeEncodeError:
            elem.value = latin1_text(elem.value)


def character_set(sources: Sequence[Dataset]) -> str:
    """Latin-1 covers English and French (and dcmtk checks it); keep a source's UTF-8."""
    source = str(sources[0].get("SpecificCharacterSet", "")) if sources else ""
    return "ISO_IR 192" if source == "ISO_IR 192" else "ISO_IR 100"


def _procedure(req: ReportRequest) -> CodedConcept | Code:
    if req.procedure is not None:
        return nc.as_coded(req.procedure)
    modality = req.volume.modality if req.volume is not None else ""
    if not modality and req.source_images:
        modality = str(req.source_images[0].get("Modality", ""))
    default: Code = codes.LN.MRIUnspecifiedBodyRegion
    return PROCEDURES.get(modality, default)
