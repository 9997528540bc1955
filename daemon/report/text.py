"""The impression as text (Jinja2 templates, English or French); the SR carries the same text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from daemon import __version__
from daemon.criteria.assessment import Assessment, TimepointResult
from daemon.findings import Lesion, LesionKind
from daemon.report.amino_text import amino_context
from daemon.report.inputs import Outcome, ReportRequest
from daemon.report.percist_text import percist_context
from daemon.report.response_text import response_context

LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class Impression:
    language: str
    line: str  # the one-line impression (KOS description, SR, summary page)
    details: str  # criterion with citation, reasons, flags, comparisons, disclaimer
    # the SR's reasons as the template words them (brain PET in French), in place of the criteria's own
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyNumbers:
    """The numbers a radiologist reads first; None when they do not apply."""

    sum: float | None = None
    baseline: float | None = None
    nadir: float | None = None
    pct_baseline: float | None = None
    pct_nadir: float | None = None
    nadir_when: str | None = None


def key_numbers(assessment: Assessment | None) -> KeyNumbers:
    if assessment is None:
        return KeyNumbers()
    latest: TimepointResult | None = assessment.timepoints[-1] if assessment.timepoints else None
    nums: dict[str, float | None] = dict(assessment.numbers)
    if latest is not None:
        nums.update(latest.numbers)
    baseline = nums.get("baseline_mm")
    if baseline is None and assessment.timepoints:
        baseline = assessment.timepoints[0].numbers.get("sum_mm")
    return KeyNumbers(
        sum=nums.get("sum_mm"),
        baseline=baseline,
        nadir=nums.get("nadir_mm"),
        pct_baseline=nums.get("pct_vs_baseline"),
        pct_nadir=nums.get("pct_vs_nadir"),
        nadir_when=latest.nadir_timepoint if latest is not None else None,
    )


def is_proposal(assessment: Assessment) -> bool:
    """The assessment rests on proposals (e.g. Chun groups from an assisting classifier)
    that a radiologist must confirm."""
    return any("proposed" in f or "unconfirmed" in f for f in assessment.flags)


def lesion_result(assessment: Assessment, lesion: Lesion) -> TimepointResult | None:
    """A per-lesion criterion's result for this lesion (its label is the lesion's id)."""
    for r in assessment.timepoints:
        if r.timepoint in (lesion.tracking_id, lesion.tracking_uid):
            return r
    return None


def proposed_group(lesion: Lesion) -> bool:
    """The lesion's Chun group is the assisting classifier's proposal (not a radiologist's)."""
    notes = lesion.measurements.notes
    return "chun_group" in notes and notes.get("chun_group_source") != "radiologist"


def chun_groups(req: ReportRequest) -> dict[str, tuple[str | None, str]]:
    """Tracking id -> (baseline group, current group) of the lesions with a proposed Chun group."""
    baseline = {
        les.tracking_uid: les.measurements.notes.get("chun_group")
        for les in (req.history[0].lesions if req.history else ())
    }
    return {
        les.tracking_id: (baseline.get(les.tracking_uid), les.measurements.notes["chun_group"])
        for les in req.timepoint.lesions
        if "chun_group" in les.measurements.notes
    }


def _extra(a: Assessment, req: ReportRequest) -> dict[str, Any]:
    lesions = []
    for les in req.timepoint.lesions:
        r = lesion_result(a, les)
        if r is not None:
            lesions.append({"id": les.tracking_id, "category": r.category.upper()})
    return {
        "criterion": a.criterion,
        "chun": a.criterion.strip().upper() == "CHUN",
        "category": a.category.upper(),
        "proposed": is_proposal(a),
        "lesions": lesions,
        "regimen_warning": "context_warning" in a.flags,
        "citation": a.citation.text + (f", doi:{a.citation.doi}" if a.citation.doi else ""),
        "reasons": list(a.reasons),
        "flags": list(a.flags),
    }


def _num(lang: str) -> Any:
    def f(x: float) -> str:
        s = f"{x:.1f}"
        return s.replace(".", ",") if lang == "fr" else s

    return f


def _num2(lang: str) -> Any:
    def f(x: float) -> str:
        s = f"{x:.2f}"
        return s.replace(".", ",") if lang == "fr" else s

    return f


def _pct(lang: str) -> Any:
    num = _num(lang)

    def f(x: float) -> str:
        sign = "+" if x > 0 else ""
        return f"{sign}{num(x)}{' %' if lang == 'fr' else '%'}"

    return f


def _environment(templates_dir: Path, lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text into DICOM, never HTML
        keep_trailing_newline=False,
    )
    env.filters["num"] = _num(lang)
    env.filters["pct"] = _pct(lang)
    env.filters["num2"] = _num2(lang)
    return env


def context(req: ReportRequest, software_version: str = __version__, language: str = "en") -> dict[str, Any]:
    a = req.assessment
    k = key_numbers(a)
    lesions = req.timepoint.lesions
    measured = [les for les in lesions if les.measurements.long_axis is not None]
    comparisons = [
        (p.study_date.isoformat() if p.study_date else p.study_instance_uid) for p in req.priors
    ]
    return {
        "outcome": str(req.outcome),
        "route": req.route,
        "reason": req.reason,
        "criterion": a.criterion if a else "",
        "citation": (a.citation.text + (f", doi:{a.citation.doi}" if a.citation.doi else "")) if a else "",
        "category": a.category if a else ("NE" if req.outcome == Outcome.NOT_EVALUABLE else ""),
        "evaluable": a.evaluable if a else req.outcome != Outcome.NOT_EVALUABLE,
        "reasons": list(a.reasons) if a else [],
        "flags": list(a.flags) if a else [],
        "sum": k.sum,
        "baseline": k.baseline,
        "nadir": k.nadir,
        "pct_baseline": k.pct_baseline,
        "pct_nadir": k.pct_nadir,
        "nadir_when": k.nadir_when,
        "n_lesions": len(measured),
        "n_new": sum(1 for les in lesions if les.kind == LesionKind.NEW),
        "model": f"{req.model.name} {req.model.version}" if req.model else "",
        "comparisons": comparisons,
        "extras": [_extra(x, req) for x in req.extra_assessments],
        "chun_groups": {k: {"baseline": b, "group": g} for k, (b, g) in chun_groups(req).items()},
        "chun_proposed": any(proposed_group(les) for les in lesions),
        "software_version": software_version,
        "percist": percist_context(req),
        "amino": amino_context(req),  # brain PET: ratios and criteria, worded by the template (report/amino_text.py)  # PERCIST 1.0: its own sentence (report/percist_text.py)
        "response": response_context(req, language),  # irradiated field, volumetric (report/response_text.py)
    }


def render_impression(req: ReportRequest, language: str, templates_dir: Path) -> Impression:
    if language not in LANGUAGES:
        raise ValueError(f"no report template for language {language!r}; have {LANGUAGES}")
    env = _environment(templates_dir, language)
    module = env.get_template(f"impression.{language}.j2").module
    ctx = context(req, language=language)
    amino = ctx["amino"]
    # brain PET in another language than English: the criteria's, regions' and input's sentences come from
    # the template's own words (amino.<language>.j2), not the criteria's English; the input's reasons only
    # when its table `reasons` words every one of their codes (else the English, whole, in the impression)
    words: Any = env.get_template(f"amino.{language}.j2").module if amino is not None and language != "en" else None
    if words is not None:
        amino["worded"] = bool(amino["reasons"]) and all(r["code"] in words.reasons for r in amino["reasons"])
    line = " ".join(str(module.impression(ctx)).split())  # type: ignore[attr-defined]
    details = str(module.details(ctx)).strip()  # type: ignore[attr-defined]
    reasons: tuple[str, ...] = ()
    if words is not None:
        lines = ""
        if req.outcome == Outcome.MEASURED:
            lines = str(words.lines(amino))
        elif amino["worded"]:
            lines = str(words.no_series(amino))
        reasons = tuple(s.strip() for s in lines.splitlines() if s.strip())
    return Impression(language=language, line=line, details=details, reasons=reasons)


def category_label(category: str, language: str, templates_dir: Path) -> str:
    env = _environment(templates_dir, language)
    module = env.get_template(f"impression.{language}.j2").module
    return str(module.category_label(category))  # type: ignore[attr-defined]
