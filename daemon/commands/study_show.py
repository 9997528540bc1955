"""`nadir study show STUDY_UID [--json]`: one study and everything Nadir did with it.

The study (state, revision, accession number, patient ID, and why when FAILED), its
series, the route decisions under the rules in force now (the routing file; the
jobs say which routes ran), its jobs of every revision, and its outputs with their
delivery to each destination.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from pydicom.uid import UID
from sqlalchemy.orm import Session

from daemon.commands._store import add_config_argument, load, open_session
from daemon.commands.errors import NOT_FOUND, CommandError
from daemon.commands.explain import decision_as_dict
from daemon.config import ConfigError, Settings
from daemon.routing import decide, explain
from daemon.routing_rules import load_rules
from daemon.store.jobs import job_as_dict
from daemon.store.models import Study
from daemon.store.outbox import OutboxRow, row_as_dict
from daemon.store.spool import Spool
from daemon.store.studies import (
    deliveries_of,
    failure_of,
    jobs_of,
    routes_of,
    series_of,
    study_as_dict,
    study_by_uid,
)
from daemon.store.summary import summary_of_stored


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("uid", metavar="STUDY_UID", help="the Study Instance UID (see `nadir study ls`)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _outputs(rows: list[OutboxRow]) -> list[dict[str, Any]]:
    """One entry per output instance, with its delivery to each destination."""
    outputs: dict[str, dict[str, Any]] = {}
    for row in rows:
        out = outputs.setdefault(row.sop_instance_uid, {
            "sop_instance_uid": row.sop_instance_uid,
            "sop_class_uid": row.sop_class_uid,
            "kind": UID(row.sop_class_uid).name,
            "job_id": row.job_id,
            "deliveries": [],
        })
        out["deliveries"].append(row_as_dict(row))
    return list(outputs.values())


def _routing(session: Session, settings: Settings, study: Study) -> dict[str, Any]:
    """The decision of the rules in force now, or why there is none."""
    rules_file = settings.routing.rules_file
    try:
        rules = load_rules(rules_file, settings.destinations.keys())
    except ConfigError as exc:
        return {"rules_file": str(rules_file), "error": str(exc), "decision": None, "lines": []}
    summary = summary_of_stored(session, Spool(settings.store.spool_dir), study)
    labels = {s.series_instance_uid: s.label for s in summary.series}
    decision = decide(summary, rules, datetime.now(UTC))
    return {"rules_file": str(rules_file), "error": None, "decision": decision_as_dict(decision),
            "lines": explain(decision)[1:], "labels": labels}


def gather(session: Session, settings: Settings, uid: str) -> dict[str, Any]:
    study = study_by_uid(session, uid)
    if study is None:
        raise CommandError(f"no study {uid} in the node's database (`nadir study ls` lists them)", NOT_FOUND)
    routing = _routing(session, settings, study)
    labels = routing.pop("labels", {})
    series = [{**s, "label": labels.get(s["series_instance_uid"])} for s in series_of(session, study)]
    routes = routes_of(session, [study])[study.study_instance_uid]
    return {
        "study": study_as_dict(study, routes, failure_of(session, study)),
        "series": series,
        "routing": routing,
        "jobs": [job_as_dict(j) for j in jobs_of(session, study)],
        "outputs": _outputs(deliveries_of(session, study)),
    }


def _print(found: dict[str, Any]) -> None:
    s = found["study"]
    print(f"Study {s['study_instance_uid']}: {s['state']}, revision {s['revision']}")
    print(f"  accession {s['accession_number'] or '-'}, patient ID {s['patient_id'] or '-'}")
    print(f"  {s['instances']} instance(s), received {s['first_received']} to {s['last_received']}")
    if s["failure"]:
        print(f"  why FAILED: {s['failure']}")
    print(f"\nSeries ({len(found['series'])}):")
    for x in found["series"]:
        revs = ",".join(str(r) for r in x["revisions"])
        print(f"  {x['modality'] or '-':<3} {x['instances']:>5} instance(s)  rev {revs:<5} "
              f"{x['label'] or ''}  {x['series_instance_uid']}")
    routing = found["routing"]
    print(f"\nRoute decisions under the rules in force now ({routing['rules_file']}):")
    if routing["error"]:
        print(f"  rules not loaded: {routing['error']}")
    for line in routing["lines"]:
        print(line)
    print(f"\nJobs ({len(found['jobs'])}):")
    for j in found["jobs"]:
        print(f"  {j['id']:>5} {j['state']:<9} rev {j['revision']:<3} {j['route']} ({j['pipeline']}), "
              f"{j['attempts']}/{j['max_attempts']} tries, {j['outputs']} output(s)")
        if j["error"]:
            print(f"        error: {j['error']}")
    print(f"\nOutputs ({len(found['outputs'])}) and deliveries:")
    for o in found["outputs"]:
        print(f"  {o['kind']} {o['sop_instance_uid']} (job {o['job_id'] or '-'})")
        for d in o["deliveries"]:
            status = d["last_status"] or "-"
            print(f"     -> {d['destination']}: {d['state']}, {d['attempts']} attempt(s), status {status}"
                  f" (outbox {d['id']})")
            if d["state"] != "SENT" and d["error"]:
                print(f"        {d['error']}")


def run(args: argparse.Namespace) -> int:
    settings = load(args)
    with open_session(settings) as session:
        found = gather(session, settings, args.uid)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        _print(found)
    return 0
