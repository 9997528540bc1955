"""The lesion-follow-up pipeline's segmenter choice (model or the route's rule) and the
whole-body route's PET header checks (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from daemon.criteria.params import PercistRules
from daemon.criteria.rules import RulesSource, load_model
from daemon.demo.dicom import PetDose, SeriesInfo, StudyInfo, series_datasets
from daemon.pipelines import brain_mets, wholebody_fdg
from daemon.pipelines.base import PipelineError, PipelineInput
from daemon.pipelines.lesion_followup import _finder, _Job, parameters
from daemon.pipelines.priors import Request
from daemon.pipelines.wholebody_input import factors

RULES = Path(__file__).resolve().parents[2] / "rules"
REQ = Request("test", "P1", "1.2.3", None, "", 9001)


def _job(route: object, raw: dict[str, object]) -> _Job:
    return _Job(route, parameters("test", raw), PipelineInput("1.2.3", "test", ()))  # type: ignore[arg-type]


def test_a_route_without_a_rule_refuses_the_rule_segmenter() -> None:
    with pytest.raises(PipelineError, match="no rule to find lesions without a model"):
        _finder(_job(brain_mets.ROUTE, {"segmenter": "rule"}), REQ)


def test_the_whole_body_route_finds_by_rule_by_default_and_by_a_named_model_when_asked() -> None:
    assert callable(_finder(_job(wholebody_fdg.ROUTE, {}), REQ))
    with pytest.raises(PipelineError, match="no-such-model"):
        _finder(_job(wholebody_fdg.ROUTE, {"segmenter": "model", "model": "no-such-model"}), REQ)
    with pytest.raises(PipelineError, match="segmenter"):
        parameters("wholebody_fdg", {"segmenter": "threshold"})


def _header(**changes: object) -> object:
    when = datetime(2024, 1, 1, 10, 0)
    dose = PetDose(injected_dose_bq=250e6, injection_time=when)
    series = SeriesInfo("1.2.3.4", "PT", 2, "PET", "1.2.3.5", when + timedelta(minutes=60), pet=dose)
    ds = series_datasets(np.ones((2, 4, 4), dtype=np.float32), np.eye(4), StudyInfo("1.2.3", when), series)[0]
    for key, value in changes.items():
        setattr(ds, key, value)
    return ds


def test_suv_and_sul_from_the_header_with_decay_correction_checked() -> None:
    rules = load_model(PercistRules, RULES / "percist.yaml")
    got = factors(rules, _header(), ("ATTN", "DECY"))  # type: ignore[arg-type]
    assert not isinstance(got, str)
    decayed = 250e6 * 2 ** (-3600 / 6586.2)
    assert got.suv_per_bqml == pytest.approx(72000 / decayed, rel=1e-6)
    lbm = 9270 * 72 / (8780 + 244 * 72 / 1.68**2)  # Janmahasatian, female
    assert got.sul_per_bqml == pytest.approx(got.suv_per_bqml * lbm / 72, rel=1e-6)
    said = factors(rules, _header(DecayCorrection="NONE"), ("ATTN", "DECY"))  # type: ignore[arg-type]
    assert isinstance(said, str) and "DecayCorrection 'NONE' not accepted" in said
    said = factors(rules, _header(PatientSex="O"), ("ATTN", "DECY"))  # type: ignore[arg-type]
    assert isinstance(said, str) and "height or sex" in said
    said = factors(rules, _header(), ("DECY",))  # type: ignore[arg-type]
    assert isinstance(said, str) and "ATTN" in said


def test_the_rules_file_loads_through_the_rules_source() -> None:
    from daemon.pipelines.wholebody_rules import WholeBodyRules

    wb = RulesSource(RULES).load(WholeBodyRules, "wholebody_fdg")
    assert wb.lesion_finder.method == "absolute" and float(wb.lesion_finder.percent_of_max) == 41
