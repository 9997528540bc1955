"""The shipped routing file sends a brain FDG PET to brain-pet-amino only and a whole-body FDG
PET/CT to wholebody-fdg-percist only (SYNTHETIC phantoms' headers); a route whose pipeline
needs an extra that is not installed fails at rules load, naming the extra."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.demo import brain_pet_phantom as bp
from daemon.demo.patient import write_pet_ct
from daemon.pipelines import params as pipeline_params
from daemon.pipelines.preflight import route_problems
from daemon.routing import Outcome, decide
from daemon.routing_rules import load_rules
from daemon.store.summary import summaries_of_folder

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PET_ROUTES = {"brain-pet-amino", "wholebody-fdg-percist"}


def _matched(repo_root: Path, folder: Path) -> set[str]:
    rules = load_rules(repo_root / "rules" / "routing.yaml", {"pacs"})
    (summary,), _ = summaries_of_folder(folder)
    decision = decide(summary, rules, NOW)
    return {r.route.name for r in decision.results if r.outcome is Outcome.RUN} & PET_ROUTES


def test_brain_fdg_pet_gets_the_brain_route_only(repo_root: Path, tmp_path: Path) -> None:
    study = bp.write_dual_phase_fdg(tmp_path, phases=("delayed",))
    assert _matched(repo_root, study.folder) == {"brain-pet-amino"}


def test_head_and_neck_fdg_is_not_a_brain_pet(repo_root: Path, tmp_path: Path) -> None:
    study = bp.write(tmp_path, "FDG", description="PET-CT FDG head and neck", body_part="HEADNECK")
    assert _matched(repo_root, study.folder) == {"wholebody-fdg-percist"}


def test_wholebody_fdg_pet_ct_gets_the_wholebody_route_only(repo_root: Path, tmp_path: Path) -> None:
    written = write_pet_ct(tmp_path, 0, "small", 2)
    assert _matched(repo_root, written.folder) == {"wholebody-fdg-percist"}


def test_brain_pet_route_without_nilearn_fails_at_check_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ("nilearn", "pet") in pipeline_params.REQUIRED_MODULES["brain_pet"]
    assert not [p for p in route_problems("brain_pet", {}) if "nadir[pet]" in p.message]  # installed here
    monkeypatch.setitem(pipeline_params.REQUIRED_MODULES, "brain_pet", (("nilearn_not_installed_here", "pet"),))
    problems = route_problems("brain_pet", {})
    assert any("nadir[pet]" in p.message and p.loc == ("pipeline",) for p in problems)
