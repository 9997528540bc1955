"""Load the criteria's parameter sets from rules/<criterion>.yaml, with site overrides.

The only module of criteria/ that reads files: it runs at the edge (the CLI, a
pipeline's start) and hands the frozen parameter objects to the pure criteria.
A site file has the same layout as the rules file and holds only the keys it
changes; it is merged key by key over the shipped file and the result validated.
Errors name the file, the line and the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from daemon.config import ConfigError, line_of, load_yaml_with_lines
from daemon.criteria.params import (
    AminoPetParams,
    ChunParams,
    PercistRules,
    PerfusionParams,
    PrognosticParams,
    RanoBmParams,
    RecistParams,
)

log = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"

M = TypeVar("M", bound=BaseModel)
Lines = dict[tuple[str | int, ...], int]


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return over


def _read_mapping(path: Path) -> tuple[dict[str, Any], Lines]:
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a rules file is a mapping of keys")
    return data, lines


def load_model(model: type[M], path: Path, site_file: Path | None = None) -> M:
    """Validate `path` (merged with `site_file` when given) as `model`."""
    data, lines = _read_mapping(path)
    site_lines: Lines = {}
    if site_file is not None:
        site, site_lines = _read_mapping(site_file)
        data = _merge(data, site)
        log.info("rules %s: site overrides from %s", path.name, site_file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, lines, site_file, site_lines)) from exc


def _describe(
    exc: ValidationError, path: Path, lines: Lines, site_file: Path | None, site_lines: Lines
) -> str:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        where, table = path, lines
        if site_file is not None and any(loc[:n] in site_lines for n in range(1, len(loc) + 1)):
            where, table = site_file, site_lines
        line = line_of(table, loc)
        place = f"{where}:{line}" if line is not None else f"{where}"
        msg = "unknown key (check the spelling)" if err["type"] == "extra_forbidden" else err["msg"]
        out.append(f"{place}: {key}: {msg}")
    return "\n".join(out)


@dataclass(frozen=True)
class RuleSet:
    """Every criterion's parameters, loaded once and passed down."""

    recist: RecistParams
    rano_bm: RanoBmParams
    percist: PercistRules
    chun: ChunParams
    perfusion: PerfusionParams
    amino_pet: AminoPetParams
    prognostic: PrognosticParams


_FILES: dict[str, type[BaseModel]] = {
    "recist": RecistParams,
    "rano_bm": RanoBmParams,
    "percist": PercistRules,
    "chun": ChunParams,
    "perfusion": PerfusionParams,
    "amino_pet": AminoPetParams,
    "prognostic": PrognosticParams,
}


def load_rules(rules_dir: Path = RULES_DIR, site_dir: Path | None = None) -> RuleSet:
    """Load rules/<criterion>.yaml for every criterion; site_dir/<criterion>.yaml overrides."""
    loaded: dict[str, BaseModel] = {}
    for name, model in _FILES.items():
        site = site_dir / f"{name}.yaml" if site_dir is not None else None
        loaded[name] = load_model(model, rules_dir / f"{name}.yaml", site if site and site.exists() else None)
    return RuleSet(**loaded)  # type: ignore[arg-type]
