"""`nadir assess FILE [--json]`: run the response criteria on a file of worked cases.

FILE holds one case, a list of cases or a {cases: [...]} document in the format of
../shared/criteria/*.yaml (YAML or JSON). With --json, one object per case whose keys
mirror the format's `expected` (id, category, timepoints with their numbers, ratio,
flags...) plus reasons and citation; a case with invalid inputs gets an `error` naming
the field and the other cases still run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from daemon.config import ConfigError
from daemon.criteria.assessment import Assessment, TimepointResult
from daemon.criteria.casefile import CaseError, CaseResult, cases_of, run_case
from daemon.criteria.rules import RULES_DIR, load_rules

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="cases file (YAML or JSON)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per case")
    parser.add_argument("--rules", type=Path, default=RULES_DIR, help="rules directory (default: %(default)s)")
    parser.add_argument("--site", type=Path, default=None,
                        help="site rules directory: <criterion>.yaml files overriding some keys")


def places(key: str) -> int:
    """Display precision by the number's unit, as the worked cases print them."""
    k = key.lower()
    if "pct" in k or "percent" in k:
        return 2
    if k.endswith("_bq"):
        return -3
    if k.endswith("_mm"):
        return 1
    if k.endswith(("_ml", "_kg")) or k == "bmi":
        return 2
    return 3


def rounded(key: str, value: float | None) -> float | None:
    return None if value is None else round(value, places(key)) + 0.0


def _numbers(numbers: dict[str, float | None]) -> dict[str, float | None]:
    return {k: rounded(k, v) for k, v in numbers.items()}


def timepoint_json(tp: TimepointResult) -> dict[str, Any]:
    out: dict[str, Any] = {"timepoint": tp.timepoint, "category": tp.category}
    out |= _numbers(tp.numbers)
    out |= tp.details
    out |= tp.checks
    out |= {"flags": list(tp.flags), "nadir_timepoint": tp.nadir_timepoint, "evaluable": tp.evaluable,
            "reasons": list(tp.reasons)}
    return out


def assessment_json(a: Assessment) -> dict[str, Any]:
    out: dict[str, Any] = {"category": a.category if a.classified else None}
    out |= _numbers(a.numbers)
    out |= {name: _numbers(table) for name, table in a.tables.items()}
    out |= {name: list(items) for name, items in a.lists.items()}
    out |= a.details
    if a.timepoints:
        out["timepoints"] = [timepoint_json(tp) for tp in a.timepoints]
    out |= {"flags": list(a.flags), "evaluable": a.evaluable, "reasons": list(a.reasons),
            "citation": {"text": a.citation.text, "doi": a.citation.doi}, "criterion_name": a.criterion}
    return out


def case_json(result: CaseResult) -> dict[str, Any]:
    out: dict[str, Any] = {"id": result.case_id, "criterion": result.criterion}
    if result.assessment is None:
        out["error"] = result.error
    else:
        out |= assessment_json(result.assessment)
    if result.warnings:
        out["warnings"] = list(result.warnings)
    return out


def case_text(result: CaseResult) -> str:
    head = f"{result.case_id or '(no id)'} [{result.criterion or '?'}]"
    if result.assessment is None:
        return f"{head}: ERROR {result.error}"
    a = result.assessment
    lines = [f"{head}: {a.category if a.classified else 'no category (values only)'}"
             + (f"  flags: {', '.join(a.flags)}" if a.flags else "")]
    for tp in a.timepoints:
        nums = ", ".join(f"{k}={rounded(k, v)}" for k, v in tp.numbers.items() if v is not None)
        lines.append(f"  {tp.timepoint}: {tp.category}" + (f" ({nums})" if nums else ""))
        lines += [f"    - {r}" for r in tp.reasons]
    if not a.timepoints:
        nums = ", ".join(f"{k}={rounded(k, v)}" for k, v in a.numbers.items() if v is not None)
        if nums:
            lines.append(f"  {nums}")
        lines += [f"  - {r}" for r in a.reasons]
    lines += [f"  ! {w}" for w in result.warnings]
    lines.append(f"  source: {a.citation.text}")
    return "\n".join(lines)


def load_document(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)


def run(args: argparse.Namespace) -> int:
    try:
        rules = load_rules(args.rules, args.site)
    except ConfigError as exc:
        print(f"rules: {exc}", file=sys.stderr)
        return 2
    try:
        cases = cases_of(load_document(args.file))
    except (OSError, yaml.YAMLError, json.JSONDecodeError, CaseError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    results = [run_case(case, rules) for case in cases]
    if args.json:
        json.dump([case_json(r) for r in results], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(case_text(r) for r in results))
    failed = sum(r.error is not None for r in results)
    log.info("%d cases, %d with invalid inputs", len(results), failed)
    return 1 if failed else 0
