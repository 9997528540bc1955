"""Drawings for the key images: lesion slice with contour and callipers, trend plot, summary page.

Pure matplotlib (Agg, no pyplot state): arrays in, an RGB uint8 array out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from daemon.findings import Calliper, Lesion, Timepoint

RGB = NDArray[np.uint8]


def _to_rgb(fig: Figure) -> RGB:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # type: ignore[no-untyped-call]
    rgba = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    return np.ascontiguousarray(rgba[:, :, :3], dtype=np.uint8)


def window(image: NDArray[np.floating] | NDArray[np.integer]) -> NDArray[np.float64]:
    """Display window from the 1st to the 99.5th percentile, mapped to 0..1."""
    a = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(a, [1.0, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return np.asarray(np.clip((a - lo) / (hi - lo), 0.0, 1.0), dtype=np.float64)


def _draw_calliper(ax: object, cal: Calliper, colour: str, label: str) -> None:
    # SCOORD (column, row) has pixel centres at +0.5; imshow has them at integers
    xs = [cal.start_image.column - 0.5, cal.end_image.column - 0.5]
    ys = [cal.start_image.row - 0.5, cal.end_image.row - 0.5]
    ax.plot(xs, ys, color=colour, linewidth=1.6, marker="+", markersize=9)  # type: ignore[attr-defined]
    ax.annotate(  # type: ignore[attr-defined]
        label, (xs[1], ys[1]), xytext=(6, -6), textcoords="offset points", color=colour,
        fontsize=10, fontweight="bold",
        bbox={"boxstyle": "round,pad=0.2", "fc": "black", "ec": "none", "alpha": 0.6},
    )


@dataclass(frozen=True)
class KeyImageText:
    title: str  # e.g. "T1 - target - left frontal"
    long_label: str  # e.g. "L 22.0 mm"
    short_label: str
    footer: str
    orientation: tuple[str, str, str, str] = ("", "", "", "")  # patient side at left, right, top, bottom


def lesion_key_image(
    slice_pixels: NDArray[np.floating] | NDArray[np.integer],
    lesion_mask: NDArray[np.bool_] | None,
    lesion: Lesion,
    text: KeyImageText,
    size_px: int = 512,
) -> RGB:
    """The slice of the long axis, windowed, with the lesion contour and both callipers."""
    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100, facecolor="black")
    ax = fig.add_axes((0.0, 0.06, 1.0, 0.88))
    ax.imshow(window(slice_pixels), cmap="gray", interpolation="nearest", vmin=0, vmax=1)
    if lesion_mask is not None and lesion_mask.any():
        ax.contour(lesion_mask.astype(np.float32), levels=[0.5], colors=["#ff4040"], linewidths=1.2)
    m = lesion.measurements
    if m.long_axis is not None:
        _draw_calliper(ax, m.long_axis, "#ffd700", text.long_label)
    if m.short_axis is not None:
        _draw_calliper(ax, m.short_axis, "#00e5ff", text.short_label)
    ax.set_axis_off()
    left, right, top, bottom = text.orientation
    style = {"color": "#ffcc66", "fontsize": 12, "fontweight": "bold", "ha": "center", "va": "center"}
    for label, xy in ((left, (0.02, 0.5)), (right, (0.98, 0.5)), (top, (0.5, 0.925)), (bottom, (0.5, 0.075))):
        if label:
            fig.text(*xy, label, **style)  # type: ignore[arg-type]
    fig.text(0.01, 0.965, text.title, color="white", fontsize=12, fontweight="bold", va="center")
    fig.text(0.01, 0.025, text.footer, color="#bbbbbb", fontsize=8, va="center")
    return _to_rgb(fig)


@dataclass(frozen=True)
class TrendSeries:
    dates: tuple[date, ...]
    sums: tuple[float | None, ...]
    lesions: dict[str, tuple[float | None, ...]]  # tracking id -> long axis per date


def trend_series(timepoints: Sequence[Timepoint]) -> TrendSeries:
    """Sum of target long axes and each lesion's long axis at every dated timepoint."""
    dated = [tp for tp in timepoints if tp.study_date is not None]
    ids: list[str] = []
    for tp in dated:
        for les in tp.lesions:
            if les.tracking_id not in ids:
                ids.append(les.tracking_id)
    lesions: dict[str, tuple[float | None, ...]] = {}
    for tid in ids:
        row = []
        for tp in dated:
            found = [x for x in tp.lesions if x.tracking_id == tid and x.measurements.long_axis]
            row.append(found[0].measurements.long_axis.length_mm if found and found[0].measurements.long_axis else None)
        lesions[tid] = tuple(row)
    sums: list[float | None] = []
    for tp in dated:
        axes = [x.measurements.long_axis.length_mm for x in tp.lesions
                if x.kind == "target" and x.measurements.long_axis is not None]
        sums.append(float(sum(axes)) if axes else None)
    return TrendSeries(tuple(tp.study_date for tp in dated if tp.study_date), tuple(sums), lesions)


@dataclass(frozen=True)
class TrendLines:
    baseline: float | None = None
    nadir: float | None = None
    response_line: float | None = None  # e.g. baseline x (1 - 30 %)
    progression_line: float | None = None  # e.g. nadir x (1 + 20 %)
    labels: tuple[str, str, str, str] = ("baseline", "nadir", "response threshold", "progression threshold")


