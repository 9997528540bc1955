"""What the console shows, as data: the API returns it as JSON, the pages render it.

Each view composes the store's queries that the CLI uses (`daemon.store.studies`,
`daemon.store.jobs`, `daemon.store.outbox`, `nadir study show`'s `gather`), so the CLI,
the API and the pages say the same. Patient data stops at what a PACS admin sees: the
patient ID, the study date and description (no names, no accession numbers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon import resources
from daemon.commands.study_show import gather
from daemon.config import ConfigError, Settings
from daemon.routing import study_values
from daemon.store.jobs import Job, JobState, job_as_dict
from daemon.store.models import Instance, Study, StudyState
from daemon.store.outbox import OutboxRow, OutboxState, attempts_of, row_as_dict
from daemon.store.spool import Spool
from daemon.store.studies import (
    StudyFilter,
    failure_of,
    list_studies,
    routes_of,
    study_as_dict,
    study_by_uid,
)
from daemon.store.summary import summary_of_stored

HIDDEN = ("accession_number",)  # what the console does not show (PHI beyond a PACS admin's view)


def _public(study: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in study.items() if k not in HIDDEN}


def studies(session: Session, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """As `nadir study ls --json`, without accession numbers."""
    found = list_studies(session, StudyFilter(state=state, limit=limit))
    routes = routes_of(session, found)
    return [_public(study_as_dict(s, routes[s.study_instance_uid], failure_of(session, s))) for s in found]


def study(session: Session, settings: Settings, spool: Spool, uid: str) -> dict[str, Any] | None:
    """As `nadir study show --json` (None: no such study), with the study's date and
    description from its stored headers, and each delivery's attempts."""
    row = study_by_uid(session, uid)
    if row is None:
        return None
    found = gather(session, settings, uid)
    found["study"] = _public(found["study"])
    try:
        summary = summary_of_stored(session, spool, row)
    except (OSError, ValueError):
        summary = None
    for key, keyword in (("study_date", "StudyDate"), ("study_description", "StudyDescription")):
        found["study"][key] = " ".join(study_values(summary, keyword)) if summary is not None else None
    for output in found["outputs"]:
        for delivery in output["deliveries"]:
            delivery["attempt_log"] = attempts_of(session, delivery["id"])
    return found


def jobs(session: Session, state: str | None = None, route: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    query = select(Job)
    if state is not None:
        query = query.where(Job.state == state)
    if route is not None:
        query = query.where(Job.route == route)
    return [job_as_dict(j) for j in session.scalars(query.order_by(Job.id.desc()).limit(limit))]


def outbox(session: Session, state: str | None = None, destination: str | None = None,
           limit: int = 200) -> list[dict[str, Any]]:
    query = select(OutboxRow)
    if state is not None:
        query = query.where(OutboxRow.state == state)
    if destination is not None:
        query = query.where(OutboxRow.destination == destination)
    return [row_as_dict(r) for r in session.scalars(query.order_by(OutboxRow.id.desc()).limit(limit))]


def overview(session: Session, now: datetime) -> dict[str, Any]:
    """Counts by state, the last hour's throughput, the jobs needing attention, the outbox
    per destination with the last status its PACS gave, and the latest studies."""
    hour = now - timedelta(hours=1)
    by_state = dict(session.execute(select(Study.state, func.count(Study.id)).group_by(Study.state)).all())
    job_states = dict(session.execute(select(Job.state, func.count(Job.id)).group_by(Job.state)).all())
    last_hour = {
        "instances": session.scalar(select(func.count(Instance.id)).where(Instance.received >= hour)) or 0,
        "studies_done": session.scalar(select(func.count(Study.id)).where(
            Study.state == StudyState.DONE, Study.state_changed >= hour)) or 0,
        "jobs_finished": session.scalar(select(func.count(Job.id)).where(
            Job.state == JobState.DONE, Job.finished >= hour)) or 0,
    }
    attention = [job_as_dict(j) for j in session.scalars(
        select(Job).where(Job.state.in_([JobState.QUEUED, JobState.RUNNING, JobState.RETRYING, JobState.FAILED]))
        .order_by(Job.id.desc()).limit(50))]
    return {
        "studies": {s.value: int(by_state.get(s.value, 0)) for s in StudyState},
        "jobs": {s.value: int(job_states.get(s.value, 0)) for s in JobState},
        "last_hour": {k: int(v) for k, v in last_hour.items()},
        "attention": attention,
        "outbox": destinations_summary(session),
        "recent": studies(session, limit=20),
    }


def destinations_summary(session: Session) -> list[dict[str, Any]]:
    """Per destination: outbox rows by state and the last status the peer gave."""
    counts = session.execute(select(OutboxRow.destination, OutboxRow.state, func.count(OutboxRow.id))
                             .group_by(OutboxRow.destination, OutboxRow.state)).all()
    out: dict[str, dict[str, Any]] = {}
    for dest, state, count in counts:
        entry = out.setdefault(dest, {"destination": dest, **{s.value.lower(): 0 for s in OutboxState},
                                      "last_status": None, "last_attempt": None, "last_error": None})
        entry[str(state).lower()] = int(count)
    for dest, entry in out.items():
        last = session.scalar(select(OutboxRow).where(OutboxRow.destination == dest, OutboxRow.last_attempt.is_not(None))
                              .order_by(OutboxRow.last_attempt.desc()).limit(1))
        if last is not None:
            d = row_as_dict(last)
            entry.update(last_status=d["last_status"], last_attempt=d["last_attempt"], last_error=d["error"])
    return sorted(out.values(), key=lambda e: str(e["destination"]))


def destinations(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Each destination of the settings (and any other the outbox names) with its history."""
    summary = {d["destination"]: d for d in destinations_summary(session)}
    out = []
    for name in sorted({*settings.destinations, *summary}):
        dest = settings.destinations.get(name)
        out.append({
            "name": name,
            "ae_title": dest.ae_title if dest else None,
            "host": dest.host if dest else None,
            "port": dest.port if dest else None,
            "tls": dest is not None and dest.tls is not None,
            "configured": dest is not None,
            "outbox": summary.get(name),
            "history": outbox(session, destination=name, limit=20),
        })
    return out


def models(models_dir: Path = resources.MODELS_DIR) -> list[dict[str, Any]]:
    """Each model folder's manifest (or why it is refused), and the provider it would run on here."""
    from daemon.segment.manifest import MANIFEST_NAME, load_manifest

    provider = _provider()
    out: list[dict[str, Any]] = []
    for folder in sorted(p for p in models_dir.iterdir() if (p / MANIFEST_NAME).is_file()) if models_dir.is_dir() else []:
        try:
            manifest, _lines = load_manifest(folder)
        except ConfigError as exc:
            out.append({"folder": folder.name, "error": str(exc)})
            continue
        out.append({
            "folder": folder.name, "error": None, "name": manifest.name, "version": manifest.version,
            "sha256": manifest.sha256, "modality": manifest.modality, "intended_use": manifest.intended_use,
            "clinical_use": manifest.clinical_use, "description": manifest.description,
            "labels": [lab.name for lab in manifest.output.labels],
            "accuracy": [a.model_dump() for a in manifest.accuracy],
            "licence": manifest.licence.name, "training": manifest.provenance.training, "provider": provider,
        })
    return out


def _provider() -> str:
    """The best ONNX Runtime provider this process could use."""
    import onnxruntime

    from daemon.segment.runtime import choose_providers, gpu_present

    return choose_providers("auto", onnxruntime.get_available_providers(), gpu_present(), False)[0]
