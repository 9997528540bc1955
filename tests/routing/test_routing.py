"""The pure routing decision: match, partial match, none, fallback, stop, order, wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.routing import (
    CALLING_AE,
    NUMBER_OF_INSTANCES,
    AllOf,
    AnyOf,
    AttributeCondition,
    Not,
    Outcome,
    Route,
    Rules,
    SeriesCondition,
    SeriesSummary,
    StudySummary,
    WaitFor,
    decide,
    explain,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def study(*series: SeriesSummary, calling: str = "CT01", last: datetime = NOW) -> StudySummary:
    return StudySummary("1.2.3", {"StudyDescription": ("CHEST ABDO",)}, series, (calling,), last)


def series(uid: str, n: int = 100, **attrs: str | tuple[str, ...]) -> SeriesSummary:
    return SeriesSummary(uid, {k: v if isinstance(v, tuple) else (v,) for k, v in attrs.items()}, n)


CT = series("s1", 200, Modality="CT", SeriesDescription="PV 1mm", SliceThickness="1.0", ImageType=("ORIGINAL", "PRIMARY", "AXIAL"))
T1 = series("s2", 176, Modality="MR", SeriesDescription="T1 MPRAGE GD", ContrastBolusAgent="Gadovist")
FLAIR = series("s3", 40, Modality="MR", SeriesDescription="FLAIR")


def eq(kw: str, v: str) -> AttributeCondition:
    return AttributeCondition(kw, "equals", (v,))


def route(name: str, cond: object = None, **kw: object) -> Route:
    return Route(name=name, pipeline="qa_report", destinations=("pacs",), condition=cond, **kw)  # type: ignore[arg-type]


def outcomes(decision: object) -> dict[str, Outcome]:
    return {r.route.name: r.outcome for r in decision.results}  # type: ignore[attr-defined]


def test_match_records_values_read() -> None:
    cond = AllOf((
        eq("Modality", "CT"),
        SeriesCondition(AllOf((AttributeCondition("SliceThickness", "range", minimum=0.5, maximum=1.5),
                               AttributeCondition("ImageType", "one_of", ("AXIAL",))))),
        AttributeCondition(CALLING_AE, "regex", pattern="CT0[0-9]"),
    ))
    d = decide(study(CT), Rules((route("recist", cond),)), NOW)
    assert [r.route.name for r in d.matching] == ["recist"]
    top = d.results[0].match
    assert top is not None and top.matched
    assert top.children[0].values == ("CT",)
    assert top.children[2].values == ("CT01",)
    per_series = top.children[1].children[0]
    assert per_series.scope == "series 'PV 1mm'"
    assert per_series.children[0].values == ("1.0",)


def test_partial_match_says_which_condition_failed() -> None:
    cond = AllOf((eq("Modality", "MR"), AttributeCondition("ContrastBolusAgent", "present")))
    d = decide(study(FLAIR), Rules((route("rano", cond),)), NOW)
    assert outcomes(d) == {"rano": Outcome.NO_MATCH}
    match = d.results[0].match
    assert match is not None
    assert [c.matched for c in match.children] == [True, False]
    text = "\n".join(explain(d))
    assert "[yes] Modality is 'MR'" in text
    assert "[no ] ContrastBolusAgent is present (read absent)" in text
    assert "no route matches" in text


def test_nothing_matches() -> None:
    d = decide(study(CT), Rules((route("mr-only", eq("Modality", "MR")),)), NOW)
    assert d.matching == () and not d.waiting


def test_fallback_runs_only_when_nothing_else_matched() -> None:
    rules = Rules((
        route("catch-all", None, fallback=True),
        route("ct", eq("Modality", "CT")),
    ))
    beside = decide(study(CT), rules, NOW)
    assert [r.route.name for r in beside.matching] == ["ct"]  # the fallback does not fire beside a match
    assert outcomes(beside)["catch-all"] is Outcome.FALLBACK_NOT_NEEDED
    alone = decide(study(T1), rules, NOW)
    assert [r.route.name for r in alone.matching] == ["catch-all"]


def test_stop_ends_evaluation_and_priority_orders() -> None:
    rules = Rules((
        route("generic", eq("Modality", "MR")),
        route("brain-mets", AnyOf((eq("Modality", "MR"), eq("Modality", "CT"))), priority=10, stop=True),
        route("other", None),
    ))
    d = decide(study(T1), rules, NOW)
    assert [r.route.name for r in d.results] == ["brain-mets", "generic", "other"]
    assert [r.route.name for r in d.matching] == ["brain-mets"]
    assert outcomes(d)["generic"] is Outcome.NOT_EVALUATED
    # a stop route that does not match lets the others run
    d2 = decide(study(CT), Rules((route("mr-stop", eq("Modality", "MR"), stop=True), route("any", None))), NOW)
    assert [r.route.name for r in d2.matching] == ["any"]


def test_not_and_instance_count() -> None:
    cond = AllOf((Not(eq("Modality", "SR")), SeriesCondition(AttributeCondition(NUMBER_OF_INSTANCES, "range", minimum=150))))
    assert decide(study(CT, FLAIR), Rules((route("big", cond),)), NOW).matching
    assert not decide(study(FLAIR), Rules((route("big", cond),)), NOW).matching


def test_wait_for_a_series_then_timeout() -> None:
    needs_t1 = SeriesCondition(AttributeCondition("SeriesDescription", "regex", pattern="(?i).*t1.*gd.*"), name="post-contrast T1")
    r_run = route("rano", eq("Modality", "MR"), wait_for=WaitFor(needs_t1, 600, "run"))
    r_skip = route("rano", eq("Modality", "MR"), wait_for=WaitFor(needs_t1, 600, "skip"))
    early = decide(study(FLAIR, last=NOW), Rules((r_run,)), NOW + timedelta(seconds=10))
    assert early.waiting and early.matching == ()
    assert early.wait_until == NOW + timedelta(seconds=600)
    assert outcomes(early)["rano"] is Outcome.WAITING
    arrived = decide(study(FLAIR, T1, last=NOW), Rules((r_run,)), NOW + timedelta(seconds=10))
    assert [r.route.name for r in arrived.matching] == ["rano"] and not arrived.waiting
    late = decide(study(FLAIR, last=NOW), Rules((r_run,)), NOW + timedelta(seconds=601))
    assert outcomes(late)["rano"] is Outcome.RUN_AFTER_TIMEOUT and late.matching
    skipped = decide(study(FLAIR, last=NOW), Rules((r_skip,)), NOW + timedelta(seconds=601))
    assert outcomes(skipped)["rano"] is Outcome.SKIPPED_AFTER_TIMEOUT and not skipped.matching
    assert "skipped" in "\n".join(explain(skipped))


def test_waiting_route_holds_back_the_fallback() -> None:
    needs = SeriesCondition(eq("Modality", "PT"))
    rules = Rules((route("pet", eq("Modality", "CT"), wait_for=WaitFor(needs, 60)), route("fb", None, fallback=True)))
    d = decide(study(CT), rules, NOW)
    assert d.waiting and outcomes(d)["fb"] is Outcome.FALLBACK_NOT_NEEDED
