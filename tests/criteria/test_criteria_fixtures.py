"""The worked cases in tests/fixtures/criteria are the project's own copies of
../shared/criteria/*.yaml, so that a clone with nothing beside it runs every test.

Where ../shared/criteria is present (the workspace the specifications are written in),
each copy must be byte-identical to its original and every original must have a copy;
on a fresh clone, where it is absent, the copies are only checked to exist and parse.
This is the one test that reads ../shared.
"""

from __future__ import annotations

import yaml
from helpers_criteria import CASES_DIR, REPO_ROOT

SHARED_CASES_DIR = REPO_ROOT.parent / "shared" / "criteria"
FIXTURES = ("cases.yaml", "cases_b.yaml")


def test_the_fixtures_exist_and_parse() -> None:
    assert sorted(p.name for p in CASES_DIR.glob("*.yaml")) == sorted(FIXTURES)
    for name in FIXTURES:
        cases = yaml.safe_load((CASES_DIR / name).read_text(encoding="utf-8"))["cases"]
        assert cases, f"{name}: no cases"
        assert all({"id", "criterion", "expected"} <= set(case) for case in cases), name


def test_the_fixtures_are_the_shared_files_where_those_are_present() -> None:
    if not SHARED_CASES_DIR.is_dir():  # a fresh clone: the copies are all there is
        assert all((CASES_DIR / name).is_file() for name in FIXTURES)
        return
    originals = sorted(p.name for p in SHARED_CASES_DIR.glob("*.yaml"))
    assert originals == sorted(FIXTURES), (
        f"copy the worked cases of {SHARED_CASES_DIR} into {CASES_DIR} (and list them in FIXTURES)"
    )
    stale = [
        name for name in originals
        if (SHARED_CASES_DIR / name).read_bytes() != (CASES_DIR / name).read_bytes()
    ]
    assert not stale, f"{stale} differ from {SHARED_CASES_DIR}: copy them again into {CASES_DIR}"
