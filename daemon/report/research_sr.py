"""The research SR: radiomics features per lesion (TID 1500), apart from the clinical report.

For research only (radionecrosis versus progression after brain radiosurgery): its own
series (`report.research_sr_series_number`, described as research, not for clinical use),
never read back as a prior (the priors lookup reads the clinical SR's series only), and no
classifier: features and delta-radiomics only (../shared/criteria/radiomics.md section 1).

One group per lesion, tracked by the lesion's own tracking identifier and UID: TID 1411
referencing the lesion's segment of the clinical SEG when there is one, else TID 1501. Each
feature a NUM named by its PyRadiomics name in the private scheme 99PYRADIOMICS; its change
since the prior timepoint the same concept with the derivation (121401) 99NADIR DELTAPRIOR.
The group's algorithm identification (TID 4019) is PyRadiomics, its version, the profile and
the hash of its settings. The statements (research use, profile, delta definition, each
lesion's feature and delta status) are TEXT items of the root's qualitative evaluations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from daemon.findings import Lesion
from daemon.measure.delta_radiomics import LesionDelta, Provenance
from daemon.report import codes as nc
from daemon.report.bundle import copy_study_attributes
from daemon.report.sr import PROCEDURES, SrIdentity, character_set, observation_context, write_in

PYRADIOMICS_SCHEME = "99PYRADIOMICS"
DELTA_PRIOR = nc.nadir("DELTAPRIOR", "Change since the prior timepoint (current - prior)")
RESEARCH_ONLY = ("RESEARCH USE ONLY - not for clinical use: radiomics features per lesion (PyRadiomics), "
                 "exported for research; no classifier applied, no diagnosis.")
_MM = ("Diameter", "AxisLength")


@dataclass(frozen=True)
class ResearchSrRequest:
    study_instance_uid: str
    source_images: tuple[Dataset, ...]
    lesions: tuple[Lesion, ...]  # with Measurements.radiomics
    provenance: Provenance
    profile_source: str  # where the profile's settings come from (rules/radiomics.yaml)
    deltas: Mapping[str, LesionDelta]  # tracking UID -> delta
    feature_status: Mapping[str, str]  # tracking UID -> "computed" / "not computable: why"
    finding: CodedConcept
    seg: Dataset | None = None  # the clinical SEG (its segment_number per lesion)
    previous_versions: tuple[Dataset, ...] = field(default_factory=tuple)


def feature_concept(name: str) -> CodedConcept:
    return CodedConcept(name, PYRADIOMICS_SCHEME, name[:64])


def feature_unit(name: str) -> CodedConcept:
    """UCUM unit of a PyRadiomics feature: shape features in mm, mm2, mm3; others unitless
    (intensities of MRI are arbitrary units, normalised by the profile)."""
    if "_shape_" not in name:
        return nc.NO_UNITS
    if name.endswith("Volume"):
        return nc.MM3
    if name.endswith("SurfaceArea"):
        return CodedConcept("mm2", "UCUM", "square millimeter")
    if name.endswith("SurfaceVolumeRatio"):
        return CodedConcept("/mm", "UCUM", "per millimeter")
    if any(part in name for part in _MM):
        return nc.MM
    return nc.NO_UNITS


def _measurements(lesion: Lesion, delta: LesionDelta | None) -> list[hd.sr.Measurement]:
    out = [hd.sr.Measurement(feature_concept(n), v, feature_unit(n))
           for n, v in sorted(lesion.measurements.radiomics.items())]
    if delta is not None and delta.computable:
        out += [hd.sr.Measurement(feature_concept(n), v, feature_unit(n), derivation=DELTA_PRIOR)
                for n, v in sorted(delta.values.items())]
    return out


def _algorithm(p: Provenance) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification("PyRadiomics", p.version[:64],
                                         [f"profile={p.profile}"[:64], f"settings sha256/16={p.profile_hash}"])


def _group(req: ResearchSrRequest, lesion: Lesion) -> hd.sr.MeasurementsAndQualitativeEvaluations | \
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    tracking = hd.sr.TrackingIdentifier(uid=lesion.tracking_uid, identifier=lesion.tracking_id)
    measurements = _measurements(lesion, req.deltas.get(lesion.tracking_uid)) or None
    algorithm = _algorithm(req.provenance)
    if req.seg is not None and lesion.segment_number is not None:
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, finding_type=req.finding, algorithm_id=algorithm, measurements=measurements,
            referenced_segment=hd.sr.ReferencedSegment.from_segmentation(req.seg, lesion.segment_number))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, finding_type=req.finding, algorithm_id=algorithm, measurements=measurements)


def statements(req: ResearchSrRequest) -> list[str]:
    p = req.provenance
    out = [RESEARCH_ONLY,
           f"Profile {p.profile} (settings sha256/16 {p.profile_hash}), PyRadiomics {p.version}; {req.profile_source}.",
           "Delta-radiomics: current minus prior value of each feature, same lesion (tracking UID), "
           "latest prior timepoint, same profile settings."]
    for les in req.lesions:
        delta = req.deltas.get(les.tracking_uid)
        when = f" vs study of {delta.prior_study_date:%Y-%m-%d}" if delta and delta.prior_study_date else ""
        out.append(f"{les.tracking_id}: features {req.feature_status.get(les.tracking_uid, 'not computable')}; "
                   f"delta {delta.status if delta else 'not computable'}{when}.")
    return out


def _qualitative(req: ResearchSrRequest) -> hd.sr.ContainerContentItem:
    box = hd.sr.ContainerContentItem(name=nc.QUALITATIVE_EVALUATIONS,
                                     relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    box.ContentSequence = hd.sr.ContentSequence(
        [hd.sr.TextContentItem(nc.REASON, text[:1024], contains) for text in statements(req)])
    return box


def scheme_identification() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = PYRADIOMICS_SCHEME
    item.CodingSchemeName = "PyRadiomics feature names"
    item.CodingSchemeResponsibleOrganization = "PyRadiomics (pyradiomics.readthedocs.io)"
    return item


def _procedure(sources: Sequence[Dataset]) -> CodedConcept | Code:
    modality = str(sources[0].get("Modality", "")) if sources else ""
    default: Code = codes.LN.MRIUnspecifiedBodyRegion
    return PROCEDURES.get(modality, default)


def build_research_sr(req: ResearchSrRequest, ident: SrIdentity) -> hd.sr.ComprehensiveSR:
    """The research SR of one study and route (`ident`: its own series, number and description)."""
    if not req.source_images:
        raise ValueError("a research SR needs the source study's instances (patient and study)")
    report = hd.sr.MeasurementReport(
        observation_context=observation_context(ident),
        procedure_reported=_procedure(req.source_images),
        imaging_measurements=[_group(req, les) for les in req.lesions],
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            CodedConcept("en-US", "RFC5646", "English (United States)")),
    )
    root = report[0]
    root.ContentSequence.append(_qualitative(req))
    evidence = [*req.source_images, *([req.seg] if req.seg is not None else [])]
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence, content=root,
        series_instance_uid=ident.series_instance_uid, series_number=ident.series_number,
        sop_instance_uid=ident.sop_instance_uid, instance_number=ident.instance_number,
        manufacturer=ident.manufacturer, is_complete=True, is_final=False, is_verified=False,
        institution_name=ident.institution_name, previous_versions=list(req.previous_versions) or None,
    )
    sr.SeriesDescription = ident.series_description
    sr.ManufacturerModelName = "Nadir"
    sr.SoftwareVersions = ident.software_version
    sr.DeviceSerialNumber = ident.device_serial_number
    write_in(sr, character_set(req.source_images))
    sr.CodingSchemeIdentificationSequence = [nc.coding_scheme_identification(), scheme_identification()]
    copy_study_attributes(sr, req.source_images[0])
    return sr
