"""`nadir evaluate-model MODEL_DIR CASES_DIR [--json]`: judge a segmentation model against
its readers, as the seed study judged its UNETR (Dessoude 2025).

Each case (CASES_DIR/<case>/image/ and reference.dcm, a SEG or RTSTRUCT drawn by a reader;
see daemon.commands.evaluation_cases for the layout and cases.yaml) is segmented as the
route would (the manifest's preprocessing, threshold and minimum lesion volume) and
compared with the reader's mask: Dice, 95 % Hausdorff distance (mm, surface-based in
patient space), lesion-wise sensitivity (a reader's lesion is detected when the model
covers at least --min-overlap of it, and one voxel; default: one voxel in common) and
false positives (model lesions touching no reader's lesion), the long-axis error of each
detected lesion (the route's measurement on both masks). Cases grouped into a follow-up in
cases.yaml get RANO-BM on both sides, visit by visit, and the categories compared.

--json prints {"cases": [...], "summary": {...}}:
- cases[]: case, reference ("SEG" | "RTSTRUCT"), series_instance_uid, seconds (the model's
  run), dice, hd95_mm, reference_lesions, detected_lesions, sensitivity, predicted_lesions,
  false_positives, lesions[] (reference, reference_long_axis_mm, covered_fraction,
  detected, predicted, predicted_long_axis_mm, long_axis_error_mm = model - reader), notes[]
  (why a metric is null);
- followups[]: patient, visits[] (case, date, model, reference: the RANO-BM categories,
  agree, notes[]);
- summary: dice, hd95_mm, sensitivity, false_positives, long_axis_abs_error_mm,
  long_axis_error_mm, each {n, mean, sd, not_computable} (per case; the long-axis errors
  per detected lesion over all cases; sd is the sample SD), lesions {reference, detected,
  false_positive}, rano_bm {compared, agree}, min_overlap, model {name, version, sha256}.
A null is a metric that is not computable (its reason is in the case's notes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from daemon.commands.errors import CommandError
from daemon.commands.evaluation_cases import (
    case_folders,
    check_case_files,
    read_case,
    read_followups,
)
from daemon.pipelines.brain_mets_response import RanoBmRule
from daemon.pipelines.model_evaluation import (
    CaseEvaluation,
    EvaluationSummary,
    FollowUpAgreement,
    evaluate_case,
    followup_agreement,
    predict,
    summary,
)
from daemon.resources import RULES_DIR
from daemon.segment import LoadedModel, ModelError, load_model
from daemon.volume import Volume

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="the model folder (model.yaml, model.onnx)")
    parser.add_argument("cases_dir", type=Path, metavar="CASES_DIR",
                        help="one folder per case: image/ (the series) and reference.dcm (SEG or RTSTRUCT)")
    parser.add_argument("--json", action="store_true", help='print {"cases": [...], "summary": {...}}')
    parser.add_argument("--min-overlap", type=float, default=0.0, metavar="FRACTION",
                        help="a reader's lesion is detected when the model covers this fraction of it "
                             "(and one voxel); default 0: one voxel in common")
    parser.add_argument("--providers", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto",
                        help="ONNX Runtime providers (default auto)")
    parser.add_argument("--rules", type=Path, default=RULES_DIR, help="rules folder (rano_bm.yaml)")


def _model(folder: Path, providers: str) -> LoadedModel:
    if not folder.is_dir():
        raise CommandError(f"{folder}: no such folder; give a model folder (model.yaml and the ONNX file)")
    try:
        return load_model(folder, providers=providers)  # type: ignore[arg-type]
    except ModelError as exc:
        raise CommandError(f"{folder}: the model does not load: {exc}") from exc


def _case_json(c: CaseEvaluation, kind: str) -> dict[str, Any]:
    return {
        "case": c.case, "reference": kind, "series_instance_uid": c.series_instance_uid,
        "seconds": round(c.seconds, 2), "dice": c.dice, "hd95_mm": c.hd95_mm,
        "reference_lesions": len(c.detection.matches), "detected_lesions": c.detection.detected,
        "sensitivity": c.detection.sensitivity, "predicted_lesions": c.detection.predicted_lesions,
        "false_positives": len(c.detection.false_positives),
        "lesions": [dataclasses.asdict(row) for row in c.lesions], "notes": list(c.notes),
    }


def _followup_json(f: FollowUpAgreement) -> dict[str, Any]:
    return {"patient": f.patient, "visits": [
        {"case": v.case, "date": v.date.isoformat(), "model": v.model, "reference": v.reference,
         "agree": v.agree, "notes": list(v.notes)} for v in f.visits]}


def _summary_json(s: EvaluationSummary, min_overlap: float, model: LoadedModel) -> dict[str, Any]:
    m = model.manifest
    metrics = ("dice", "hd95_mm", "sensitivity", "false_positives", "long_axis_abs_error_mm", "long_axis_error_mm")
    out: dict[str, Any] = {k: dataclasses.asdict(getattr(s, k)) for k in metrics}
    out["lesions"] = {"reference": s.reference_lesions, "detected": s.detected_lesions,
                      "false_positive": s.false_positive_lesions}
    out["rano_bm"] = {"compared": s.rano_bm_compared, "agree": s.rano_bm_agree}
    out["min_overlap"] = min_overlap
    out["model"] = {"name": m.name, "version": m.version, "sha256": m.sha256}
    return out


def evaluate(model_dir: Path, cases_dir: Path, *, min_overlap: float = 0.0, providers: str = "auto",
             rules: Path = RULES_DIR) -> dict[str, Any]:
    """The whole evaluation as the --json object."""
    if not 0.0 <= min_overlap <= 1.0:
        raise CommandError(f"--min-overlap {min_overlap}: a fraction in [0, 1]")
    folders = case_folders(cases_dir)
    followups = read_followups(cases_dir, {f.name for f in folders})
    for folder in folders:  # every case's files there before the first model run
        check_case_files(folder)
    model = _model(model_dir, providers)
    in_followup = {v.case for f in followups for v in f.visits}
    evaluated: dict[str, CaseEvaluation] = {}
    volumes: dict[str, Volume] = {}  # kept for the follow-ups' registration only
    rows = []
    for folder in folders:
        case = read_case(folder)
        if case.name in in_followup:
            volumes[case.name] = case.volume
        started = time.monotonic()
        predicted = predict(case.volume, model)
        took = time.monotonic() - started
        ev = evaluate_case(case.name, case.volume, case.reference, predicted, min_overlap, took, case.notes)
        evaluated[case.name] = ev
        rows.append(_case_json(ev, case.reference_kind))
        log.info("case %s: Dice %s, %d/%d lesions, %d false positive(s)", case.name, ev.dice,
                 ev.detection.detected, len(ev.detection.matches), len(ev.detection.false_positives))
    rule = RanoBmRule(rules)
    agreements = [followup_agreement(f.patient, [(evaluated[v.case], volumes[v.case], v.date) for v in f.visits],
                                     rule) for f in followups]
    s = summary(list(evaluated.values()), agreements)
    return {"cases": rows, "followups": [_followup_json(f) for f in agreements],
            "summary": _summary_json(s, min_overlap, model)}


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _print(result: dict[str, Any]) -> None:
    print(f"{'case':<20} {'Dice':>6} {'HD95 mm':>8} {'found':>7} {'FP':>3} {'|dLA| mm':>9}")
    for c in result["cases"]:
        errs = [abs(r["long_axis_error_mm"]) for r in c["lesions"] if r["long_axis_error_mm"] is not None]
        mean_err = sum(errs) / len(errs) if errs else None
        print(f"{c['case'][:20]:<20} {_f(c['dice'], 3):>6} {_f(c['hd95_mm']):>8} "
              f"{c['detected_lesions']:>3}/{c['reference_lesions']:<3} {c['false_positives']:>3} {_f(mean_err):>9}")
        for note in c["notes"]:
            print(f"{'':<20} {note}")
    for f in result["followups"]:
        for v in f["visits"]:
            said = {True: "agree", False: "DISAGREE", None: "not comparable"}[v["agree"]]
            print(f"RANO-BM {f['patient']} {v['date']} ({v['case']}): model {v['model'] or '-'}, "
                  f"reader {v['reference'] or '-'}: {said}" + "".join(f"; {n}" for n in v["notes"]))
    s = result["summary"]
    print("\nsummary (mean +/- SD):")
    for key in ("dice", "hd95_mm", "sensitivity", "false_positives", "long_axis_abs_error_mm", "long_axis_error_mm"):
        m = s[key]
        extra = f" ({m['not_computable']} not computable)" if m["not_computable"] else ""
        print(f"  {key:<24} {_f(m['mean'], 3)} +/- {_f(m['sd'], 3)}  n={m['n']}{extra}")
    les, rano = s["lesions"], s["rano_bm"]
    print(f"  lesions: {les['detected']} of {les['reference']} detected, {les['false_positive']} false positive(s)")
    print(f"  RANO-BM: {rano['agree']} of {rano['compared']} follow-up categories agree")


def run(args: argparse.Namespace) -> int:
    result = evaluate(args.model_dir, args.cases_dir, min_overlap=args.min_overlap, providers=args.providers,
                      rules=args.rules)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        _print(result)
    return 0
