"""Which routes a study takes, and why: a pure function of a study summary and the rules.

Nothing here reads files, the database or the clock: the caller passes the study's
attributes (`StudySummary`), the rules (`Rules`) and the current time, and gets back a
`Decision` that records, for every route, the outcome of every condition and the
attribute values it read, so `nadir explain` can say it in words.

Order: routes are evaluated by descending `priority`, ties in the order of the file.
A matching route with `stop` ends the evaluation of later routes. A `fallback` route
runs only when no other route matched. A route with `wait_for` holds the study until
its study-level condition is true or `max_wait_seconds` past the study's last
arrival have passed; then it runs or is skipped as its `on_timeout` says.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

# Attributes computed by the node rather than read from a DICOM header.
CALLING_AE = "CallingAETitle"
NUMBER_OF_INSTANCES = "NumberOfInstances"  # of a series (of the study at study level)
NUMBER_OF_SERIES = "NumberOfSeries"
COMPUTED = frozenset({CALLING_AE, NUMBER_OF_INSTANCES, NUMBER_OF_SERIES})

Values = tuple[str, ...]


# --- the study, as routing sees it ---------------------------------------------------


@dataclass(frozen=True)
class SeriesSummary:
    series_instance_uid: str
    attributes: Mapping[str, Values]  # DICOM keyword -> values as strings
    instances: int

    @property
    def label(self) -> str:
        """How explanations name the series: its number and description, else its UID."""
        number = " ".join(self.attributes.get("SeriesNumber", ()))
        desc = " ".join(self.attributes.get("SeriesDescription", ()))
        if number or desc:
            return f"series {number} {desc!r}".replace("  ", " ")
        return f"series {self.series_instance_uid}"


@dataclass(frozen=True)
class StudySummary:
    study_instance_uid: str
    attributes: Mapping[str, Values]
    series: tuple[SeriesSummary, ...]
    calling_aes: Values = ()
    last_received: datetime | None = None
    revision: int = 1

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.series)


def study_values(study: StudySummary, keyword: str) -> Values:
    """Values of `keyword` at study level: the study's own, else every series' (union)."""
    if keyword == CALLING_AE:
        return study.calling_aes
    if keyword == NUMBER_OF_INSTANCES:
        return (str(study.instances),)
    if keyword == NUMBER_OF_SERIES:
        return (str(len(study.series)),)
    own = study.attributes.get(keyword)
    if own:
        return own
    seen: dict[str, None] = {}
    for s in study.series:
        for v in s.attributes.get(keyword, ()):
            seen[v] = None
    return tuple(seen)


def series_values(study: StudySummary, series: SeriesSummary, keyword: str) -> Values:
    """Values of `keyword` for one series, falling back to the study's."""
    if keyword == NUMBER_OF_INSTANCES:
        return (str(series.instances),)
    if keyword in series.attributes:
        return series.attributes[keyword]
    return study_values(study, keyword)


# --- conditions ----------------------------------------------------------------------

Op = Literal["equals", "one_of", "regex", "range", "present"]


@dataclass(frozen=True)
class AttributeCondition:
    """One test on a DICOM keyword; true when any of its values passes."""

    keyword: str
    op: Op
    values: tuple[str, ...] = ()  # equals: 1 value; one_of: several
    pattern: str | None = None  # regex (full match, case-sensitive unless (?i))
    minimum: float | None = None  # range, inclusive
    maximum: float | None = None
    present: bool = True

    def describe(self) -> str:
        if self.op == "equals":
            return f"{self.keyword} is {self.values[0]!r}"
        if self.op == "one_of":
            return f"{self.keyword} is one of {', '.join(repr(v) for v in self.values)}"
        if self.op == "regex":
            return f"{self.keyword} matches /{self.pattern}/"
        if self.op == "range":
            lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
            hi = "+inf" if self.maximum is None else f"{self.maximum:g}"
            return f"{self.keyword} is between {lo} and {hi}"
        return f"{self.keyword} is {'present' if self.present else 'absent'}"

    def test(self, values: Values) -> bool:
        if self.op == "present":
            return any(v != "" for v in values) == self.present
        return any(self._test_one(v) for v in values)

    def _test_one(self, value: str) -> bool:
        if self.op in ("equals", "one_of"):
            return value.strip() in self.values
        if self.op == "regex":
            return re.fullmatch(self.pattern or "", value) is not None
        try:
            number = float(value)
        except ValueError:
            return False
        if self.minimum is not None and number < self.minimum:
            return False
        return self.maximum is None or number <= self.maximum


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class SeriesCondition:
    """True when at least `min_count` series of the study satisfy `condition`."""

    condition: Condition
    min_count: int = 1
    name: str | None = None  # e.g. "post-contrast T1", used in explanations


