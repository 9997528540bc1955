"""The routing file (`rules/routing.yaml`): schema, loading, and reload without restart.

The YAML is validated with pydantic (`extra="forbid"`), regexes are compiled,
pipelines and named destinations are checked, and so is what each route's job will
need (`daemon.pipelines.preflight`: its parameters, its model and the sha256 of the
model file, the criteria's rules files with the site's overrides); every error names
the file, the line, the route by its name and what is wrong. The result is the pure
`daemon.routing.Rules`.

`RulesHolder` keeps the rules in force: `reload()` (on SIGHUP or when the file
changes) swaps in a valid new file and keeps the old rules when the new one is
invalid, logging why.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydicom.datadict import tag_for_keyword

from daemon import routing as r
from daemon.config import (
    ConfigError,
    dotted,
    format_validation_error,
    line_of,
    load_yaml_with_lines,
)
from daemon.pipelines.base import UnknownPipelineError, check
from daemon.pipelines.preflight import route_problems

log = logging.getLogger(__name__)

Lines = dict[tuple[str | int, ...], int]  # key path -> line in the file

_FORMS = ("attribute", "all", "any", "not", "series")
_OPS = ("equals", "one_of", "regex", "range", "present")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeSpec(_Model):
    min: float | None = None
    max: float | None = None


class ConditionSpec(_Model):
    """One of: an attribute test, all / any / not of conditions, or a series condition."""

    attribute: str | None = Field(None, description="DICOM keyword, CallingAETitle, NumberOfInstances")
    equals: str | int | float | None = None
    one_of: list[str | int | float] | None = None
    regex: str | None = None
    range: RangeSpec | None = None
    present: bool | None = None
    all: list[ConditionSpec] | None = None
    any: list[ConditionSpec] | None = None
    not_: ConditionSpec | None = Field(None, alias="not")
    series: ConditionSpec | None = None
    min_count: int = Field(1, ge=1)
    name: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ConditionSpec:
        forms = [f for f in _FORMS if getattr(self, "not_" if f == "not" else f) is not None]
        if len(forms) != 1:
            raise ValueError(f"a condition has exactly one of {', '.join(_FORMS)} (found: {', '.join(forms) or 'none'})")
        ops = [o for o in _OPS if getattr(self, o) is not None]
        if forms[0] == "attribute":
            if len(ops) != 1:
                raise ValueError(f"an attribute condition has exactly one of {', '.join(_OPS)}")
            if self.attribute not in r.COMPUTED and tag_for_keyword(self.attribute or "") is None:
                raise ValueError(
                    f"attribute {self.attribute!r} is not a DICOM keyword "
                    f"(nor one of {', '.join(sorted(r.COMPUTED))})"
                )
        elif ops:
            raise ValueError(f"{', '.join(ops)} belongs to an attribute condition")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"bad regex {self.regex!r}: {exc}") from exc
        if self.range is not None and self.range.min is None and self.range.max is None:
            raise ValueError("a range needs min, max or both")
        return self

    def to_condition(self) -> r.Condition:
        if self.attribute is not None:
            return self._attribute()
        if self.all is not None:
            return r.AllOf(tuple(c.to_condition() for c in self.all))
        if self.any is not None:
            return r.AnyOf(tuple(c.to_condition() for c in self.any))
        if self.not_ is not None:
            return r.Not(self.not_.to_condition())
        assert self.series is not None
        return r.SeriesCondition(self.series.to_condition(), self.min_count, self.name)

    def _attribute(self) -> r.AttributeCondition:
        kw = self.attribute or ""
        if self.equals is not None:
            return r.AttributeCondition(kw, "equals", (_text(self.equals),))
        if self.one_of is not None:
            return r.AttributeCondition(kw, "one_of", tuple(_text(v) for v in self.one_of))
        if self.regex is not None:
            return r.AttributeCondition(kw, "regex", pattern=self.regex)
        if self.range is not None:
            return r.AttributeCondition(kw, "range", minimum=self.range.min, maximum=self.range.max)
        return r.AttributeCondition(kw, "present", present=bool(self.present))


def _text(v: str | int | float) -> str:
    return v if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)


class InlineDestination(_Model):
    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)

    @property
    def key(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


class WaitSpec(_Model):
    condition: ConditionSpec
    max_wait_seconds: float = Field(gt=0)
    on_timeout: Literal["run", "skip"] = "run"


class RouteSpec(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    pipeline: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    destinations: list[str | InlineDestination] = Field(default_factory=list)
    match: ConditionSpec | None = None
    priority: int = 0
    stop: bool = False
    fallback: bool = False
    wait_for: WaitSpec | None = None
    max_attempts: int | None = Field(None, ge=1)
    # the job queue (executor celery): only `nadir worker --queues` naming it takes its jobs
    queue: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    enabled: bool = True
    # a job that fails for good sends its destinations an SR saying that the automatic
    # analysis failed and the study is to be read without it; false: only the logs say so
    report_failure: bool = True


class RulesFile(_Model):
    version: Literal[1] = 1
    routes: list[RouteSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RulesFile:
        seen: set[str] = set()
        for route in self.routes:
            if route.name in seen:
                raise ValueError(f"two routes are named {route.name!r}")
            seen.add(route.name)
        return self


def _route(spec: RouteSpec) -> r.Route:
    wait = None
    if spec.wait_for is not None:
        wait = r.WaitFor(spec.wait_for.condition.to_condition(), spec.wait_for.max_wait_seconds, spec.wait_for.on_timeout)
    return r.Route(
        name=spec.name,
        pipeline=spec.pipeline,
        destinations=tuple(d if isinstance(d, str) else d.key for d in spec.destinations),
        condition=spec.match.to_condition() if spec.match is not None else None,
        parameters=dict(spec.parameters),
        priority=spec.priority,
        stop=spec.stop,
        fallback=spec.fallback,
        wait_for=wait,
        max_attempts=spec.max_attempts,
        queue=spec.queue,
        report_failure=spec.report_failure,
    )


def _names(data: dict[str, Any]) -> dict[int, str]:
    """Route index -> its name, as written (for messages that name routes, not positions)."""
    routes = data.get("routes")
    if not isinstance(routes, list):
        return {}
    return {i: str(route["name"]) for i, route in enumerate(routes)
            if isinstance(route, dict) and isinstance(route.get("name"), str | int)}


def _route_key(names: dict[int, str]) -> Callable[[tuple[str | int, ...]], str]:
    """An error's location as read: `route 'brain-mets': parameters.model`, not `routes.1...`."""
    def key(loc: tuple[str | int, ...]) -> str:
        if len(loc) < 2 or loc[0] != "routes" or not isinstance(loc[1], int):
            return dotted(loc)
        i = loc[1]
        who = f"route {names[i]!r}" if i in names else f"routes.{i} (a route without a name)"
        return f"{who}: {dotted(loc[2:])}" if len(loc) > 2 else who
    return key


