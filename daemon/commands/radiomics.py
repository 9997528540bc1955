"""`nadir radiomics SERIES_DIR --seg SEG_FILE [--csv OUT] [--profile NAME] [--json]`: PyRadiomics
features of each segment of a DICOM SEG on its source series, for research.

The profile is one of rules/radiomics.yaml (default: its `default_profile`); every row
carries the profile, the hash of its settings and the PyRadiomics version. One series has no
prior: the CSV's delta columns are absent and its DeltaStatus says why. A segment that
PyRadiomics refuses (too small or flat) is listed as not computable. No classifier is applied
(../shared/criteria/radiomics.md section 1: export features only).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import highdicom as hd

from daemon import resources
from daemon.commands.errors import CommandError
from daemon.commands.measure import SEG_STORAGE, check_inputs
from daemon.config import ConfigError
from daemon.imaging.loader import scan
from daemon.imaging.series import load_volume
from daemon.measure.radiomics import (
    MISSING_RADIOMICS,
    RadiomicsProfile,
    extract_features,
    profile_hash,
    pyradiomics_version,
)
from daemon.measure.radiomics_io import RadiomicsRow, load_radiomics_rules, write_radiomics_csv
from daemon.measure.seg_mapping import SegMappingError, seg_to_masks, segment_labels
from daemon.volume import Volume

RULES_DIR = resources.RULES_DIR
NO_PRIOR = "not computable: one series, no prior timepoint (nadir radiomics)"
# the seed's best feature of each family (radiomics.md section 2), shown in the table
SHOWN = ("original_shape_Sphericity", "original_firstorder_Energy", "original_ngtdm_Complexity",
         "original_glcm_DifferenceEntropy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("series_dir", type=Path, metavar="SERIES_DIR",
                        help="folder holding the source series (other series and the SEG may be there too)")
    parser.add_argument("--seg", type=Path, required=True, metavar="SEG_FILE", help="the DICOM Segmentation")
    parser.add_argument("--csv", type=Path, metavar="OUT", help="write the features as CSV, one row per segment")
    parser.add_argument("--profile", metavar="NAME", help="a profile of rules/radiomics.yaml (default: its default)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per segment")
    parser.add_argument("--rules", type=Path, default=RULES_DIR, help="rules folder (radiomics.yaml)")


def _profile(rules_dir: Path, name: str | None) -> tuple[str, RadiomicsProfile]:
    try:
        rules = load_radiomics_rules(rules_dir / "radiomics.yaml")
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    chosen = name or rules.default_profile
    if chosen not in rules.profiles:
        raise CommandError(f"unknown radiomics profile {chosen!r}; {rules_dir / 'radiomics.yaml'} has: "
                           f"{', '.join(sorted(rules.profiles))}")
    return chosen, rules.profile(chosen)


def _source_volume(series_dir: Path, seg: Any) -> Volume:
    """The SEG's source series in the folder (the only image series when the SEG names none there)."""
    found = {uid: s for uid, s in scan(series_dir).series.items() if str(s.first.SOPClassUID) != SEG_STORAGE}
    wanted = next((str(i.SeriesInstanceUID) for i in getattr(seg, "ReferencedSeriesSequence", []) or []), None)
    if wanted is not None and wanted in found:
        return load_volume(found[wanted]).volume
    if wanted is None and len(found) == 1:
        return load_volume(next(iter(found.values()))).volume
    raise CommandError(f"the SEG is not on a series of {series_dir}: it references series {wanted}, "
                       f"the folder holds {', '.join(sorted(found)) or 'no image series'}")


def radiomics_rows(series_dir: Path, seg_file: Path, profile_name: str | None = None,
                   rules_dir: Path = RULES_DIR) -> list[RadiomicsRow]:
    """One row per segment of the SEG, features computed on its source series."""
    name, profile = _profile(rules_dir, profile_name)
    seg = hd.seg.segread(seg_file)
    volume = _source_volume(series_dir, seg)
    try:
        masks = seg_to_masks(seg, volume)
    except SegMappingError as exc:
        raise CommandError(f"the SEG is not on the series of {series_dir}: {exc}") from exc
    labels = {lab.value: lab.name for lab in segment_labels(seg)}
    uids = {int(s.SegmentNumber): str(s.get("TrackingUID", "")) for s in seg.SegmentSequence}
    first = seg.ReferencedSeriesSequence[0] if "ReferencedSeriesSequence" in seg else None
    series_uid = str(first.SeriesInstanceUID) if first is not None else ""
    version, digest = pyradiomics_version(), profile_hash(profile)
    rows = []
    for number, mask in sorted(masks.items()):
        features = extract_features(volume, mask, profile)
        status = "computed" if features else (
            "not computable: empty segment" if not mask.any() else "not computable: PyRadiomics refused the segment "
                                                                    "(too small or flat for the profile)")
        rows.append(RadiomicsRow(
            str(seg.StudyInstanceUID), series_uid, labels.get(number, str(number)), uids.get(number, ""), number,
            str(seg.SOPInstanceUID), name, digest, version, features, str(seg.get("StudyDate", "")), status,
            delta_status=NO_PRIOR,
        ))
    return rows


def _json(rows: list[RadiomicsRow]) -> list[dict[str, Any]]:
    return [{"segment_number": r.segment_number, "label": r.tracking_id, "status": r.feature_status,
             "profile": r.profile, "profile_hash": r.profile_hash, "pyradiomics_version": r.pyradiomics_version,
             "features": dict(r.features)} for r in rows]


def _print_table(rows: list[RadiomicsRow]) -> None:
    short = [n.removeprefix("original_") for n in SHOWN]
    print(f"{'seg':>4} {'label':<16} {'n':>4}  " + " ".join(f"{s[:24]:>24}" for s in short))
    for r in rows:
        cells = " ".join(f"{r.features[n]:>24.6g}" if n in r.features else f"{'-':>24}" for n in SHOWN)
        print(f"{r.segment_number:>4} {r.tracking_id[:16]:<16} {len(r.features):>4}  {cells}")
        if r.feature_status != "computed":
            print(f"{'':>4}   {r.feature_status}")
    if rows:
        r = rows[0]
        print(f"profile {r.profile} (settings {r.profile_hash}), PyRadiomics {r.pyradiomics_version}; "
              "research use only, no classifier applied")


def run(args: argparse.Namespace) -> int:
    check_inputs(args.series_dir, args.seg)
    if importlib.util.find_spec("radiomics") is None:
        raise CommandError(MISSING_RADIOMICS)
    try:
        rows = radiomics_rows(args.series_dir, args.seg, args.profile, args.rules)
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise CommandError(str(exc), 1) from exc
    if args.csv is not None:
        try:
            write_radiomics_csv(args.csv, rows)
        except OSError as exc:
            raise CommandError(f"{args.csv}: cannot write the CSV: {exc.strerror or exc}") from exc
    if args.json:
        json.dump(_json(rows), sys.stdout, indent=2)
        print()
    else:
        _print_table(rows)
        if args.csv is not None:
            print(f"written: {args.csv}")
    return 0
