"""rules/wholebody_fdg.yaml is validated when the routing file loads, a site folder overrides it
key by key like a criterion's file (the citations then name the override), and the report
cites it."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError
from daemon.criteria.rules import RULES_DIR, RulesSource
from daemon.pipelines.params import rules_model
from daemon.pipelines.preflight import route_problems
from daemon.pipelines.wholebody_finder import cited
from daemon.pipelines.wholebody_rules import WholeBodyRules
from daemon.routing_rules import load_rules

ROUTING = RULES_DIR / "routing.yaml"


def test_the_shipped_file_is_valid_and_checked_as_its_model() -> None:
    assert rules_model("wholebody_fdg") is WholeBodyRules
    assert route_problems("wholebody_fdg", {"segmenter": "rule"}) == []
    shipped = RulesSource().load(WholeBodyRules, "wholebody_fdg")
    assert shipped.lesion_sites.nodal_band_mm == 60 and shipped.lesion_finder.method == "absolute"


def test_a_bad_site_override_fails_the_routing_load_with_file_line_and_route(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "wholebody_fdg.yaml").write_text("# ours\nlesion_finder:\n  method: fourty-one\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(ROUTING, {"pacs"}, site)
    said = str(caught.value)
    assert "route 'wholebody-fdg-percist'" in said
    assert f"{site / 'wholebody_fdg.yaml'}:3: lesion_finder.method" in said
    # the shipped file alone (a misspelt key) is refused too, not only read as a mapping
    bad = tmp_path / "shipped"
    bad.mkdir()
    (bad / "wholebody_fdg.yaml").write_text(
        (RULES_DIR / "wholebody_fdg.yaml").read_text(encoding="utf-8").replace("nodal_band_mm:", "nodal_band:"),
        encoding="utf-8")
    with pytest.raises(ConfigError, match="lesion_sites.nodal_band: unknown key"):
        RulesSource(bad).check("wholebody_fdg", WholeBodyRules)


def test_a_site_override_applies_key_by_key_and_the_report_cites_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "wholebody_fdg.yaml").write_text("lesion_sites:\n  nodal_band_mm: 40\n", encoding="utf-8")
    load_rules(ROUTING, {"pacs"}, site)  # valid: the routing file loads
    rules = RulesSource(RULES_DIR, site).load(WholeBodyRules, "wholebody_fdg")
    shipped = RulesSource().load(WholeBodyRules, "wholebody_fdg")
    assert rules.lesion_sites.nodal_band_mm == 40
    assert rules.lesion_sites.bone_hu_min == shipped.lesion_sites.bone_hu_min
    assert rules.lesion_finder == shipped.lesion_finder
    said = cited(rules)
    assert any(s.startswith("Rules wholebody_fdg.yaml lesion_sites: PERCIST 1.0") and
               f"site overrides, {site / 'wholebody_fdg.yaml'}: lesion_sites.nodal_band_mm=40" in s for s in said)
    assert not any("site overrides" in s for s in cited(shipped))
