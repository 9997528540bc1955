"""rules/chun.yaml's proposal section: typed, every threshold an engineering default, groups exclusive."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from daemon.criteria.params import ChunParams
from daemon.criteria.rules import RULES_DIR, RuleSet, load_rules


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def test_proposal_thresholds_load(rules: RuleSet) -> None:
    p = rules.chun.proposal
    assert p.group1.hu_sd_max < p.group3.hu_sd_min
    text = (RULES_DIR / "chun.yaml").read_text()
    section = text[text.index("proposal:"):]
    numbers = [line for line in section.splitlines() if ":" in line and line.split(":")[1].split("#")[0].strip()]
    assert numbers and all("engineering default, not published (chun.md §4)" in line for line in numbers)
    assert "synthetic phantoms only" in text.lower()


def test_groups_1_and_3_cannot_overlap(rules: RuleSet) -> None:
    data = rules.chun.model_dump()
    data["proposal"]["group1"]["hu_sd_max"] = data["proposal"]["group3"]["hu_sd_min"]
    with pytest.raises(ValidationError, match="never both"):
        ChunParams.model_validate(data)


def test_feature_shells_load_and_are_ordered(rules: RuleSet) -> None:
    f = rules.chun.features
    assert (float(f.rim_mm), float(f.interface_mm), tuple(float(v) for v in f.liver_mm)) == (3.0, 9.0, (5.0, 15.0))
    data = rules.chun.model_dump()
    data["features"]["liver_mm"] = (15, 5)
    with pytest.raises(ValidationError, match="from < to"):
        ChunParams.model_validate(data)