Condition = AttributeCondition | AllOf | AnyOf | Not | SeriesCondition


@dataclass(frozen=True)
class ConditionResult:
    """The outcome of one condition, the values it read, and its parts."""

    description: str
    matched: bool
    scope: str = "study"  # "study" or "series <uid>"
    keyword: str | None = None
    values: Values = ()
    children: tuple[ConditionResult, ...] = ()


def evaluate(condition: Condition, study: StudySummary, series: SeriesSummary | None = None) -> ConditionResult:
    """Evaluate a condition at study level (series None) or on one series."""
    scope = "study" if series is None else series.label
    if isinstance(condition, AttributeCondition):
        values = (
            study_values(study, condition.keyword)
            if series is None
            else series_values(study, series, condition.keyword)
        )
        return ConditionResult(
            condition.describe(), condition.test(values), scope, condition.keyword, values
        )
    if isinstance(condition, AllOf | AnyOf):
        parts = tuple(evaluate(c, study, series) for c in condition.conditions)
        if isinstance(condition, AllOf):
            return ConditionResult("all of", all(p.matched for p in parts), scope, children=parts)
        return ConditionResult("any of", any(p.matched for p in parts), scope, children=parts)
    if isinstance(condition, Not):
        inner = evaluate(condition.condition, study, series)
        return ConditionResult("not", not inner.matched, scope, children=(inner,))
    parts = tuple(evaluate(condition.condition, study, s) for s in study.series)
    hits = sum(p.matched for p in parts)
    label = f" ({condition.name})" if condition.name else ""
    return ConditionResult(
        f"at least {condition.min_count} series{label} such that",
        hits >= condition.min_count,
        scope,
        values=(f"{hits} of {len(parts)} series",),
        children=parts,
    )


# --- routes and the decision -----------------------------------------------------------


@dataclass(frozen=True)
class WaitFor:
    condition: Condition
    max_wait_seconds: float
    on_timeout: Literal["run", "skip"] = "run"


@dataclass(frozen=True)
class Route:
    name: str
    pipeline: str
    destinations: tuple[str, ...]
    condition: Condition | None = None  # None: every study
    parameters: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    stop: bool = False
    fallback: bool = False
    wait_for: WaitFor | None = None
    max_attempts: int | None = None
    queue: str = "default"  # the job queue a worker consumes (executor celery)
    # a job that fails for good sends the PACS an SR saying so (daemon/report/failure.py)
    report_failure: bool = True


@dataclass(frozen=True)
class Rules:
    routes: tuple[Route, ...]
    source: str = "<rules>"

    def ordered(self) -> tuple[Route, ...]:
        return tuple(sorted(self.routes, key=lambda r: -r.priority))  # stable: file order


class Outcome(enum.Enum):
    RUN = "run"  # matched: a job is created
    NO_MATCH = "no match"
    WAITING = "waiting"  # matched, waiting for its study-level condition
    RUN_AFTER_TIMEOUT = "run after maximum wait"
    SKIPPED_AFTER_TIMEOUT = "skipped after maximum wait"
    NOT_EVALUATED = "not evaluated"  # an earlier route stopped evaluation
    FALLBACK_NOT_NEEDED = "fallback not needed"  # another route matched


RUNS = frozenset({Outcome.RUN, Outcome.RUN_AFTER_TIMEOUT})


@dataclass(frozen=True)
class RouteResult:
    route: Route
    outcome: Outcome
    match: ConditionResult | None = None  # None: not evaluated or no condition
    wait: ConditionResult | None = None
    reason: str = ""

    @property
    def runs(self) -> bool:
        return self.outcome in RUNS


@dataclass(frozen=True)
class Decision:
    study_instance_uid: str
    results: tuple[RouteResult, ...]
    wait_until: datetime | None = None  # set while a route is waiting: decide again then

    @property
    def waiting(self) -> bool:
        return self.wait_until is not None

    @property
    def matching(self) -> tuple[RouteResult, ...]:
        return tuple(r for r in self.results if r.runs)