@dataclass(frozen=True)
class TrendAxis:
    """How the plotted quantity is named: its unit, the legend of the thick total line, and an
    optional study total on a right-hand axis (one value per date, e.g. TMTV)."""

    unit: str = "mm"
    total_label: str = "sum"
    right: tuple[float | None, ...] = ()
    right_unit: str = ""
    right_label: str = ""


def _right_axis(ax: object, x: Sequence[float], axis: TrendAxis) -> None:
    pts = [(d, v) for d, v in zip(x, axis.right, strict=True) if v is not None]
    if not pts:
        return
    twin = ax.twinx()  # type: ignore[attr-defined]
    twin.plot([p[0] for p in pts], [p[1] for p in pts], marker="D", linewidth=2.0, linestyle="--", color="#8c564b",
              label=axis.right_label)
    twin.set_ylabel(axis.right_unit, color="#8c564b")
    twin.set_ylim(bottom=0)
    twin.legend(loc="lower left", bbox_to_anchor=(1.16, 0.0), fontsize=8, frameon=False)


def trend_plot(series: TrendSeries, lines: TrendLines, title: str, footer: str, size_px: tuple[int, int] = (800, 600),
               axis: TrendAxis | None = None) -> RGB:
    axis = axis or TrendAxis()
    fig = Figure(figsize=(size_px[0] / 100, size_px[1] / 100), dpi=100, facecolor="white")
    ax = fig.add_axes((0.08, 0.14, 0.58 if not axis.right else 0.52, 0.76))
    x = [float(d.toordinal()) for d in series.dates]
    for tid, values in series.lesions.items():
        pts = [(d, v) for d, v in zip(x, values, strict=True) if v is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linewidth=1, alpha=0.8, label=tid)
    pts = [(d, v) for d, v in zip(x, series.sums, strict=True) if v is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="s", linewidth=2.5, color="black",
                label=axis.total_label)
    styles = (("#1f77b4", ":"), ("#2ca02c", "--"), ("#9467bd", "-."), ("#d62728", "-."))
    values = (lines.baseline, lines.nadir, lines.response_line, lines.progression_line)
    for value, label, (colour, dash) in zip(values, lines.labels, styles, strict=True):
        if value is not None:
            ax.axhline(value, color=colour, linestyle=dash, linewidth=1.3, label=f"{label} {value:.1f} {axis.unit}")
    ax.set_ylabel(axis.unit)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    beside = 1.01 if not axis.right else 1.16  # right of the right-hand axis' labels
    ax.legend(loc="upper left", bbox_to_anchor=(beside, 1.0), fontsize=8, frameon=False)
    if axis.right:
        _right_axis(ax, x, axis)
    if x:
        ax.set_xticks(x)
        ax.set_xticklabels([d.isoformat() for d in series.dates], rotation=30, ha="right", fontsize=8)
    fig.text(0.01, 0.96, title, fontsize=13, fontweight="bold", va="center")
    fig.text(0.01, 0.02, footer, fontsize=8, color="#555555", va="center")
    return _to_rgb(fig)


TABLE_CHARS = 110  # about as many 9 pt characters fit across a table


def _widths(rows: Sequence[tuple[str, ...]]) -> list[float] | None:
    """Equal columns (None) when every cell fits with room to spare; else widths in
    proportion to each column's longest text (header included)."""
    n = len(rows[0])
    if max((len(cell) for r in rows[1:] for cell in r), default=0) <= 0.8 * TABLE_CHARS / n:
        return None
    longest = [max(len(r[c]) for r in rows) + 2 for c in range(n)]
    return [k / sum(longest) for k in longest]


def _table(fig: Figure, top: float, rows: Sequence[tuple[str, ...]]) -> float:
    """Draw a table whose first row is the header; return the y below it."""
    height = 0.03 * len(rows)
    bottom = max(0.1, top - height)
    ax = fig.add_axes((0.04, bottom, 0.92, top - bottom))
    ax.set_axis_off()
    t = ax.table(cellText=[list(r) for r in rows[1:]], colLabels=list(rows[0]), loc="upper left", cellLoc="left",
                 colWidths=_widths(rows))
    t.auto_set_font_size(False)
    t.set_fontsize(9)
    t.scale(1.0, 1.3)
    return bottom - 0.04


def summary_page(
    title: str,
    impression: str,
    tables: Sequence[Sequence[tuple[str, ...]]],
    details: str,
    footer: str,
    size_px: tuple[int, int] = (800, 1000),
) -> RGB:
    """One page: impression, tables (numbers, lesions), the criterion with citation and reasons."""
    fig = Figure(figsize=(size_px[0] / 100, size_px[1] / 100), dpi=100, facecolor="white")
    fig.text(0.04, 0.965, title, fontsize=15, fontweight="bold", va="top")
    wrapped = textwrap.fill(impression, width=80)
    fig.text(0.04, 0.92, wrapped, fontsize=11, va="top")
    y = 0.92 - 0.025 * (wrapped.count("\n") + 1) - 0.04
    for rows in tables:
        if len(rows) > 1:
            y = _table(fig, y, rows)
    body = "\n".join(textwrap.fill(line, width=95) for line in details.splitlines())
    # a long text (several criteria) gets a smaller font rather than running into the footer
    room, per_line = y - 0.045, 0.0155  # page fraction per line at 9 pt
    lines = body.count("\n") + 1
    size = 9.0 if lines * per_line <= room else max(6.0, 9.0 * room / (lines * per_line))
    fig.text(0.04, y, body, fontsize=size, va="top", family="monospace")
    fig.text(0.04, 0.02, footer, fontsize=8, color="#555555")
    return _to_rgb(fig)
