"""What a route's job will need, checked when the routing file loads, not when a job runs.

For a built-in pipeline: its parameters (the pipeline's own `Params`, unknown keys
refused), the model it will run (the route's `model`, else the pipeline's default: the
folder exists, its manifest is valid, the ONNX file matches the manifest's sha256 and
this runtime loads it), and the criteria's rules files it will read (the shipped files
with the site's overrides, as the pipeline reads them). A pipeline of a site's own
(`module:function`) checks its own when it runs.

Each problem names where in the route it lies, so `daemon.routing_rules` gives it the
routing file's line and the route's name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon import resources
from daemon.config import ConfigError, error_message
from daemon.criteria.rules import RULES_DIR, RulesSource
from daemon.pipelines import params as pipeline_params
from daemon.pipelines.params import CRITERIA_FILES, DEFAULT_MODELS, PARAMS, model_dir, rules_model

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc  # within the route, e.g. ("parameters", "model") or ("pipeline",)
    message: str


def route_problems(pipeline: str, parameters: Mapping[str, Any], site_dir: Path | None = None) -> list[Problem]:
    """What would make a job of this route fail before it reads a study; [] when nothing."""
    model = PARAMS.get(pipeline)
    if model is None:
        return []
    try:
        params = model.model_validate(dict(parameters))
    except ValidationError as exc:
        top = f"unknown parameter of pipeline {pipeline} (its parameters: {', '.join(model.model_fields)})"
        return [Problem(("parameters", *err["loc"]),
                        error_message(err, top if len(err["loc"]) == 1 else "unknown key (check the spelling)"))
                for err in exc.errors()]
    return (module_problems(pipeline) + _model_problems(pipeline, params) + _criteria_problems(pipeline, params, site_dir)
            + radiomics_problems(params, site_dir))


def module_problems(pipeline: str) -> list[Problem]:
    """The optional packages the pipeline imports that are not installed, naming the extra to install."""
    return [Problem(("pipeline",), f"pipeline {pipeline} needs the Python package {module!r}, not installed: "
                                   f"install the extra nadir[{extra}] (pip install 'nadir[{extra}]')")
            for module, extra in pipeline_params.REQUIRED_MODULES.get(pipeline, ())
            if importlib.util.find_spec(module) is None]


def radiomics_problems(params: BaseModel, site_dir: Path | None = None) -> list[Problem]:
    """A route's `radiomics:`: PyRadiomics installed, and the profile one of rules/radiomics.yaml."""
    asked = getattr(params, "radiomics", None)
    if asked is None:
        return []
    from daemon.measure.radiomics import (  # here: heavy (SimpleITK)
        MISSING_RADIOMICS,
        RadiomicsRules,
    )

    loc: Loc = ("parameters", "radiomics")
    problems = []
    if importlib.util.find_spec("radiomics") is None:
        problems.append(Problem(loc, f"radiomics asked, but {MISSING_RADIOMICS}"))
    route_site = getattr(params, "rules_dir", None)
    try:
        rules = RulesSource(RULES_DIR, route_site if isinstance(route_site, Path) else site_dir).load(
            RadiomicsRules, "radiomics")
    except ConfigError as exc:
        return problems + [Problem(loc, f"radiomics rules: {line}") for line in str(exc).splitlines()]
    profile = getattr(asked, "profile", None)
    if profile is not None and profile not in rules.profiles:
        problems.append(Problem((*loc, "profile"), f"unknown radiomics profile {profile!r} "
                                                   f"(rules/radiomics.yaml has: {', '.join(sorted(rules.profiles))})"))
    return problems


def _model_problems(pipeline: str, params: BaseModel) -> list[Problem]:
    """The route's `model` (else the pipeline's default) and any other `*_model` it names."""
    problems = []
    for key in type(params).model_fields:
        if key != "model" and not key.endswith("_model"):
            continue
        named = getattr(params, key)
        name = named if isinstance(named, str) else DEFAULT_MODELS.get(pipeline) if key == "model" else None
        if name is not None:
            loc: Loc = ("parameters", key) if named else ("pipeline",)
            problems += [Problem(loc, line) for line in model_problems(name)]
    return problems


def model_problems(name: str) -> list[str]:
    """Why the model `name` (a folder under models/, or a path) cannot run; [] when it can."""
    from daemon.segment.manifest import MANIFEST_NAME, load_manifest  # here: heavy (numpy)
    from daemon.segment.runtime import check_model_file  # here: heavy (onnxruntime)

    folder = model_dir(name)
    if not (folder / MANIFEST_NAME).is_file():
        shipped = resources.MODELS_DIR
        known = sorted(p.name for p in shipped.iterdir() if (p / MANIFEST_NAME).is_file()) if shipped.is_dir() else []
        return [f"model {name!r}: no model at {folder} (a folder with {MANIFEST_NAME}; "
                f"{shipped} has: {', '.join(known) or 'none'})"]
    try:
        manifest, lines = load_manifest(folder)
        check_model_file(folder, manifest, lines)
    except ConfigError as exc:  # ModelError: bad manifest, checksum mismatch, IR/opset too new
        return [f"model {name!r}: {line}" for line in str(exc).splitlines()]
    except OSError as exc:
        return [f"model {name!r}: {folder}: cannot read: {exc.strerror or exc}"]
    return []


def _criteria_problems(pipeline: str, params: BaseModel, site_dir: Path | None) -> list[Problem]:
    route_site = getattr(params, "rules_dir", None)
    site = route_site if isinstance(route_site, Path) else site_dir
    loc: Loc = ("parameters", "rules_dir") if route_site is not None else ("pipeline",)
    source = RulesSource(RULES_DIR, site)
    found: dict[str, None] = {}  # ordered, without repeats (a missing site folder is said once)
    for name in CRITERIA_FILES.get(pipeline, ()):
        try:
            source.check(name, rules_model(name))
        except ConfigError as exc:
            found.update((f"criteria rules: {line}", None) for line in str(exc).splitlines())
    return [Problem(loc, message) for message in found]
