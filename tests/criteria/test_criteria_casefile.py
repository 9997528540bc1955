"""The worked-case reader: every input form it accepts, and errors that name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from daemon.criteria.casefile import CaseError, cases_of, run_case
from daemon.criteria.rules import RuleSet, load_rules


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def recist(fu: dict[str, Any] | None = None, criterion: str = "RECIST1.1") -> dict[str, Any]:
    fu1: dict[str, Any] = {"label": "fu1", "target_mm": {"A": 20, "N": 16}}
    fu1.update(fu or {})
    return {
        "id": "T", "criterion": criterion,
        "inputs": {
            "targets": [{"id": "A", "organ": "liver", "node": False}, {"id": "N", "organ": "node", "node": True}],
            "timepoints": [{"label": "baseline", "target_mm": {"A": 20, "N": 16}}, fu1],
        },
    }


def error_of(case: Any, rules: RuleSet) -> str:
    result = run_case(case, rules)
    assert result.assessment is None
    assert result.error is not None
    return result.error


def with_inputs(case: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(case)
    out["inputs"].update(changes)
    return out


@pytest.mark.parametrize(
    ("fu", "field"),
    [
        ({"target_mm": {"A": "abc", "N": 16}}, "inputs.timepoints[1].target_mm.A: must be a number"),
        ({"target_mm": {"A": True, "N": 16}}, "target_mm.A: must be a number"),
        ({"target_mm": {"A": [[1]], "N": 16}}, "target_mm.A[0]: must be a number"),
        ({"target_mm": {"A": -1, "N": 16}}, "target_mm.A: must be a number >= 0"),
        ({"target_mm": {"A": {"ld": 3, "colour": "red"}, "N": 16}}, "inputs.timepoints[1].target_mm.A.colour: unknown key"),
        ({"target_mm": {"Z": 3}}, "target_mm.Z: not a target"),
        ({"target_mm": [1, 2]}, "target_mm: must be a mapping"),
        ({"target_ml": [1]}, "target_ml: must be a mapping"),
        ({"label": None}, "timepoints[1].label: missing"),
        ({"label": [1]}, "timepoints[1].label: must be text"),
        ({"dexamethasone_mg_day": -2}, "dexamethasone_mg_day: must be >= 0"),
        ({"steroids": "lots"}, "steroids: must be one of none, physiological"),
        ({"nontarget": "maybe"}, "nontarget: must be one of NONE"),
        ({"too_small": 5}, "too_small: must be a list of lesion ids"),
        ({"imaging_done": "yes"}, "imaging_done: must be true or false"),
    ],
)
def test_invalid_timepoint_names_the_field(fu: dict[str, Any], field: str, rules: RuleSet) -> None:
    assert field in error_of(recist(fu), rules)


def test_invalid_case_level_fields(rules: RuleSet) -> None:
    assert "must be a mapping" in error_of("not a case", rules)
    assert error_of({"id": 1, "inputs": {}}, rules) == "criterion: missing"
    assert "unknown criterion 'XYZ'" in error_of(recist(criterion="XYZ"), rules)
    assert error_of({"id": 1, "criterion": "RECIST1.1"}, rules) == "inputs: missing"
    base = recist()
    assert "inputs.targets: must be a list" in error_of(with_inputs(base, targets={"A": 1}), rules)
    assert "inputs.targets[0].id: missing" in error_of(with_inputs(base, targets=[{"organ": "liver"}]), rules)
    dup = [{"id": "A"}, {"id": "A"}]
    assert "lesion ids must be unique" in error_of(with_inputs(base, targets=dup), rules)
    assert "inputs.timepoints: must be a non-empty list" in error_of(with_inputs(base, timepoints=[]), rules)
    assert "inputs.targets[0].node: must be true or false" in error_of(
        with_inputs(base, targets=[{"id": "A", "node": "no"}]), rules)
    # a criterion's own ValueError becomes an error on `inputs`
    assert error_of(with_inputs(recist(criterion="RANO-BM"), targets=[], timepoints=[{"label": "b"}]),
                    rules).startswith("inputs: targets: RANO-BM needs")


def test_value_forms(rules: RuleSet) -> None:
    fu = {
        "target_mm": {"A": "too_small", "N": {"sa": 8, "ld": 12}},
        "too_small": "A",
        "new_lesion": False,
        "clinical": "worse",
        "steroids": "stable",
        "nontarget": "Non-CR/Non-PD",
        "slice_thickness_mm": 3,
        "note": "free text is allowed",
    }
    result = run_case(recist(fu), rules)
    assert result.assessment is not None and result.error is None and not result.warnings
    assert result.assessment.timepoints[1].numbers["sum_mm"] == 13.0  # 5 mm default + node 8
    assert "symptomatic_deterioration" in result.assessment.flags
    frag = run_case(recist({"target_mm": {"A": [12, 10], "N": {"short_axis_mm": 16, "not_assessed": True}}}), rules)
    assert frag.assessment is not None and frag.assessment.category == "NE"
    assert frag.assessment.timepoints[1].numbers["sum_mm"] == 22.0
    ne = run_case(recist({"target_mm": {"A": "NE", "N": {"fragments_mm": [5, 4], "too_small": False}}}), rules)
    assert ne.assessment is not None and ne.assessment.timepoints[1].numbers["sum_mm"] == 9.0
    by_list = run_case(recist({"target_mm": {"N": 16}, "fragments_mm": {"A": [10, 11]}}), rules)
    assert by_list.assessment is not None and by_list.assessment.timepoints[1].numbers["sum_mm"] == 37.0
    missing = run_case(recist({"target_mm": {"N": 16}}), rules)
    assert missing.assessment is not None and missing.assessment.category == "NE"
    small = run_case(recist({"target_mm": {"N": {"too_small": True}}, "too_small": ["A"]}), rules)
    assert small.assessment is not None and small.assessment.timepoints[1].numbers["sum_mm"] == 10.0
    vols = run_case(recist({"target_volume_ml": {"A": 2.0}, "new_lesion": True, "colour": 1}), rules)
    assert vols.assessment is not None and vols.assessment.category == "PD"
    assert vols.warnings == ("inputs.timepoints[1].colour: unknown key ignored",)


def test_numbers_as_text_are_read(rules: RuleSet) -> None:
    result = run_case(recist({"target_mm": {"A": "10", "N": 16}}), rules)
    assert result.assessment is not None and result.assessment.timepoints[1].numbers["sum_mm"] == 26.0


def percist_case(**fu: Any) -> dict[str, Any]:
    tp = {"label": "fu1", "liver_sul_mean": 2.0, "liver_sul_sd": 0.3, "hottest_sulpeak": 5.0}
    tp.update(fu)
    return {"id": "P", "criterion": "PERCIST", "inputs": {"timepoints": [
        {"label": "baseline", "liver_sul_mean": 2.0, "liver_sul_sd": 0.3, "hottest_sulpeak": 8.0}, tp]}}


def test_percist_forms_and_errors(rules: RuleSet) -> None:
    ok = run_case(percist_case(hottest_sulpeak=None, lesions_sulpeak={"L1": 3.0, "L2": 4.0},
                               uptake_time_min=60, tlg=10, liver_abnormal=False), rules)
    assert ok.assessment is not None and ok.assessment.timepoints[1].numbers["hottest_sulpeak"] == 4.0
    assert "lesions_sulpeak: must be a mapping" in error_of(percist_case(lesions_sulpeak=[1]), rules)
    assert "timepoints[1].label: missing" in error_of(percist_case(label=None), rules)
    empty = percist_case()
    empty["inputs"]["timepoints"] = []
    assert "inputs.timepoints: must be a non-empty list" in error_of(empty, rules)


def suv_case(**dicom: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "Units": "BQML", "DecayCorrection": "START", "RadiopharmaceuticalStartTime": "093000",
        "RadionuclideTotalDose": "370000000", "RadionuclideHalfLife": "6586.2", "PatientWeight": "75",
        "SeriesDate": "20240115", "SeriesTime": "103000",
    }
    d.update(dicom)
    return {"id": "S", "criterion": "SUV", "inputs": {"dicom": d, "stored_pixel_value": 1000}}


def test_suv_forms_and_errors(rules: RuleSet) -> None:
    result = run_case(suv_case(), rules)
    a = result.assessment
    assert a is not None and a.numbers["delta_t_s"] == 3600.0 and a.numbers["sul"] is None
    assert a.details["scan_reference"] == "SeriesDateTime" and not a.flags
    ge = run_case(suv_case(AcquisitionDateTimes=["20240115102000"], GEPrivatePostInjectionDateTime="20240115102500",
                           PatientWeight="350"), rules)
    assert ge.assessment is not None and ge.assessment.details["scan_reference"].startswith("GE private")
    assert ge.assessment.flags == ("suv_sanity_warning",)
    assert "AcquisitionDateTimes: must be a list" in error_of(suv_case(AcquisitionDateTimes="x"), rules)
    assert "RadionuclideTotalDose: must be a number, not null" in error_of(suv_case(RadionuclideTotalDose=None), rules)
    cnts = run_case(suv_case(Units="CNTS"), rules).assessment
    assert cnts is not None and cnts.category == "NE" and cnts.details["reason"].startswith("Units 'CNTS'")


def tmtv_case(lesions: Any) -> dict[str, Any]:
    return {"id": "M", "criterion": "TMTV", "inputs": {"voxel_volume_ml": 0.1, "lesions": lesions}}


def test_tmtv_forms_and_errors(rules: RuleSet) -> None:
    ok = run_case(tmtv_case([{"id": "L1", "volume_ml": 2.5, "suv_mean": 5.0}]), rules)
    assert ok.assessment is not None and ok.assessment.numbers["tmtv_ml"] == 2.5
    assert ok.assessment.numbers["dmax_mm"] == 0.0 and ok.assessment.numbers["tlg"] == 12.5
    assert "inputs.lesions: must be a list" in error_of(tmtv_case({"L1": 1}), rules)
    assert "centroid_mm: must be [x, y, z]" in error_of(tmtv_case([{"voxels": 3, "centroid_mm": [1, 2]}]), rules)
    assert "centroid_mm[1]: must be a number" in error_of(tmtv_case([{"voxels": 3, "centroid_mm": [1, None, 2]}]),
                                                          rules)
    assert "needs volume_ml, or voxels" in error_of(tmtv_case([{"id": "L9"}]), rules)


def test_perfusion_all_skips_known_keys(rules: RuleSet) -> None:
    case = {"id": "R", "criterion": "ct_perfusion_ratios_all", "inputs": {
        "map_method": "deconvolution", "BF": {"lesion": 30, "healthy": 60, "unit": "mL/100g/min"},
        "BV": {"lesion": 5, "healthy": 0}}}
    result = run_case(case, rules)
    assert result.assessment is not None
    assert result.assessment.tables["ratios"] == {"BF": 0.5, "BV": None}


def chun_case(**inputs: Any) -> dict[str, Any]:
    return {"id": "C", "criterion": "chun_morphologic", "inputs": inputs}


def test_chun_forms_and_errors(rules: RuleSet) -> None:
    assert "baseline_group: must be an integer group" in error_of(chun_case(baseline_group="x", followup_group=1),
                                                                  rules)
    gone = run_case(chun_case(baseline_group="3", followup_group=None), rules)
    assert gone.assessment is not None and gone.assessment.category == "not_evaluable"
    many = run_case(chun_case(bevacizumab=False, lesions=[
        {"id": "L1", "baseline_group": 3, "followup_group": 1},
        {"id": "L2", "baseline_group": 2, "followup_group": 2, "group_source": "assisting_classifier"}]), rules)
    a = many.assessment
    assert a is not None and a.category == "per_lesion"
    assert [t.category for t in a.timepoints] == ["optimal", "none"]
    assert a.flags == ("proposed_group_unconfirmed", "context_warning")
    assert "baseline_group: must be an integer group" in error_of(chun_case(baseline_group=1.5, followup_group=1),
                                                                  rules)
    assert "inputs.lesions: must be a list" in error_of(chun_case(lesions={"a": 1}), rules)
    assert "inputs.lesions[0].baseline_group: missing" in error_of(chun_case(lesions=[{"followup_group": 1}]), rules)
    assert "group_source: group_source must be one of" in error_of(
        chun_case(baseline_group=3, followup_group=1, group_source="oracle"), rules)


def test_prognostic_errors_name_the_factor(rules: RuleSet) -> None:
    inputs: dict[str, Any] = {"age": 45, "kps": 90, "n_brain_mets": 1}
    case = {"id": "G", "criterion": "gpa_2008", "inputs": inputs}
    assert error_of(case, rules) == "inputs.extracranial_mets: missing (needed by gpa_2008)"
    inputs["extracranial_mets"] = "maybe"
    assert error_of(case, rules).startswith("inputs.extracranial_mets: 'maybe' is not one of")


def test_cases_of_accepts_the_three_layouts() -> None:
    one = {"id": "x"}
    assert cases_of({"cases": [one]}) == [one]
    assert cases_of([one]) == [one]
    assert cases_of(one) == [one]
    with pytest.raises(CaseError, match="cases: must be a list"):
        cases_of({"cases": one})
    with pytest.raises(CaseError, match="must be a case"):
        cases_of("text")
