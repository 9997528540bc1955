"""`nadir perfusion DYNAMIC_SERIES_DIR --lesions SEG_FILE [--json]`: liver CT perfusion of one
dynamic series by the dual-input maximum-slope method, and the lesion / healthy-liver ratios of
each segment of a DICOM SEG of lesions on that series.

The healthy-liver region follows the rules (rules/perfusion_dynamic.yaml, perfusion.md §3):
inside the SEG's segment whose label role is organ (a liver segment: SegmentedPropertyCategory
"Anatomical Structure" or a label naming the liver) when the SEG has one, else inside the
portal-dominant tissue of the maps. Values per 100 ml of tissue (mL/min/100 mL): no division by a
density. `--json` prints a list, one object per lesion segment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np

from daemon import resources
from daemon.commands.errors import CommandError
from daemon.commands.measure import SEG_STORAGE, check_inputs
from daemon.criteria.params import PerfusionParams
from daemon.criteria.rules import RulesSource
from daemon.imaging.dynamic import DynamicRefused, DynamicSeries, load_dynamic
from daemon.imaging.loader import scan
from daemon.measure.lesions import MeasureOptions, measure_mask
from daemon.measure.perfusion_analysis import METHOD, LesionInput, NotComputable, analyse
from daemon.measure.perfusion_params import DynamicParams
from daemon.measure.seg_mapping import SegMappingError, seg_to_masks, segment_labels
from daemon.volume import LesionMask, SegmentLabel

log = logging.getLogger(__name__)

RULES_DIR = resources.RULES_DIR
CATEGORIES = {"major_response_predicted": "major", "not_major": "not_major", "not_evaluable": "not_evaluable",
              "not_computable": "not_computable"}
# SCT "Anatomical Structure" (CID 7150 writes 123037004, pydicom's table 91723000): a segment of this
# category is an organ
ANATOMICAL_STRUCTURE = frozenset({"123037004", "91723000"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("series_dir", type=Path, metavar="DYNAMIC_SERIES_DIR",
                        help="folder holding the dynamic CT series (the SEG may be there too)")
    parser.add_argument("--lesions", type=Path, required=True, metavar="SEG_FILE",
                        help="DICOM Segmentation of the lesions on that series (an organ segment: the liver)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per lesion segment")
    parser.add_argument("--rules", type=Path, default=RULES_DIR,
                        help="rules folder (perfusion.yaml, perfusion_dynamic.yaml)")


def _is_organ(label: SegmentLabel) -> bool:
    return label.category.value in ANATOMICAL_STRUCTURE or "liver" in label.name.lower() and \
        "meta" not in label.name.lower()


def _dynamic(series_dir: Path, seg: Any) -> DynamicSeries:
    found = {uid: s for uid, s in scan(series_dir).series.items() if str(s.first.SOPClassUID) != SEG_STORAGE}
    wanted = next((str(i.SeriesInstanceUID) for i in getattr(seg, "ReferencedSeriesSequence", []) or []), None)
    if wanted is not None and wanted in found:
        chosen = found[wanted]
    elif len(found) == 1:
        chosen = next(iter(found.values()))
    else:
        raise CommandError(f"{series_dir}: the SEG's source series {wanted} is not there ({len(found)} image series found)")
    try:
        return load_dynamic(chosen)
    except DynamicRefused as exc:
        raise CommandError(f"{series_dir}: not computable: {exc}") from exc


def _row(number: int, label: str, r: Any | None, category: str, flags: list[str], reason: str) -> dict[str, Any]:
    v = r.values if r is not None else {}
    return {"segment_number": number, "label": label, "method": METHOD,
            "hap_ml_min_100ml": v.get("HAP"), "hpp_ml_min_100ml": v.get("HPP"), "tlp_ml_min_100ml": v.get("TLP"),
            "hpi_pct": v.get("HPI"), "tlp_ratio": r.ratios.get("TLP") if r is not None else None,
            "category": category, "flags": flags,
            "healthy_tlp_ml_min_100ml": r.healthy_values.get("TLP") if r is not None else None,
            "ttp_s": v.get("TTP"), "reason": reason}


def perfusion_seg(series_dir: Path, seg_file: Path, rules_dir: Path = RULES_DIR) -> list[dict[str, Any]]:
    seg = hd.seg.segread(seg_file)
    dyn = _dynamic(series_dir, seg)
    ref = dyn.reference
    try:
        masks = seg_to_masks(seg, ref)
    except SegMappingError as exc:
        raise CommandError(f"{seg_file}: {exc}") from exc
    labels = {lab.value: lab for lab in segment_labels(seg)}
    organ = next((m for n, m in masks.items() if n in labels and _is_organ(labels[n]) and m.any()), None)
    lesion_numbers = [n for n in sorted(masks) if n not in labels or not _is_organ(labels[n])]
    rules = RulesSource(rules_dir)
    params, criteria = rules.load(DynamicParams, "perfusion_dynamic"), rules.load(PerfusionParams, "perfusion")
    lesions = []
    for n in lesion_numbers:
        mask = masks[n]
        diameter = None
        if mask.any():
            measured = measure_mask(ref, LesionMask(ref, mask.astype(np.int16), ()), MeasureOptions(quantity="hu"))
            axes = [m.measurements.long_axis.length_mm for m in measured if m.measurements.long_axis is not None]
            diameter = max(axes) if axes else None
        lesions.append(LesionInput(labels[n].name if n in labels else str(n), mask, diameter, n))
    try:
        study = analyse(dyn, [les for les in lesions if les.mask.any()], params, criteria, organ,
                        "the SEG's organ segment" if organ is not None else "")
    except NotComputable as exc:
        return [_row(les.number, les.name, None, "not_computable", [], str(exc)) for les in lesions]
    by_number = {r.lesion.number: r for r in study.lesions}
    rows = []
    for les in lesions:
        r = by_number.get(les.number)
        if r is None:
            rows.append(_row(les.number, les.name, None, "not_computable", [], "empty segment"))
            continue
        a = r.assessment
        rows.append(_row(les.number, les.name, r, CATEGORIES.get(a.category, a.category), list(a.flags),
                         " ".join(a.reasons)))
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    print(f"{'seg':>4} {'label':<16} {'HAP':>7} {'HPP':>7} {'TLP':>7} {'HPI %':>6} {'ratio':>6}  category (flags)")
    for r in rows:
        ratio = "-" if r["tlp_ratio"] is None else f"{r['tlp_ratio']:.2f}"
        flags = f" ({', '.join(r['flags'])})" if r["flags"] else ""
        print(f"{r['segment_number']:>4} {r['label'][:16]:<16} {f(r['hap_ml_min_100ml']):>7} {f(r['hpp_ml_min_100ml']):>7} "
              f"{f(r['tlp_ml_min_100ml']):>7} {f(r['hpi_pct']):>6} {ratio:>6}  {r['category']}{flags}")
    print("mL/min/100 mL of tissue (no density division); maximum slope (Miles 1993): the 0.68 BF cut-off "
          "was derived on deconvolution maps")


def run(args: argparse.Namespace) -> int:
    try:
        check_inputs(args.series_dir, args.lesions)
    except CommandError as exc:
        raise CommandError(exc.message.replace("--seg", "--lesions"), exc.status) from exc
    try:
        rows = perfusion_seg(args.series_dir, args.lesions, args.rules)
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows)
    return 0
