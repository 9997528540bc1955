"""Which key images a report has and what they say: composes render.py with a request."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from daemon.config import ReportSettings
from daemon.findings import Lesion, LesionKind
from daemon.report.inputs import ReportRequest
from daemon.report.mip import liver_sphere_of, mip_key_image
from daemon.report.render import (
    KeyImageText,
    lesion_key_image,
    summary_page,
)
from daemon.report.sc import KeyImage, orientation_letters
from daemon.report.text import (
    Impression,
    category_label,
    chun_groups,
    key_numbers,
    lesion_result,
    proposed_group,
)
from daemon.report.trend import trend_image

WORDS = {
    "en": {"target": "target", "non-target": "non-target", "new": "new", "long": "L", "short": "S",
           "trend": "Sum of diameters over time", "summary": "Nadir summary", "slice": "slice",
           "lesion": "Lesion", "kind": "Kind", "la": "Long axis (mm)", "sa": "Short axis (mm)",
           "vol": "Volume (ml)", "site": "Site", "baseline": "baseline", "nadir": "nadir",
           "resp": "response threshold", "prog": "progression threshold", "na": "n/m",
           "footer": "Nadir {version} - automated measurement, not verified by a physician",
           "quantity": "Quantity", "value": "Value", "sum": "Sum of diameters (mm)",
           "base": "Baseline (mm)", "nad": "Nadir (mm)", "pb": "Change vs baseline (%)", "pn": "Change vs nadir (%)",
           "chun": "Chun group (proposed — confirm)", "chun_confirmed": "Chun group", "response": "response",
           "mip": "Coronal MIP: lesions and liver reference",
           "trend_pet": "Hottest SULpeak and TMTV over time", "hottest": "hottest SULpeak", "tmtv": "TMTV (ml)"},
    "fr": {"target": "cible", "non-target": "non cible", "new": "nouvelle", "long": "GA", "short": "PA",
           "trend": "Somme des diamètres au cours du temps", "summary": "Synthèse Nadir", "slice": "coupe",
           "lesion": "Lésion", "kind": "Type", "la": "Grand axe (mm)", "sa": "Petit axe (mm)",
           "vol": "Volume (ml)", "site": "Site", "baseline": "référence", "nadir": "nadir",
           "resp": "seuil de réponse", "prog": "seuil de progression", "na": "n/m",
           "footer": "Nadir {version} - mesure automatique, non validée par un médecin",
           "quantity": "Grandeur", "value": "Valeur", "sum": "Somme des diamètres (mm)",
           "base": "Référence (mm)", "nad": "Nadir (mm)", "pb": "Variation / référence (%)", "pn": "Variation / nadir (%)",
           "chun": "Chun (proposé — à confirmer)", "chun_confirmed": "Groupe de Chun", "response": "réponse",
           "mip": "MIP coronale : lésions et référence hépatique",
           "trend_pet": "SULpeak maximal et TMTV au cours du temps", "hottest": "SULpeak maximal",
           "tmtv": "TMTV (ml)"},
}


def _fmt(x: float | None, lang: str, na: str) -> str:
    if x is None:
        return na
    s = f"{x:.1f}"
    return s.replace(".", ",") if lang == "fr" else s


def _lesion_image(req: ReportRequest, lesion: Lesion, w: dict[str, str], footer: str, lang: str) -> tuple[np.ndarray, int] | None:
    vol, cal = req.volume, lesion.measurements.long_axis
    if vol is None or cal is None:
        return None
    try:
        k = vol.slices.index(cal.start_image.slice)
    except ValueError:
        return None
    mask = None
    if req.mask is not None and lesion.segment_number is not None:
        mask = np.asarray(req.mask.labels[k] == lesion.segment_number)
    sa = lesion.measurements.short_axis
    title = f"{lesion.tracking_id} - {w[str(lesion.kind)]}" + (f" - {lesion.site}" if lesion.site else "")
    title += f" - {w['slice']} {k + 1}/{vol.shape[0]}"
    text = KeyImageText(
        title=title,
        long_label=f"{w['long']} {_fmt(cal.length_mm, lang, '')} mm",
        short_label=f"{w['short']} {_fmt(sa.length_mm, lang, '') if sa else ''} mm",
        footer=footer,
        orientation=_sides(req, k),
    )
    return lesion_key_image(vol.array[k], mask, lesion, text), k


_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def _sides(req: ReportRequest, k: int) -> tuple[str, str, str, str]:
    """Patient side at the left, right, top and bottom edges of slice k."""
    uid = req.volume.slices[k].sop_instance_uid if req.volume is not None else ""
    ds = next((d for d in req.source_images if str(d.SOPInstanceUID) == uid), None)
    if ds is None or "ImageOrientationPatient" not in ds:
        return ("", "", "", "")
    row_dir, col_dir = orientation_letters(ds)  # towards increasing column, increasing row
    return (_OPPOSITE[row_dir], row_dir, _OPPOSITE[col_dir], col_dir)


def _table(req: ReportRequest, w: dict[str, str], lang: str) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [(w["lesion"], w["kind"], w["site"], w["la"], w["sa"], w["vol"])]
    for les in req.timepoint.lesions:
        m = les.measurements
        rows.append((
            les.tracking_id, w[str(les.kind)], les.site or "-",
            _fmt(m.long_axis.length_mm if m.long_axis else None, lang, w["na"]),
            _fmt(m.short_axis.length_mm if m.short_axis else None, lang, w["na"]),
            _fmt(m.volume_ml, lang, w["na"]),
        ))
    return rows if len(rows) > 1 else []


def per_lesion_rows(req: ReportRequest, w: dict[str, str], lang: str, templates: Path) -> list[tuple[str, ...]]:
    """Per lesion: its proposed Chun group (baseline -> now) and each extra assessment's response."""
    groups = chun_groups(req)
    extras = [a for a in req.extra_assessments if any(lesion_result(a, les) for les in req.timepoint.lesions)]
    if not groups and not extras:
        return []
    header = [w["lesion"]]
    if groups:
        header.append(w["chun"] if any(proposed_group(les) for les in req.timepoint.lesions) else w["chun_confirmed"])
    colon = " :" if lang == "fr" else ":"
    header += [f"{a.criterion}{colon} {w['response']}" for a in extras]
    rows: list[tuple[str, ...]] = [tuple(header)]
    for les in req.timepoint.lesions:
        row = [les.tracking_id]
        if groups:
            base, now = groups.get(les.tracking_id, (None, None))
            row.append(f"{base} → {now}" if base and now else now or "-")
        for a in extras:
            r = lesion_result(a, les)
            row.append(category_label(r.category.upper(), lang, templates) if r else "-")
        rows.append(tuple(row))
    return rows


