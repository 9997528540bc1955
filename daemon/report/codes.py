"""The coded concepts Nadir writes (conformance.md §1), and the private 99NADIR scheme.

Standard codes come from pydicom's PS3.16 tables. Where PS3.16 has no code (overall
response categories, sum of diameters, percent change...), Nadir uses the private
scheme `99NADIR`, declared in CodingSchemeIdentificationSequence of every SR.
"""

from __future__ import annotations

import re

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from daemon.volume import Code

NADIR_SCHEME = "99NADIR"
NADIR_SCHEME_NAME = "Nadir private codes"
NADIR_SCHEME_RESPONSIBLE = "Nadir project"

# dcmjs / OHIF match the meanings "Long Axis" / "Short Axis" exactly (conformance §2.2 rule 3)
LONG_AXIS = CodedConcept("103339001", "SCT", "Long Axis")
SHORT_AXIS = CodedConcept("103340004", "SCT", "Short Axis")
VOLUME = codes.SCT.Volume
MM = CodedConcept("mm", "UCUM", "millimeter")
MM3 = CodedConcept("mm3", "UCUM", "cubic millimeter")
PERCENT = CodedConcept("%", "UCUM", "Percent")
NO_UNITS = CodedConcept("1", "UCUM", "no units")
HU = CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
HU_PER_MM = CodedConcept("[hnsf'U]/mm", "UCUM", "Hounsfield unit per millimeter")
SUV_BW_UNIT = CodedConcept("g/ml{SUVbw}", "UCUM", "Standardized Uptake Value body weight")
SUV_BW = CodedConcept("126401", "DCM", "SUVbw")
# SUL: lean body mass by Janmahasatian, as criteria/suv.py computes it (percist_suv.md)
SUL_JANMA = CodedConcept("126405", "DCM", "SUVlbm(Janma)")
SUL_JANMA_UNIT = CodedConcept("g/ml{SUVlbm(Janma)}", "UCUM", "Standardized Uptake Value lean body mass (Janma)")
MINIMUM = CodedConcept("255605001", "SCT", "Minimum")
ATTENUATION = codes.DCM.AttenuationCoefficient
MEAN = codes.SCT.Mean
MAXIMUM = codes.SCT.Maximum
PEAK = codes.DCM.PeakValueWithinROI
STD_DEV = CodedConcept("386136009", "SCT", "Standard Deviation")
QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
# PET ROI measurements (PS3.16 CID 7466): a lesion / background SUV ratio (DCM 126039). Which background
# is a concept modifier (NCIt C94970) "Reference Region" coded with the region's anatomy (brain PET:
# striatum, white matter, brain, grey matter). Not DCM 126040 "Background for Lesion to Background SUV
# Ratio": in CID 7466 that is a measurement itself (the background's SUV), not a qualifier.
LESION_TO_BACKGROUND = CodedConcept("126039", "DCM", "Lesion to Background SUV Ratio")
REFERENCE_REGION = CodedConcept("C94970", "NCIt", "Reference Region")


def nadir(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value, NADIR_SCHEME, meaning)


SUM_OF_DIAMETERS = nadir("SUMDIAM", "Sum of diameters")
BASELINE_SUM = nadir("BASESUM", "Baseline sum of diameters")
NADIR_SUM = nadir("NADIRSUM", "Nadir sum of diameters")
PCT_VS_BASELINE = nadir("PCTBASE", "Percent change from baseline")
PCT_VS_NADIR = nadir("PCTNADIR", "Percent change from nadir")
ABS_CHANGE = nadir("ABSCHANGE", "Absolute change from nadir")
CRITERION_CITATION = nadir("CITATION", "Criterion citation")
REASON = nadir("REASON", "Reason")
RATIO = nadir("RATIO", "Ratio")
# Horky's dual-phase FDG index (delayed L/GM - early L/GM) / early L/GM: no PS3.16 concept
HORKY_INDEX = nadir("HORKYIDX", "Horky dual-phase FDG index")
FLAG = nadir("FLAG", "Assessment flag")  # e.g. off_label_method, at_threshold (CT perfusion)

# Chun features (liver metastases on portal-venous CT) without a PS3.16 concept: differences
# of mean attenuation between two regions, and the attenuation gradient across an interface.
# (mean and SD attenuation inside the lesion have standard codes: 112031 + derivation)
LESION_TO_LIVER_HU = nadir("ILESLIVERDHU", "Lesion minus liver mean attenuation")
INTERFACE_GRADIENT = nadir("IIFACEGRADHU", "Lesion-liver interface attenuation gradient")
RIM_VS_CORE_HU = nadir("IRIMCOREDHU", "Rim minus core mean attenuation")
RIM_VS_LIVER_HU = nadir("IRIMLIVERDHU", "Rim minus liver mean attenuation")
# the morphologic group an assisting classifier proposes, to be confirmed by a radiologist
CHUN_GROUP = nadir("CHUNGROUP", "Proposed Chun morphologic group")
CHUN_GROUP_CONFIRMED = nadir("CHUNGROUPRAD", "Chun morphologic group, by a radiologist")
CHUN_BASIS = nadir("CHUNBASIS", "Basis of the proposed Chun group")
CHUN_GROUPS: dict[str, CodedConcept] = {g: nadir(f"CHUNG{g}", f"Chun group {g}") for g in ("1", "2", "3")}
REVIEW_STATUS = nadir("REVIEW", "Review status")
# RANO-BM beyond its category: the exploratory volumetric companion (not part of Lin 2015), the
# near-threshold review flag, and the irradiated field (issue 19)
VOLUMETRIC_RESPONSE = nadir("VOLRESP", "Volumetric response (exploratory)")
VOLUME_SUM = nadir("VOLSUM", "Sum of target volumes")
VOLUME_PCT_VS_BASELINE = nadir("VOLPCTBASE", "Volume percent change from baseline")
VOLUME_PCT_VS_NADIR = nadir("VOLPCTNADIR", "Volume percent change from nadir")
NEAR_THRESHOLD = nadir("NEARTHRESH", "Near a threshold, review advised")
IRRADIATED = nadir("IRRADIATED", "Inside an irradiated field")
IRRADIATED_FIELD = nadir("RTFIELD", "Irradiated field: volume, plan, date, dose")
TREATMENT_EFFECT = nadir("TXEFFECT", "Possible treatment effect (radionecrosis not excluded)")
ML = CodedConcept("ml", "UCUM", "milliliter")
TO_CONFIRM = nadir("TOCONFIRM", "Proposed, to be confirmed by a radiologist")
# OHIF 3.x shows the TEXT (DCM,121106,"Comment") of a measurement group as its label
# (cornerstone-dicom-sr getSopClassHandlerModule; @cornerstonejs/adapters COMMENT_CODE)
COMMENT = codes.DCM.Comment