def parse_rules(
    data: Any, path: Path, lines: Lines, destinations: Collection[str], site_dir: Path | None = None
) -> r.Rules:
    """Validate parsed YAML into `Rules`; `destinations` are the names the settings define,
    `site_dir` the site folder of criteria rules files (the node's `criteria.site_dir`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the routing file must be a mapping with 'routes:'")
    key = _route_key(_names(data))
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, lines, key=key)) from exc
    problems: list[str] = []
    for i, route in enumerate(spec.routes):
        problems += _route_problems(route, i, path, lines, destinations, site_dir)
    if problems:
        raise ConfigError("\n".join(problems))
    return r.Rules(tuple(_route(s) for s in spec.routes if s.enabled), source=str(path))


def _route_problems(route: RouteSpec, i: int, path: Path, lines: Lines, destinations: Collection[str],
                    site_dir: Path | None) -> list[str]:
    """One line per problem of the route: `file:line: route 'name': key: what is wrong`."""
    def at(*loc: str | int) -> str:
        return f"{_where(path, lines, ('routes', i, *loc))}: route {route.name!r}" + (f": {dotted(loc)}" if loc else "")

    problems = []
    try:
        check(route.pipeline)
    except UnknownPipelineError as exc:
        problems.append(f"{at('pipeline')}: {exc}")
    else:  # what its jobs will need: parameters, model, criteria rules files
        problems += [f"{at(*p.loc)}: {p.message}" for p in route_problems(route.pipeline, route.parameters, site_dir)]
    for j, dest in enumerate(route.destinations):
        if isinstance(dest, str) and dest not in destinations:
            known = ", ".join(sorted(destinations)) or "none are defined"
            problems.append(f"{at('destinations', j)}: unknown destination {dest!r} (the settings' destinations: {known})")
    if route.fallback and route.stop:
        problems.append(f"{at()}: a fallback route cannot also stop evaluation")
    return problems


def _where(path: Path, lines: Lines, loc: tuple[str | int, ...]) -> str:
    line = line_of(lines, loc)
    return f"{path}:{line}" if line is not None else str(path)


def load_rules(path: Path, destinations: Collection[str], site_dir: Path | None = None) -> r.Rules:
    """Load and validate a routing file; raises ConfigError naming file, line and route."""
    data, lines = load_yaml_with_lines(path)
    return parse_rules(data, path, lines, destinations, site_dir)


class RulesHolder:
    """The rules in force, swapped atomically by `reload()`; thread-safe."""

    def __init__(self, path: Path, destinations: Collection[str], site_dir: Path | None = None) -> None:
        self.path = path
        self._destinations = frozenset(destinations)
        self._site_dir = site_dir
        self._lock = threading.Lock()
        self._rules = load_rules(path, self._destinations, site_dir)  # invalid at start: ConfigError
        self._stamp = self._file_stamp()
        self.last_error: str | None = None

    @property
    def rules(self) -> r.Rules:
        with self._lock:
            return self._rules

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> bool:
        """Load the file again; True when new rules are in force."""
        stamp = self._file_stamp()
        try:
            rules = load_rules(self.path, self._destinations, self._site_dir)
        except ConfigError as exc:
            with self._lock:
                self._stamp = stamp
                self.last_error = str(exc)
            log.error("routing file refused, the previous rules stay in force:\n%s", exc)
            return False
        with self._lock:
            self._rules, self._stamp, self.last_error = rules, stamp, None
        log.info("routing rules reloaded from %s: %d route(s)", self.path, len(rules.routes))
        return True

    def reload_if_changed(self) -> bool:
        if self._file_stamp() == self._stamp:
            return False
        return self.reload()
