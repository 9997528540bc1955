"""Where a pipeline reads the criteria's rules: the shipped files, overridden key by key by
a site folder (`RulesSource`), whatever folder the routing file is in."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from daemon.config import ConfigError
from daemon.criteria.params import RecistParams
from daemon.criteria.rules import RULES_DIR, RulesSource, criterion_files, rules_source


class _Own(BaseModel):
    """A pipeline's own rules file (not a criterion's)."""

    threshold: float


def test_shipped_files_without_a_site(tmp_path: Path) -> None:
    source = RulesSource()
    assert source.site_file("recist") is None
    assert source.load(RecistParams, "recist") == RulesSource(RULES_DIR).load(RecistParams, "recist")
    source.check("recist")  # a criterion's file, as its parameters
    assert "recist" in criterion_files() and "rano_bm" in criterion_files()
    assert rules_source(tmp_path) == RulesSource(tmp_path)  # a folder alone: no site
    assert rules_source(source) is source


def test_a_site_file_overrides_key_by_key(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "recist.yaml").write_text("max_targets: 4\n")
    source = RulesSource(RULES_DIR, site)
    assert source.site_file("recist") == site / "recist.yaml"
    assert source.site_file("rano_bm") is None  # no file of that name: the shipped one alone
    shipped = RulesSource().load(RecistParams, "recist")
    merged = source.load(RecistParams, "recist")
    assert merged.max_targets == 4 and shipped.max_targets != 4
    assert merged.max_targets_per_organ == shipped.max_targets_per_organ and merged.min_ld_mm == shipped.min_ld_mm  # the keys the site does not set stay shipped


def test_a_missing_site_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="site rules folder does not exist"):
        RulesSource(RULES_DIR, tmp_path / "nowhere").site_file("recist")


def test_a_pipelines_own_file_is_checked_by_its_model_or_as_a_mapping(tmp_path: Path) -> None:
    shipped, site = tmp_path / "shipped", tmp_path / "site"
    shipped.mkdir()
    site.mkdir()
    (shipped / "own.yaml").write_text("threshold: 0.5\n")
    (site / "own.yaml").write_text("threshold: 0.6\n")
    source = RulesSource(shipped, site)
    source.check("own", _Own)
    assert source.load(_Own, "own").threshold == 0.6
    source.check("own")  # no model: a mapping, the shipped file and the site's
    RulesSource(shipped).check("own")  # without a site: the shipped file alone
    (site / "own.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="own.yaml:1: a rules file is a mapping"):
        source.check("own")
    (site / "own.yaml").write_text("threshold: high\n")
    with pytest.raises(ConfigError, match="threshold"):
        source.check("own", _Own)