def _evaluate_route(route: Route, study: StudySummary, now: datetime) -> tuple[RouteResult, datetime | None]:
    match = evaluate(route.condition, study) if route.condition is not None else None
    if match is not None and not match.matched:
        return RouteResult(route, Outcome.NO_MATCH, match, reason="its conditions are not met"), None
    if route.wait_for is None:
        return RouteResult(route, Outcome.RUN, match, reason="its conditions are met"), None
    wait = evaluate(route.wait_for.condition, study)
    if wait.matched:
        return RouteResult(route, Outcome.RUN, match, wait, "its conditions and its wait condition are met"), None
    start = study.last_received or now
    deadline = start + timedelta(seconds=route.wait_for.max_wait_seconds)
    if now < deadline:
        why = f"waiting until {deadline.isoformat()} for its wait condition"
        return RouteResult(route, Outcome.WAITING, match, wait, why), deadline
    waited = f"the wait condition was still false after {route.wait_for.max_wait_seconds:g} s"
    if route.wait_for.on_timeout == "run":
        return RouteResult(route, Outcome.RUN_AFTER_TIMEOUT, match, wait, f"{waited}; run anyway"), None
    return RouteResult(route, Outcome.SKIPPED_AFTER_TIMEOUT, match, wait, f"{waited}; skipped"), None


def decide(study: StudySummary, rules: Rules, now: datetime) -> Decision:
    """Every route's outcome for `study` at time `now`."""
    results: list[RouteResult] = []
    deadlines: list[datetime] = []
    stopped_by: str | None = None
    ordered = rules.ordered()
    for route in (r for r in ordered if not r.fallback):
        if stopped_by is not None:
            results.append(RouteResult(route, Outcome.NOT_EVALUATED, reason=f"route {stopped_by!r} stopped evaluation"))
            continue
        result, deadline = _evaluate_route(route, study, now)
        results.append(result)
        if deadline is not None:
            deadlines.append(deadline)
        if route.stop and (result.runs or result.outcome is Outcome.WAITING):
            stopped_by = route.name
    anything = any(r.runs or r.outcome is Outcome.WAITING for r in results)
    for route in (r for r in ordered if r.fallback):
        if anything:
            results.append(RouteResult(route, Outcome.FALLBACK_NOT_NEEDED, reason="another route matched"))
            continue
        result, deadline = _evaluate_route(route, study, now)
        results.append(result)
        if deadline is not None:
            deadlines.append(deadline)
    return Decision(study.study_instance_uid, tuple(results), min(deadlines) if deadlines else None)


def explain(decision: Decision) -> list[str]:
    """The decision in lines an admin reads."""
    lines = [f"Study {decision.study_instance_uid}:"]
    runs = [r.route.name for r in decision.matching]
    if decision.waiting and decision.wait_until is not None:
        lines.append(f"  not routed yet: a route waits (decide again at {decision.wait_until.isoformat()})")
    elif runs:
        lines.append(f"  runs {len(runs)} route(s): {', '.join(runs)}")
    else:
        lines.append("  no route matches: nothing will run")
    for r in decision.results:
        kind = " (fallback)" if r.route.fallback else ""
        lines.append(f"  route {r.route.name!r}{kind} -> {r.outcome.value}: {r.reason}")
        if r.runs:
            lines.append(f"      pipeline {r.route.pipeline!r}, to {', '.join(r.route.destinations) or 'no destination'}")
        if r.match is None and r.outcome in (Outcome.RUN,) and r.route.condition is None:
            lines.append("      (no conditions: matches every study)")
        if r.match is not None:
            lines.extend(_explain_condition(r.match, 6))
        if r.wait is not None:
            lines.append("      wait for:")
            lines.extend(_explain_condition(r.wait, 8))
    return lines


def _explain_condition(result: ConditionResult, indent: int) -> list[str]:
    mark = "yes" if result.matched else "no "
    pad = " " * indent
    read = ""
    if result.keyword is not None:
        shown = ", ".join(repr(v) for v in result.values) if result.values else "absent"
        read = f" (read {shown}"
        read += f" in {result.scope})" if result.scope != "study" else ")"
    elif result.values:
        read = f" ({', '.join(result.values)})"
    out = [f"{pad}[{mark}] {result.description}{read}"]
    for child in result.children:
        out.extend(_explain_condition(child, indent + 4))
    return out

