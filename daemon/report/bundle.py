"""All report objects of one study and route: SR, SEG, key images (SC) and KOS, and the
RT Structure Set when a destination takes one (`build_report(..., rtstruct=True)`).

Everything goes into the source study; UIDs are derived from the study, route,
software version, object kind, index and revision (conformance §6).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import highdicom as hd
from pydicom.dataset import Dataset

from daemon import __version__
from daemon.config import ReportSettings
from daemon.report import keyimages
from daemon.report.identity import object_identity
from daemon.report.inputs import Outcome, ReportRequest
from daemon.report.kos import build_kos
from daemon.report.rtstruct import build_rtstruct
from daemon.report.sc import ScIdentity, build_scs
from daemon.report.seg import SegResult, build_seg
from daemon.report.sr import SrIdentity, build_sr, device_observer
from daemon.report.text import Impression, render_impression
from daemon.report.uids import series_uid, sop_uid

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ReportObjects:
    sr: hd.sr.ComprehensiveSR
    seg: hd.seg.Segmentation | None
    key_images: tuple[hd.sc.SCImage, ...]
    kos: hd.ko.KeyObjectSelectionDocument
    impression: Impression
    rtstruct: Dataset | None = None

    def datasets(self) -> list[Dataset]:
        """In sending order: SEG (the SR references it), RTSTRUCT, SR, key images, KOS."""
        out: list[Dataset] = []
        if self.seg is not None:
            out.append(self.seg)
        if self.rtstruct is not None:
            out.append(self.rtstruct)
        out.append(self.sr)
        out.extend(self.key_images)
        out.append(self.kos)
        return out


def sr_identity(req: ReportRequest, settings: ReportSettings, version: str) -> SrIdentity:
    base = object_identity(req.study_instance_uid, req.route, "sr", settings.sr, req.revision, settings, version)
    return SrIdentity(**vars(base), ohif_hydratable=settings.ohif_hydratable,
                      volumetric_groups=settings.volumetric_groups,
                      assessment_numbers_on_image=settings.assessment_numbers_on_image)


def _seg(req: ReportRequest, settings: ReportSettings, version: str) -> SegResult | None:
    if req.mask is None or req.outcome != Outcome.MEASURED or not req.timepoint.lesions:
        return None
    study, route = req.study_instance_uid, req.route
    ident = object_identity(study, route, "seg", settings.seg, req.revision, settings, version)
    return build_seg(req.mask, req.timepoint.lesions, req.source_images, ident, req.model, req.reference_regions)


def _rtstruct(req: ReportRequest, settings: ReportSettings, version: str) -> Dataset | None:
    """The lesions' RT Structure Set, when the SEG would have them (a measured study with a mask)."""
    if req.mask is None or req.outcome != Outcome.MEASURED or not req.timepoint.lesions:
        return None
    study, route = req.study_instance_uid, req.route
    ident = object_identity(study, route, "rtstruct", settings.rtstruct, req.revision, settings, version)
    return build_rtstruct(req.mask, req.timepoint.lesions, req.source_images, ident, req.model)


def _long_axis_slices(req: ReportRequest) -> list[Dataset]:
    by_uid = {str(ds.SOPInstanceUID): ds for ds in req.source_images}
    out = []
    for les in req.timepoint.lesions:
        cal = les.measurements.long_axis
        if cal is not None and cal.start_image.slice.sop_instance_uid in by_uid:
            out.append(by_uid[cal.start_image.slice.sop_instance_uid])
    return out


STUDY_ATTRIBUTES = (
    "StudyDescription", "StudyID", "AccessionNumber", "ReferringPhysicianName",
    "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight", "PatientSize",
)


def copy_study_attributes(target: Dataset, source: Dataset) -> None:
    """Patient and study attributes as the source has them (dcentvfy: one study, one story)."""
    for keyword in STUDY_ATTRIBUTES:
        if keyword in source and keyword not in target:
            setattr(target, keyword, source[keyword].value)


def build_report(
    req: ReportRequest, settings: ReportSettings, software_version: str = __version__, rtstruct: bool = False
) -> ReportObjects:
    """The report objects; the RT Structure Set only with `rtstruct` (a destination takes it)."""
    if not req.source_images:
        raise ValueError("a report needs the source study's instances (patient and study)")
    language = req.language or settings.language_for(req.route)
    impression = render_impression(req, language, settings.templates_dir)
    seg = _seg(req, settings, software_version)
    sr_ident = sr_identity(req, settings, software_version)
    sr = build_sr(req, sr_ident, impression, seg)
    study, route = req.study_instance_uid, req.route
    sc_ident = ScIdentity(
        series_instance_uid=series_uid(study, route, "sc", software_version),
        series_number=settings.sc.number,
        series_description=settings.sc.description,
        manufacturer=settings.manufacturer,
        software_version=software_version,
    )
    uids = [sop_uid(study, route, "sc", software_version, i, req.revision) for i in range(1, 100)]
    images = keyimages.key_images(req, impression, settings, software_version, uids)
    scs = tuple(build_scs(images, sc_ident))
    referenced: list[Dataset] = [*scs, *_long_axis_slices(req), sr]
    if seg is not None:
        referenced.append(seg.dataset)
    kos = build_kos(
        referenced,
        impression.line,
        object_identity(study, route, "ko", settings.ko, req.revision, settings, software_version),
        device_observer(sr_ident),
    )
    rt = _rtstruct(req, settings, software_version) if rtstruct else None
    for ds in (sr, kos, *scs, *([seg.dataset] if seg else []), *([rt] if rt is not None else [])):
        copy_study_attributes(ds, req.source_images[0])
    log.info(
        "report built: study %s route %s: %d lesions, %s, %d key images",
        study, route, len(req.timepoint.lesions), req.outcome, len(scs),
    )
    return ReportObjects(sr, seg.dataset if seg else None, scs, kos, impression, rt)

