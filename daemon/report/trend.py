"""The trend plot of a report: what it shows is the route's (ReportRequest.trend), one way for all.

- `sum_of_diameters` (RECIST 1.1, RANO-BM, the default): the sum of the targets' long axes and
  each lesion's long axis at every dated visit, with the baseline, the nadir and the
  criterion's response and progression lines (thresholds from its rules file);
- `sulpeak_tmtv` (PERCIST 1.0): the hottest lesion's SULpeak and each lesion's SULpeak, with the
  baseline's hottest SULpeak and the PMR / PMD lines (percent of the baseline, rules/percist.yaml),
  and the total metabolic tumour volume (the lesions' volumes at the SUV threshold) on a
  right-hand axis.

None when there is nothing to plot (no assessment, fewer than two dated visits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from daemon.findings import Lesion, Timepoint
from daemon.report.inputs import ReportRequest, TrendKind
from daemon.report.render import RGB, TrendAxis, TrendLines, TrendSeries, trend_plot, trend_series
from daemon.report.text import key_numbers

Plot = tuple[TrendSeries, TrendLines, TrendAxis, str]  # series, lines, axis, title


def _sum_of_diameters(req: ReportRequest, w: dict[str, str]) -> Plot | None:
    series = trend_series((*req.history, req.timepoint))
    if req.assessment is None or len(series.dates) < 2 or all(v is None for v in series.sums):
        return None
    k = key_numbers(req.assessment)
    pr, pd = req.thresholds.get("pr_pct_vs_baseline"), req.thresholds.get("pd_pct_vs_nadir")
    lines = TrendLines(
        baseline=k.baseline,
        nadir=k.nadir,
        response_line=k.baseline * (1 + pr / 100) if k.baseline is not None and pr is not None else None,
        progression_line=k.nadir * (1 + pd / 100) if k.nadir is not None and pd is not None else None,
        labels=(w["baseline"], w["nadir"], w["resp"], w["prog"]),
    )
    return series, lines, TrendAxis(), f"{req.assessment.criterion}: {w['trend']}"


def _per_lesion(dated: Sequence[Timepoint], value: Callable[[Lesion], float | None]) -> dict[str, tuple[float | None, ...]]:
    ids = list(dict.fromkeys(les.tracking_id for tp in dated for les in tp.lesions))
    out: dict[str, tuple[float | None, ...]] = {}
    for tid in ids:
        out[tid] = tuple(next((value(les) for les in tp.lesions if les.tracking_id == tid), None) for tp in dated)
    return out


def _peak(les: Lesion) -> float | None:
    return les.measurements.intensity.get("sul_peak")


def _sulpeak_tmtv(req: ReportRequest, w: dict[str, str]) -> Plot | None:
    dated = [tp for tp in (*req.history, req.timepoint) if tp.study_date is not None]
    if req.assessment is None or len(dated) < 2:
        return None
    hottest: list[float | None] = []
    for tp in dated:
        peaks = [p for p in (_peak(les) for les in tp.lesions) if p is not None]
        hottest.append(max(peaks) if peaks else None)
    tmtv = tuple(float(sum(les.measurements.volume_ml or 0.0 for les in tp.lesions)) for tp in dated)
    series = TrendSeries(tuple(tp.study_date for tp in dated if tp.study_date), tuple(hottest),
                         _per_lesion(dated, _peak))
    first = req.assessment.timepoints[0].numbers.get("hottest_sulpeak") if req.assessment.timepoints else None
    base = first if first is not None else hottest[0]
    pr, pd = req.thresholds.get("pr_pct_vs_baseline"), req.thresholds.get("pd_pct_vs_baseline")
    lines = TrendLines(
        baseline=base,
        response_line=base * (1 + pr / 100) if base is not None and pr is not None else None,
        progression_line=base * (1 + pd / 100) if base is not None and pd is not None else None,
        labels=(w["baseline"], w["nadir"], w["resp"], w["prog"]),
    )
    axis = TrendAxis(unit="SUL", total_label=w["hottest"], right=tmtv, right_unit="ml", right_label=w["tmtv"])
    return series, lines, axis, f"{req.assessment.criterion}: {w['trend_pet']}"


TRENDS: dict[TrendKind, Callable[[ReportRequest, dict[str, str]], Plot | None]] = {
    "sum_of_diameters": _sum_of_diameters,
    "sulpeak_tmtv": _sulpeak_tmtv,
}


def trend_image(req: ReportRequest, words: dict[str, str], footer: str) -> RGB | None:
    """The route's trend plot, or None when there is nothing to plot."""
    plot = TRENDS[req.trend](req, words)
    if plot is None:
        return None
    series, lines, axis, title = plot
    return trend_plot(series, lines, title, footer, axis=axis)


def trend_numbers(req: ReportRequest) -> Plot | None:
    """What the trend plot shows, without drawing it (for tests and the summary)."""
    return TRENDS[req.trend](req, {k: k for k in ("baseline", "nadir", "resp", "prog", "hottest", "tmtv", "trend",
                                                   "trend_pet")})
