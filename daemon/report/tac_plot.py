"""The time-activity curve key image of a dynamic PET (FET): lesion and normal-brain curves (SUV against
minutes after injection), the lesion's time to peak marked, the summed window shaded.

Pure matplotlib (Agg), drawn like the trend plot (report/render.py): arrays in, RGB out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from daemon.report.render import RGB, _to_rgb


@dataclass(frozen=True)
class TacCurve:
    label: str  # e.g. "L1", "Normal brain"
    minutes: tuple[float, ...]  # frame mid-times, minutes p.i.
    suv: tuple[float, ...]  # the region's SUVmean per frame


def tac_plot(curves: Sequence[TacCurve], ttp_min: float | None, window_min: tuple[float, float], title: str,
             footer: str, size_px: tuple[int, int] = (800, 600)) -> RGB:
    """The curves, the first curve's time to peak as a vertical line, the window shaded."""
    fig = Figure(figsize=(size_px[0] / 100, size_px[1] / 100), dpi=100, facecolor="white")
    ax = fig.add_axes((0.09, 0.12, 0.64, 0.78))
    ax.axvspan(window_min[0], window_min[1], color="#ffd27f", alpha=0.45,
               label=f"summed {window_min[0]:g}-{window_min[1]:g} min")
    for c, colour in zip(curves, ("#d62728", "#1f77b4", "#2ca02c", "#9467bd"), strict=False):
        ax.plot(c.minutes, c.suv, marker="o", linewidth=2.0, color=colour, label=c.label)
    if ttp_min is not None:
        ax.axvline(ttp_min, color="black", linestyle="--", linewidth=1.3, label=f"time to peak {ttp_min:.1f} min")
    ax.set_xlabel("minutes p.i.")
    ax.set_ylabel("SUVbw (g/ml)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.text(0.01, 0.96, title, fontsize=13, fontweight="bold", va="center")
    fig.text(0.01, 0.02, footer, fontsize=8, color="#555555", va="center")
    return _to_rgb(fig)
