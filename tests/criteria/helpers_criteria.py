"""Shared bits of the criteria tests: where the worked cases live, the rules, a comparator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# byte-identical copies of ../shared/criteria/*.yaml (test_criteria_fixtures.py keeps them so)
CASES_DIR = REPO_ROOT / "tests" / "fixtures" / "criteria"


def worked_cases() -> list[tuple[str, dict[str, Any]]]:
    """Every case of tests/fixtures/criteria/*.yaml, read from the files themselves."""
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            out.append((f"{path.name}:{case['id']}", case))
    return out


def mismatches(expected: Any, got: Any, path: str = "") -> list[str]:
    """Every place where `got` differs from `expected` (extra keys in `got` are allowed)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r} is not a mapping"]
        out = []
        for key, value in expected.items():
            if key == "note":  # free text in the cases, not a result
                continue
            if key not in got:
                out.append(f"{path}.{key}: missing (expected {value!r})")
            else:
                out += mismatches(value, got[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{path}: {got!r} != {expected!r}"]
        return [m for i, (e, g) in enumerate(zip(expected, got, strict=True)) for m in mismatches(e, g, f"{path}[{i}]")]
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        ok = isinstance(got, int | float) and not isinstance(got, bool) and abs(got - expected) < 1e-9
        return [] if ok else [f"{path}: {got!r} != {expected!r}"]
    return [] if got == expected else [f"{path}: {got!r} != {expected!r}"]
