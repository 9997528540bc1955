"""Perfusion, amino-acid PET, Chun, prognostic scores, inputs and exact arithmetic: the branches
the worked cases leave out."""

from __future__ import annotations

from fractions import Fraction

import pytest
from pydantic import ValidationError

from daemon.criteria import amino_pet, chun, perfusion, prognostic
from daemon.criteria.exact import fmt, pct_change, q
from daemon.criteria.inputs import LesionInput, NewLesion, Role, TimepointInput, from_finding
from daemon.criteria.params import Band, ChunParams, Factor, Range
from daemon.criteria.rules import RuleSet, load_rules
from daemon.findings import Calliper, Lesion, LesionKind, Measurements
from daemon.volume import ImagePoint, SliceRef


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def test_perfusion_branches(rules: RuleSet) -> None:
    p = rules.perfusion
    assert perfusion.classify(p, None, 80).category == "not_computable"
    odd = perfusion.classify(p, 200, 80)
    assert odd.flags == ("outside_plausible_range",) and odd.category == "not_major"
    bv = perfusion.classify(p, 8, 20, parameter="BV")
    assert bv.category == "no_cutoff" and not bv.classified and bv.numbers["ratio"] == 0.4
    tlp = perfusion.classify(p, 30, 60, parameter="TLP")
    assert tlp.flags == ("off_label_method",) and tlp.category == "major_response_predicted"
    tlp2 = perfusion.classify(p, 30, 60, parameter="TLP", map_method="max_slope_dual_input")
    assert tlp2.flags == ("off_label_method",)
    slope = perfusion.max_slope(p, 1.2, 300, 0.9, 150, portal_frames=2)
    assert slope.flags == ("off_label_method", "sparse_portal_sampling")
    assert slope.numbers["hpi_percent"] == 40.0
    with pytest.raises(ValueError, match="must be positive"):
        perfusion.max_slope(p, 1.2, 0, 0.9, 150)


def test_amino_pet_branches(rules: RuleSet) -> None:
    a = rules.amino_pet
    wrong_tracer = amino_pet.cicone(a, "FET", "BM", 3.2, 1.6)
    assert wrong_tracer.category == "not_applicable" and "FDOPA PET only" in wrong_tracer.details["reason"]
    assert amino_pet.cicone(a, "FDOPA", "BM", 3.2, 0).category == "not_computable"
    edge = amino_pet.cicone(a, "FDOPA", "BM", 1.595, 1.0)
    assert edge.flags == ("at_threshold",) and edge.category == "progression_favoured"
    only_ttp = amino_pet.galldiks(a, "FET", "GLIOMA", None, 30)
    assert only_ttp.category == "not_evaluable" and only_ttp.lists["missing"] == ("tbr_mean",)
    # the known defect: a static FET scan (no time to peak) was classified by TBR alone while quoting
    # the combined rule's 93 % / 100 %
    static = amino_pet.galldiks(a, "FET", "GLIOMA", 2.4, None)
    assert static.category == "not_evaluable" and not static.evaluable
    assert "ttp_min missing: not evaluable for this rule" in static.reasons[0]
    assert amino_pet.galldiks(a, "FET", "GLIOMA", None, None).category == "not_computable"
    # a site that sets requires_all_inputs: false gets the conditions it can evaluate
    lax_cut = a.cutoffs["fet_galldiks"].model_copy(update={"requires_all_inputs": False})
    lax = a.model_copy(update={"cutoffs": a.cutoffs | {"fet_galldiks": lax_cut}})
    assert amino_pet.galldiks(lax, "FET", "GLIOMA", None, 30).lists["triggered_by"] == ("ttp_lt_45",)
    wm = amino_pet.horky(a, "FDG", "BM", 6.0, 8.0, 7.8, 8.0, reference="white_matter")
    assert wm.details["cutoff"] == "fdg_dual_phase_horky_wm" and wm.category == "recurrence_favoured"
    assert amino_pet.horky(a, "FDG", "BM", 6.0, 0.0, 7.8, 8.0).category == "not_computable"
    with pytest.raises(ValueError, match="lesion_vs_striatum must be one of"):
        amino_pet.visual_score(a, "brighter")
    site = a.model_copy(update={"visual_scale": a.visual_scale.model_copy(update={"positive_min_score": 3})})
    assert amino_pet.visual_score(site, "equal").category == "positive"
    assert amino_pet.visual_score(site, "lower").category == "negative"


def test_chun_needs_a_lesion_and_a_complete_table(rules: RuleSet) -> None:
    with pytest.raises(ValueError, match="at least one lesion"):
        chun.assess([], rules.chun)
    data = rules.chun.model_dump()
    data["transitions"] = list(data["transitions"])[:-1]
    with pytest.raises(ValidationError, match="missing"):
        ChunParams.model_validate(data)
    data = rules.chun.model_dump()
    data["transitions"] = [*data["transitions"], data["transitions"][0]]
    with pytest.raises(ValidationError, match="listed twice"):
        ChunParams.model_validate(data)