# criterion -> Response Evaluation Method value (CID 6147 where it exists)
CRITERIA: dict[str, CodedConcept] = {
    "RECIST1.1": CodedConcept("126081", "DCM", "RECIST 1.1"),
    "RECIST1.0": CodedConcept("126080", "DCM", "RECIST 1.0"),
    "WHO": CodedConcept("112029", "DCM", "WHO"),
    "RANO": CodedConcept("C114879", "NCIt", "RANO"),
    "RANO-BM": nadir("RANOBM", "RANO-BM"),
    "PERCIST1.0": nadir("PERCIST10", "PERCIST 1.0"),
    "CHUN": nadir("CHUN", "Chun morphologic response"),
    "PERFUSION": nadir("CTPERF", "CT perfusion lesion/liver ratio"),
    "AMINO-PET": nadir("AMINOPET", "Amino-acid PET ratios"),
}

# category -> meaning (English; the text carries the translation)
CATEGORIES: dict[str, str] = {
    "BASELINE": "Baseline",
    "CR": "Complete response",
    "PR": "Partial response",
    "SD": "Stable disease",
    "PD": "Progressive disease",
    "NE": "Not evaluable",
    "CMR": "Complete metabolic response",
    "PMR": "Partial metabolic response",
    "SMD": "Stable metabolic disease",
    "PMD": "Progressive metabolic disease",
    "OPTIMAL": "Optimal morphologic response",
    "INCOMPLETE": "Incomplete morphologic response",
    "NONE": "No morphologic response",
    "PER_LESION": "Per lesion",
    "NO_LESION": "No lesion found",
    "NO_SERIES": "No suitable series",
}

# the engines' own names (daemon.criteria.<engine>.CRITERION) -> their row of CRITERIA
CRITERION_ALIASES: dict[str, str] = {
    "CTPERFUSION": "PERFUSION",  # daemon.criteria.perfusion
    "AMINO-ACIDPET": "AMINO-PET",  # daemon.criteria.amino_pet
}

_SAFE = re.compile(r"[^A-Z0-9]+")
_ALIASES = {"NOT_EVALUABLE": "NE"}  # chun.py's per-lesion "not_evaluable"


def criterion_code(criterion: str) -> CodedConcept:
    key = criterion.strip().upper().replace(" ", "")
    key = CRITERION_ALIASES.get(key, key)
    if key in CRITERIA:
        return CRITERIA[key]
    return nadir(_SAFE.sub("", key)[:16] or "UNKNOWN", criterion[:64])


def category_code(category: str) -> CodedConcept:
    """A 99NADIR code for any response category (known ones with a fixed meaning)."""
    key = _SAFE.sub("_", category.strip().upper()).strip("_") or "UNKNOWN"
    key = _ALIASES.get(key, key)
    meaning = CATEGORIES.get(key, category.replace("_", " ").strip().capitalize() or "Unknown")
    return nadir(key[:16], meaning[:64])


def flag_code(flag: str) -> CodedConcept:
    """A 99NADIR code for an assessment's flag (the meaning is the flag as the engine writes it)."""
    return nadir("F" + (_SAFE.sub("", flag.strip().upper())[:15] or "UNKNOWN"), flag[:64])


def lesion_response_code(criterion: str) -> CodedConcept:
    """Concept of one lesion's response under a per-lesion criterion (e.g. Chun)."""
    key = _SAFE.sub("", criterion.strip().upper())[:12] or "UNKNOWN"
    return nadir(f"{key}RESP", f"{criterion} response of the lesion"[:64])


def as_coded(code: Code) -> CodedConcept:
    return CodedConcept(code.value, code.scheme, code.meaning)


SITES: dict[str, CodedConcept] = {
    "brain": CodedConcept("12738006", "SCT", "Brain"),
    "liver": CodedConcept("10200004", "SCT", "Liver"),
    "lung": CodedConcept("39607008", "SCT", "Lung"),
    "lymph node": CodedConcept("59441001", "SCT", "Lymph Node"),
}


def site_code(site: str, is_node: bool) -> CodedConcept | None:
    if is_node:
        return SITES["lymph node"]
    return SITES.get(site.strip().lower())


def coding_scheme_identification() -> Dataset:
    """One item of CodingSchemeIdentificationSequence declaring 99NADIR."""
    item = Dataset()
    item.CodingSchemeDesignator = NADIR_SCHEME
    item.CodingSchemeName = NADIR_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = NADIR_SCHEME_RESPONSIBLE
    return item