def _numbers(req: ReportRequest, w: dict[str, str], lang: str) -> list[tuple[str, ...]]:
    k = key_numbers(req.assessment)
    rows: list[tuple[str, ...]] = [(w["quantity"], w["value"])]
    for key, value in (("sum", k.sum), ("base", k.baseline), ("nad", k.nadir), ("pb", k.pct_baseline), ("pn", k.pct_nadir)):
        if value is not None:
            sign = "+" if key in ("pb", "pn") and value > 0 else ""
            rows.append((w[key], sign + _fmt(value, lang, w["na"])))
    return rows


def key_images(
    req: ReportRequest, impression: Impression, settings: ReportSettings, version: str, uids: Sequence[str]
) -> list[KeyImage]:
    """Per target or new lesion its long-axis slice; the trend plot (two dates or more); the summary."""
    lang = impression.language
    w = WORDS[lang]
    footer = w["footer"].format(version=version)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in req.source_images}
    first = req.source_images[0]
    out: list[KeyImage] = []

    def add(pixels: np.ndarray, ref: object, shows: bool, desc: str) -> None:
        n = len(out)
        out.append(KeyImage(pixels, ref, shows, desc, uids[n], req.revision * 100 + n + 1))  # type: ignore[arg-type]

    for les in req.timepoint.lesions:
        if les.kind == LesionKind.NON_TARGET:
            continue  # targets and new lesions: what the category rests on
        drawn = _lesion_image(req, les, w, footer, lang)
        if drawn is not None and les.measurements.long_axis is not None:
            ref = by_uid.get(les.measurements.long_axis.start_image.slice.sop_instance_uid, first)
            add(drawn[0], ref, True, f"{les.tracking_id} {les.tracking_uid}")
    for extra in req.extra_images:
        add(extra.pixels, extra.reference or first, extra.reference is not None, extra.description)
    if req.mip and req.volume is not None and req.timepoint.lesions:
        # whole-body PET: the coronal MIP, lesions coloured, the liver reference sphere
        title = f"{w['mip']} - {req.assessment.criterion}" if req.assessment is not None else w["mip"]
        mip = mip_key_image(req.volume, req.mask, req.timepoint.lesions, liver_sphere_of(req.timepoint.context),
                            title, footer)
        add(mip, first, False, "coronal MIP")
    plot = trend_image(req, w, footer)  # what it shows is the route's (report/trend.py)
    if plot is not None:
        add(plot, first, False, "trend plot")
    title = w["summary"]
    if req.assessment is not None:
        label = category_label(req.assessment.category, lang, settings.templates_dir)
        colon = " :" if lang == "fr" else ":"
        title = f"{title} - {req.assessment.criterion}{colon} {label} ({req.assessment.category})"
    tables = [_numbers(req, w, lang), _table(req, w, lang), per_lesion_rows(req, w, lang, settings.templates_dir)]
    page = summary_page(title, impression.line, tables, impression.details, footer)
    add(page, first, False, "summary page")
    return out