def test_prognostic_branches(rules: RuleSet) -> None:
    p = rules.prognostic
    with pytest.raises(ValueError, match="kps: a number is needed"):
        prognostic.points_score(p, "gpa_2008", {"age": 40, "kps": "high", "n_brain_mets": 1,
                                                "extracranial_mets": False})
    with pytest.raises(ValueError, match="age: a number is needed"):
        prognostic.points_score(p, "gpa_2008", {"age": None, "kps": 90, "n_brain_mets": 1,
                                                "extracranial_mets": False})
    with pytest.raises(ValueError, match="kps: a number is needed"):
        prognostic.points_score(p, "bsbm_lorenzoni", {"kps": "NaN", "extracranial_mets": False,
                                                      "primary_controlled": True})
    gap = Factor(bands=(Band(ge=0, le=10, points=1),))
    spec = p.scores["bsbm_lorenzoni"].model_copy(update={"factors": {"kps": gap}})
    gappy = p.model_copy(update={"scores": {"bsbm_lorenzoni": spec}})
    with pytest.raises(ValueError, match="kps: 20 is in no band"):
        prognostic.points_score(gappy, "bsbm_lorenzoni", {"kps": 20})
    other = prognostic.points_score(p, "rpa_yamamoto_class2", {"rpa_class": "I"})
    assert other.category == "not_applicable"
    seed = p.model_copy(update={"rpa_rtog": p.rpa_rtog.model_copy(update={"age_inclusive": True})})
    assert prognostic.rpa(p, 80, 65, True, False).category == "II"
    assert prognostic.rpa(seed, 80, 65, True, False).category == "I"
    nsclc = prognostic.points_score(p, "ds_gpa_lung", {"age": 70, "kps": 60, "n_brain_mets": 5,
                                                       "extracranial_mets": True, "primary": "SCLC"})
    assert nsclc.numbers["median_os_months_seed"] == 2.79 and nsclc.details["class"] == "0-1.0"
    melanoma = prognostic.points_score(p, "ds_gpa_melanoma", {"kps": 100, "n_brain_mets": 1})
    assert melanoma.category == "3.5-4.0"
    no_class = prognostic.points_score(p, "bsbm_lorenzoni", {"kps": 90, "extracranial_mets": False,
                                                             "primary_controlled": False})
    assert no_class.category == "2" and no_class.numbers["score"] == 2.0


def test_params_validators() -> None:
    with pytest.raises(ValidationError, match="low must not exceed high"):
        Range(low=2, high=1)
    with pytest.raises(ValidationError, match="either bands or categories"):
        Factor()
    assert Band(ge=1, points=1).holds(q(1)) and not Band(gt=1, points=1).holds(q(1))  # type: ignore[arg-type]


def test_inputs_helpers() -> None:
    tp = TimepointInput("b", (LesionInput("A"),))
    assert tp.lesion("Z") is None
    assert TimepointInput("f", (LesionInput("N", role=Role.NEW),)).has_new_lesion() is NewLesion.UNEQUIVOCAL
    ref = SliceRef("1.2.3", "1.2.840.10008.5.1.4.1.1.2")
    cal = Calliper(21.5, (0.0, 0.0, 0.0), (21.5, 0.0, 0.0), ImagePoint(ref, 0.0, 0.0), ImagePoint(ref, 43.0, 0.0))
    lesion = Lesion("L1", "2.25.1", LesionKind.NON_TARGET, Measurements(long_axis=cal, volume_ml=3.0,
                                                                        intensity={"suv_max": 7.0}),
                    site="liver")
    got = from_finding(lesion)
    assert (got.long_axis_mm, got.short_axis_mm, got.role, got.uptake["suv_max"]) == (21.5, None,
                                                                                        Role.NON_TARGET, 7.0)


def test_exact_helpers() -> None:
    half = Fraction(1, 2)
    assert q(half) is half
    assert fmt(None) == "undefined"
    assert fmt(Fraction(-1, 1000)) == "0"
    assert pct_change(Fraction(1), Fraction(0)) is None


def test_prognostic_inputs_are_case_insensitive(rules: RuleSet) -> None:
    p = rules.prognostic
    breast = prognostic.points_score(p, "ds_gpa_breast", {"kps": 90, "subtype": "HER2", "age": 70})
    assert breast.numbers["score"] == 3.0
    lung = prognostic.points_score(p, "ds_gpa_lung", {"age": 45, "kps": 90, "n_brain_mets": 1,
                                                      "extracranial_mets": "False", "primary": "nsclc"})
    assert lung.numbers["median_os_months_seed"] == 14.8
    sub = prognostic.points_score(p, "rpa_yamamoto_class2", {"rpa_class": "ii", "kps": 90, "n_brain_mets": 1,
                                                             "primary_controlled": True, "extracranial_mets": False})
    assert sub.details["subclass"] == "II-a"
