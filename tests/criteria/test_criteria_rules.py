"""Rules files: validated on load, errors naming file, line and key; a site file changes a result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from daemon.config import ConfigError
from daemon.criteria import recist
from daemon.criteria.inputs import LesionInput, TimepointInput
from daemon.criteria.params import RecistParams
from daemon.criteria.rules import RULES_DIR, load_model, load_rules


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target, ignore=shutil.ignore_patterns("routing.yaml"))
    return target


def test_every_shipped_file_loads_with_a_citation() -> None:
    rules = load_rules()
    assert "Eisenhauer" in rules.recist.citation.text
    assert rules.rano_bm.citation.doi == "10.1016/S1470-2045(15)70057-4"
    assert rules.percist.percist.pmd_inclusive is False
    assert all(c.citation.text for c in rules.amino_pet.cutoffs.values())
    assert all(s.citation.text for s in rules.prognostic.scores.values())


def test_a_site_threshold_changes_the_result(tmp_path: Path) -> None:
    seq = [TimepointInput("b", (LesionInput("A", long_axis_mm=20),)),
           TimepointInput("f", (LesionInput("A", long_axis_mm=24),))]
    assert recist.assess(seq, load_rules().recist).category == "SD"  # +20 % but only +4 mm
    site = tmp_path / "site"
    site.mkdir()
    (site / "recist.yaml").write_text("# our trial protocol\npd_abs_mm: 4\n", encoding="utf-8")
    changed = load_rules(site_dir=site)
    assert changed.recist.pd_abs_mm == 4 and changed.recist.min_ld_mm == 10
    assert recist.assess(seq, changed.recist).category == "PD"


def test_site_file_merges_nested_keys(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rano_bm.yaml").write_text("volumetric:\n  vol_pd_pct: 40\n", encoding="utf-8")
    rules = load_rules(site_dir=site)
    assert rules.rano_bm.volumetric.vol_pd_pct == 40 and rules.rano_bm.volumetric.vol_pr_pct == -65


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "recist.yaml"
    text = path.read_text(encoding="utf-8").replace("pd_abs_mm: 5 ", "pd_abs_mm: -5 ")
    path.write_text(text + "colour: red\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_rules(rules_dir)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("pd_abs_mm"))
    message = str(err.value)
    assert f"{path}:{line}: pd_abs_mm: Input should be greater than or equal to 0" in message
    assert "colour: unknown key" in message


def test_errors_in_a_site_file_name_the_site_file(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("\nmax_targets: many\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{site}:2: max_targets: Input should be a valid integer"):
        load_model(RecistParams, RULES_DIR / "recist.yaml", site)


def test_missing_key_and_bad_layout(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("min_ld_mm: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{bare}: citation: Field required"):
        load_model(RecistParams, bare)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list.yaml:1: a rules file is a mapping"):
        load_model(RecistParams, listed)
