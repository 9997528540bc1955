"""Key images of a CT perfusion study: the flow map with each lesion's and its healthy-liver
region, and the input regions (aorta, portal vein, spleen) on the arterial frame.

Pure matplotlib (Agg): arrays in, RGB out, like report/render.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import NDArray

from daemon.report.render import RGB, _to_rgb, window

BoolArray = NDArray[np.bool_]
INPUT_COLOURS = {"aorta": "#ff3030", "portal vein": "#30a0ff", "spleen": "#40ff80"}


@dataclass(frozen=True, eq=False)
class Region:
    label: str
    mask: BoolArray  # one slice (y, x)
    colour: str


def _figure(size_px: int) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100, facecolor="black")
    ax = fig.add_axes((0.0, 0.06, 1.0, 0.88))
    return fig, ax


def _regions(ax: Axes, regions: Sequence[Region]) -> None:
    for r in regions:
        if not r.mask.any():
            continue
        ax.contour(r.mask.astype(np.float32), levels=[0.5], colors=[r.colour], linewidths=1.4)
        ys, xs = np.nonzero(r.mask)
        ax.annotate(r.label, (float(xs.max()) + 1.0, float(ys.min())), color=r.colour, fontsize=9,
                    fontweight="bold", bbox={"boxstyle": "round,pad=0.2", "fc": "black", "ec": "none", "alpha": 0.6})


def _texts(fig: Figure, title: str, footer: str, orientation: tuple[str, str, str, str]) -> None:
    style = {"color": "#ffcc66", "fontsize": 12, "fontweight": "bold", "ha": "center", "va": "center"}
    left, right, top, bottom = orientation
    for label, xy in ((left, (0.02, 0.5)), (right, (0.98, 0.5)), (top, (0.5, 0.925)), (bottom, (0.5, 0.075))):
        if label:
            fig.text(*xy, label, **style)  # type: ignore[arg-type]
    fig.text(0.01, 0.965, title, color="white", fontsize=11, fontweight="bold", va="center")
    fig.text(0.01, 0.025, footer, color="#bbbbbb", fontsize=8, va="center")


def map_key_image(values: NDArray[np.floating], regions: Sequence[Region], title: str, unit: str, footer: str,
                  orientation: tuple[str, str, str, str] = ("", "", "", ""), size_px: int = 512) -> RGB:
    """One slice of a map in colour (its unit on the colour bar) with the regions' contours."""
    fig, ax = _figure(size_px)
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    hi = float(np.percentile(v, 99.5)) if v.size else 1.0
    shown = ax.imshow(v, cmap="jet", vmin=0.0, vmax=max(hi, 1e-6), interpolation="nearest")
    bar = fig.colorbar(shown, ax=ax, fraction=0.04, pad=0.01)
    bar.set_label(unit, color="white")
    bar.ax.tick_params(colors="white", labelsize=8)
    _regions(ax, regions)
    ax.set_axis_off()
    _texts(fig, title, footer, orientation)
    return _to_rgb(fig)


def inputs_key_image(frame: NDArray[np.floating], masks: Mapping[str, BoolArray], title: str, footer: str,
                     orientation: tuple[str, str, str, str] = ("", "", "", ""), size_px: int = 512) -> RGB:
    """One slice of the arterial frame with the input regions' contours (colours: INPUT_COLOURS)."""
    fig, ax = _figure(size_px)
    ax.imshow(window(frame), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    _regions(ax, [Region(name, m, INPUT_COLOURS.get(name, "#ffffff")) for name, m in masks.items()])
    ax.set_axis_off()
    _texts(fig, title, footer, orientation)
    return _to_rgb(fig)


def regions_key_image(pixels: NDArray[np.floating], regions: Sequence[Region], title: str, footer: str,
                      orientation: tuple[str, str, str, str] = ("", "", "", ""), size_px: int = 512) -> RGB:
    """One greyscale slice with labelled region outlines (any route's regions, e.g. brain PET references)."""
    fig, ax = _figure(size_px)
    ax.imshow(window(pixels), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    _regions(ax, regions)
    ax.set_axis_off()
    _texts(fig, title, footer, orientation)
    return _to_rgb(fig)


def best_slice(masks: Sequence[BoolArray]) -> int:
    """The slice showing most of the regions (most regions present, then most voxels)."""
    present = np.stack([m.any(axis=(1, 2)) for m in masks]).sum(axis=0)
    voxels = np.stack([m.sum(axis=(1, 2)) for m in masks]).sum(axis=0)
    return int(np.lexsort((voxels, present))[-1])
