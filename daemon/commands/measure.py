"""`nadir measure SERIES_DIR --seg SEG_FILE [--json]`: measure each segment of a DICOM
Segmentation (e.g. a radiologist's own contours) on its source series.

Per segment: number and label, long and short axis (mm) with end points in patient
coordinates and on the source images, volume (ml), maximal 3D diameter, centroid
and intensity statistics (HU for CT, SUVbw for PET when the header allows it --
with SUV peak in the PERCIST sphere of rules/percist.yaml -- signal otherwise).
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
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from daemon import resources
from daemon.commands.errors import CommandError
from daemon.config import ConfigError
from daemon.findings import Calliper, Measurements
from daemon.imaging.loader import scan
from daemon.imaging.series import load_volume
from daemon.measure.lesions import MeasureOptions, measure_mask
from daemon.measure.seg_mapping import SegMappingError, seg_to_masks, segment_labels
from daemon.volume import ImagePoint, LesionMask, Volume

log = logging.getLogger(__name__)

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
RULES_DIR = resources.RULES_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("series_dir", type=Path, metavar="SERIES_DIR",
                        help="folder holding the source series (other series and the SEG may be there too)")
    parser.add_argument("--seg", type=Path, required=True, metavar="SEG_FILE", help="the DICOM Segmentation")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per segment")
    parser.add_argument("--components", action="store_true",
                        help="measure each connected component of a segment separately")
    parser.add_argument("--rules", type=Path, default=RULES_DIR,
                        help="rules folder (percist.yaml: SUV and the SUV-peak sphere)")


def _referenced_series(seg: Any) -> str | None:
    for item in getattr(seg, "ReferencedSeriesSequence", []) or []:
        return str(item.SeriesInstanceUID)
    return None


def _source_volume(series_dir: Path, seg: Any) -> Volume:
    found = {uid: s for uid, s in scan(series_dir).series.items() if s.first.SOPClassUID != SEG_STORAGE}
    wanted = _referenced_series(seg)
    if wanted is not None and wanted in found:
        return load_volume(found[wanted]).volume
    if len(found) == 1:
        return load_volume(next(iter(found.values()))).volume
    raise ValueError(
        f"{series_dir}: the SEG's source series {wanted} is not there "
        f"({len(found)} image series found)"
    )


def _pet_to_suv(volume: Volume, rules_dir: Path) -> tuple[Volume, str, float | None, str]:
    """SUVbw volume, quantity name, peak sphere (ml) and a note; raw units if not possible."""
    from daemon.criteria.params import PercistRules
    from daemon.criteria.rules import load_model
    from daemon.criteria.suv import SuvError, suv_factors

    try:
        rules = load_model(PercistRules, rules_dir / "percist.yaml")
    except ConfigError as exc:
        return volume, "activity", None, f"rules not loaded, values in Bq/ml: {exc}"
    sphere = float(rules.percist.sulpeak_sphere_cm3)
    if volume.pet is None:
        return volume, "activity", sphere, "no PET header: values in the series' units"
    try:
        factors = suv_factors(volume.pet, rules.suv)
    except SuvError as exc:
        return volume, "activity", sphere, f"SUV not computable ({exc}): values in Bq/ml"
    suv = np.asarray(volume.array, dtype=np.float64) * factors.suv_per_bqml
    return volume.with_array(suv), "suv", sphere, "SUVbw"


def _image_point(p: ImagePoint) -> dict[str, Any]:
    return {"sop_instance_uid": p.slice.sop_instance_uid, "frame_number": p.slice.frame_number,
            "column": p.column, "row": p.row}


def _calliper(c: Calliper | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"length_mm": c.length_mm, "start": list(c.start), "end": list(c.end),
            "start_image": _image_point(c.start_image), "end_image": _image_point(c.end_image)}


def _row(number: int, label: str, component: int | None, m: Measurements, quantity: str) -> dict[str, Any]:
    return {
        "segment_number": number,
        "label": label,
        "component": component,
        "long_axis_mm": m.long_axis.length_mm if m.long_axis else None,
        "short_axis_mm": m.short_axis.length_mm if m.short_axis else None,
        "volume_ml": m.volume_ml,
        "max_3d_diameter_mm": m.max_3d_diameter_mm,
        "centroid": list(m.centroid) if m.centroid else None,
        "long_axis": _calliper(m.long_axis),
        "short_axis": _calliper(m.short_axis),
        "quantity": quantity,
        "intensity": dict(m.intensity),
    }


def measure_seg(series_dir: Path, seg_file: Path, *, components: bool = False,
                rules_dir: Path = RULES_DIR) -> list[dict[str, Any]]:
    seg = hd.seg.segread(seg_file)
    volume = _source_volume(series_dir, seg)
    quantity, sphere = {"CT": ("hu", None)}.get(volume.modality, ("signal", None))
    if volume.modality == "PT":
        volume, quantity, sphere, note = _pet_to_suv(volume, rules_dir)
        log.info("PET values: %s", note)
    options = MeasureOptions(quantity=quantity, peak_sphere_ml=sphere, split_components=components)
    names = {lab.value: lab.name for lab in segment_labels(seg)}
    rows = []
    for number, mask in sorted(seg_to_masks(seg, volume).items()):
        if not mask.any():
            rows.append({"segment_number": number, "label": names.get(number, ""), "component": None,
                         "long_axis_mm": None, "short_axis_mm": None, "volume_ml": 0.0,
                         "max_3d_diameter_mm": None, "quantity": quantity, "intensity": {}})
            continue
        lm = LesionMask(volume=volume, labels=mask.astype(np.int16), label_info=())
        for found in measure_mask(volume, lm, options):
            comp = found.component if components else None
            rows.append(_row(number, names.get(number, ""), comp, found.measurements, quantity))
    return rows


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'seg':>4} {'label':<20} {'long mm':>8} {'short mm':>8} {'vol ml':>8} {'3D mm':>7}  intensity")
    for r in rows:
        stats = ", ".join(f"{k}={v:.2f}" for k, v in r["intensity"].items())
        label = r["label"] + (f" #{r['component']}" if r.get("component") else "")
        print(f"{r['segment_number']:>4} {label[:20]:<20} {_fmt(r['long_axis_mm']):>8} "
              f"{_fmt(r['short_axis_mm']):>8} {_fmt(r['volume_ml'], 2):>8} "
              f"{_fmt(r['max_3d_diameter_mm']):>7}  {stats}")
        for axis in ("long_axis", "short_axis"):
            c = r.get(axis)
            if c:
                s, e = c["start"], c["end"]
                print(f"{'':>4}   {axis.replace('_', ' ')}: ({s[0]:.1f}, {s[1]:.1f}, {s[2]:.1f}) -> "
                      f"({e[0]:.1f}, {e[1]:.1f}, {e[2]:.1f}) mm")


def check_inputs(series_dir: Path, seg_file: Path) -> None:
    """A CommandError (exit 2) when the folder or the SEG file is not what the command needs."""
    if not series_dir.is_dir():
        raise CommandError(f"{series_dir}: no such folder; give the folder that holds the source series")
    if not seg_file.is_file():
        raise CommandError(f"{seg_file}: no such file; --seg takes a DICOM Segmentation file")
    try:
        header = pydicom.dcmread(seg_file, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, EOFError) as exc:
        raise CommandError(f"{seg_file}: not a DICOM file; --seg takes a DICOM Segmentation file") from exc
    sop_class = str(getattr(header, "SOPClassUID", ""))
    if sop_class != SEG_STORAGE:
        kind = UID(sop_class).name if sop_class else "no SOP Class UID"
        raise CommandError(f"{seg_file}: not a DICOM Segmentation ({kind}); --seg takes a SEG file")


def run(args: argparse.Namespace) -> int:
    check_inputs(args.series_dir, args.seg)
    try:
        rows = measure_seg(args.series_dir, args.seg, components=args.components, rules_dir=args.rules)
    except (OSError, ValueError, SegMappingError, AttributeError, KeyError) as exc:
        raise CommandError(str(exc), 1) from exc
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows)
    return 0
