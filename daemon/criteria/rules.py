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

from daemon import resources
from daemon.config import ConfigError, error_message, line_of, load_yaml_with_lines
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

RULES_DIR = resources.RULES_DIR

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


def _leaves(data: Any, prefix: str = "") -> list[str]:
    """`key=value` for each value a site file sets, nested keys dotted."""
    if isinstance(data, dict) and data:
        return [leaf for k, v in data.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [f"{prefix[:-1]}={data}"]


def _cite_site(data: dict[str, Any], site: dict[str, Any], site_file: Path) -> dict[str, Any]:
    """`data` with the site's changes appended to the citations they touch (the file's own,
    and that of each section the site file changes), so a report cites what was applied."""
    note = f" [site overrides, {site_file}: {', '.join(_leaves(site))}]"
    out = dict(data)
    for section in (None, *site):
        holder = out if section is None else out.get(section)
        if not isinstance(holder, dict) or not isinstance(holder.get("citation"), dict):
            continue
        citation = dict(holder["citation"])
        citation["text"] = f"{citation.get('text', '')}{note}"
        if section is None:
            out["citation"] = citation
        else:
            out[section] = {**holder, "citation": citation}
    return out


def load_model(model: type[M], path: Path, site_file: Path | None = None) -> M:
    """Validate `path` (merged with `site_file` when given) as `model`.

    A site file's keys override the shipped file's, and the citations they touch say so.
    """
    data, lines = _read_mapping(path)
    site_lines: Lines = {}
    if site_file is not None:
        site, site_lines = _read_mapping(site_file)
        data = _cite_site(_merge(data, site), site, site_file)
        log.debug("rules %s: site overrides from %s", path.name, site_file)
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
        msg = error_message(err, "unknown key (check the spelling)")
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


def criterion_files() -> list[str]:
    """The names of the criteria's rules files, without `.yaml`."""
    return sorted(_FILES)


@dataclass(frozen=True)
class RulesSource:
    """Where a pipeline reads the criteria's rules files: the shipped folder, each file
    overridden key by key by the site folder's file of the same name when there is one
    (as `nadir assess --site`), wherever the routing file lives."""

    shipped: Path = RULES_DIR
    site: Path | None = None

    def site_file(self, name: str) -> Path | None:
        """The site's `<name>.yaml` when the site folder has one; a site folder that does not
        exist is an error (its thresholds would silently not apply)."""
        if self.site is None:
            return None
        if not self.site.is_dir():
            raise ConfigError(f"{self.site}: the site rules folder does not exist")
        path = self.site / f"{name}.yaml"
        return path if path.is_file() else None

    def load(self, model: type[M], name: str) -> M:
        """`<name>.yaml` of the shipped folder, with the site's overrides, as `model`."""
        return load_model(model, self.shipped / f"{name}.yaml", self.site_file(name))

    def check(self, name: str, model: type[BaseModel] | None = None) -> None:
        """Load `<name>.yaml` as its criterion's parameters, or, for a rules file that is not a
        criterion's (a pipeline's own), as `model` when given, else as a mapping; ConfigError
        naming file and line."""
        path, site = self.shipped / f"{name}.yaml", self.site_file(name)
        chosen = _FILES.get(name, model)
        if chosen is not None:
            load_model(chosen, path, site)
            return
        _read_mapping(path)
        if site is not None:
            _read_mapping(site)


def rules_source(rules: Path | RulesSource) -> RulesSource:
    """A folder given alone is read without site overrides."""
    return rules if isinstance(rules, RulesSource) else RulesSource(rules)
