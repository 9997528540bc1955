"""Every worked case of tests/fixtures/criteria/*.yaml: category and every expected number.

The cases are read at collection time from the in-repo copies of ../shared/criteria/*.yaml
(test_criteria_fixtures.py checks that they are byte-identical where ../shared is present);
the comparison runs on the JSON object `nadir assess --json` prints for the case.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers_criteria import CASES_DIR, mismatches, worked_cases

from daemon.commands.assess import case_json
from daemon.criteria.casefile import run_case
from daemon.criteria.rules import RuleSet, load_rules

CASES = worked_cases()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def test_the_worked_cases_are_there() -> None:
    assert CASES_DIR.is_dir(), f"the worked cases are expected in {CASES_DIR}"
    assert len(CASES) >= 90


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_worked_case(name: str, case: dict[str, Any], rules: RuleSet) -> None:
    result = run_case(case, rules)
    assert result.error is None, result.error
    got = case_json(result)
    assert got["id"] == case["id"]
    assert not mismatches(case["expected"], got), (name, mismatches(case["expected"], got))
    assert result.assessment is not None and result.assessment.citation.text
