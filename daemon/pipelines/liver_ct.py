"""Liver metastases on CT: RECIST 1.1 and the Chun morphologic assessment side by side.

The lesion-follow-up pipeline (daemon.pipelines.lesion_followup, which lists the
steps and the route parameters) configured for the liver: the contrast-enhanced
portal-venous CT series, the demo liver model by default (labels: the liver as an
organ, metastases and lymph nodes as lesions), lesions measured in HU, and:

- RECIST 1.1 (rules/recist.yaml) as the route's criterion: targets chosen at
  baseline (measurable, at most 5 and 2 per organ, largest first; nodes by short
  axis), the same targets followed, new lesions, the overall response;
- per lesion, the Chun features (attenuation, interface sharpness, peripheral rim:
  daemon.measure.chun_features) and a proposed morphologic group (rules/chun.yaml,
  engineering defaults, to be confirmed by the radiologist);
- the Chun response from the baseline's and this study's proposed groups, with the
  regimen warning when the study's header does not mention bevacizumab.

A series that does not show the liver (e.g. a chest-only field of view) gets an SR
saying so.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from daemon.criteria.assessment import Assessment
from daemon.criteria.params import ChunParams
from daemon.criteria.rules import RulesSource
from daemon.findings import Timepoint
from daemon.imaging.selection import SeriesSpec
from daemon.measure.chun_features import lesion_features
from daemon.measure.lesions import MeasuredLesion, MeasureOptions
from daemon.pipelines import lesion_followup
from daemon.pipelines.base import PipelineInput
from daemon.pipelines.lesion_followup import (
    Anatomy,
    FollowUpRoute,
    LesionFeatures,
    Organs,
    StudyFacts,
)
from daemon.pipelines.liver_response import (
    RecistRule,
    bevacizumab_mentioned,
    chun_assessment,
    propose_group,
    shells,
)
from daemon.volume import Code, Volume

LIVER = Code("10200004", "SCT", "Liver")
METASTASIS = Code("14799000", "SCT", "Neoplasm, Metastatic")
DEFAULT_SERIES = SeriesSpec(modality=["CT"], image_type_absent=["LOCALIZER", "DERIVED"], contrast=True,
                            slice_thickness_mm=(0.5, 5.0), orientation="axial", min_slices=20)
# header texts where a regimen would be written (the Chun criteria were validated under bevacizumab)
REGIMEN_KEYWORDS = ("StudyDescription", "RequestedProcedureDescription", "PerformedProcedureStepDescription",
                    "AdditionalPatientHistory", "ReasonForTheRequestedProcedure", "RequestedProcedureComments",
                    "ClinicalTrialTimePointDescription", "ImageComments", "PatientComments")
MIN_LIVER_ML = 100.0  # technical: a field of view showing less liver than this is not an abdominal CT


def chun_features(rules: RulesSource) -> LesionFeatures:
    params = rules.load(ChunParams, "chun")
    where = shells(params)

    def features(image: Volume, organs: Organs, lesion: MeasuredLesion) -> tuple[dict[str, float], dict[str, str]]:
        numbers = lesion_features(image, organs.get("liver"), lesion, where)
        group, basis = propose_group(params, numbers)
        return numbers, {"chun_group": str(group), "chun_basis": basis}

    return features


def regimen_texts(headers: Sequence[Dataset]) -> list[str]:
    return [str(h.get(k, "") or "") for h in headers[:1] for k in REGIMEN_KEYWORDS if h.get(k)]


def chun(facts: StudyFacts, history: Sequence[Timepoint], current: Timepoint) -> tuple[Assessment, ...]:
    # a study that does not say bevacizumab gets the regimen warning (None: nothing said)
    bevacizumab = bool(bevacizumab_mentioned(regimen_texts(facts.headers)))
    found = chun_assessment(facts.rules, history, current, bevacizumab)
    return (found,) if found is not None else ()


ROUTE = FollowUpRoute(
    criterion="RECIST 1.1",
    anatomy=Anatomy(finding=METASTASIS, finding_site=LIVER, site="abdomen", organ_sites=("liver",)),
    default_model="demo-liver-mets",
    default_series=DEFAULT_SERIES,
    no_series="No contrast-enhanced portal-venous CT series suitable for RECIST 1.1.",
    measure=MeasureOptions(quantity="hu"),
    rule=RecistRule,
    features=chun_features,
    feature_sites=("liver",),
    extra=chun,
    required_organ="liver",
    min_organ_ml=MIN_LIVER_ML,
)


def run(inp: PipelineInput) -> list[Dataset]:
    return lesion_followup.run(ROUTE, inp, "liver_ct")
