"""The coronal maximum-intensity projection of a PET with its lesions coloured and the liver
reference sphere drawn (whole-body FDG key image). Pure matplotlib: arrays in, RGB out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from daemon.findings import Lesion
from daemon.report.render import RGB, _to_rgb
from daemon.volume import LesionMask, Vec3, Volume

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45")


def coronal_mip(volume: Volume) -> tuple[np.ndarray, bool]:
    """Max over the rows (anterior-posterior) of the (k, j, i) array; and whether k must be
    flipped for the head to be at the top."""
    mip = np.asarray(volume.array, dtype=np.float32).max(axis=1)
    return mip, bool(volume.affine[2, 0] > 0)


def mip_key_image(volume: Volume, mask: LesionMask | None, lesions: Sequence[Lesion], sphere: tuple[Vec3, float] | None,
                  title: str, footer: str, size_px: int = 768) -> RGB:
    """Inverted-grey coronal MIP, each lesion's projection outlined in its colour and named, the
    liver sphere (centre, diameter mm) as a circle."""
    mip, flip = coronal_mip(volume)
    sk, _, si = volume.spacing
    top = float(np.percentile(mip, 99.5)) or 1.0
    fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100, facecolor="white")
    ax = fig.add_axes((0.0, 0.06, 1.0, 0.88))
    ax.imshow(mip[::-1] if flip else mip, cmap="gray_r", vmin=0.0, vmax=top, interpolation="nearest",
              aspect=sk / si)
    nk = mip.shape[0]

    def row(k: float) -> float:
        return nk - 1 - k if flip else k

    if mask is not None:
        for n, les in enumerate(lesions):
            if les.segment_number is None:
                continue
            shadow = np.asarray(np.asarray(mask.labels == les.segment_number).any(axis=1), dtype=bool)
            if not shadow.any():
                continue
            colour = COLOURS[n % len(COLOURS)]
            ax.contour((shadow[::-1] if flip else shadow).astype(np.float32), levels=[0.5], colors=[colour],
                       linewidths=1.5)
            k, i = np.argwhere(shadow).mean(axis=0)
            ax.text(float(i) + 4, row(float(k)), les.tracking_id, color=colour, fontsize=10, fontweight="bold")
    if sphere is not None:
        centre, diameter = sphere
        k, _, i = volume.patient_to_index(centre)
        ax.add_patch(Circle((float(i), row(float(k))), diameter / 2.0 / si, fill=False, color="#00a0a0",
                            linewidth=1.5))
        ax.text(float(i) + diameter / 2.0 / si + 2, row(float(k)), "liver ref.", color="#00a0a0", fontsize=9)
    ax.set_axis_off()
    fig.text(0.01, 0.965, title, color="black", fontsize=12, fontweight="bold", va="center")
    fig.text(0.01, 0.025, footer, color="#555555", fontsize=8, va="center")
    return _to_rgb(fig)


def liver_sphere_of(context: dict[str, str]) -> tuple[Vec3, float] | None:
    """The liver reference sphere a timepoint's context records (liver_centre, liver_diameter_mm)."""
    try:
        x, y, z = (float(v) for v in context["liver_centre"].split(","))
        return (x, y, z), float(context.get("liver_diameter_mm", "30"))
    except (KeyError, ValueError):
        return None
