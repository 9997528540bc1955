"""The rules files the console edits: the routing file and the site's criteria overrides.

A candidate text is checked as `nadir check-config` checks the file (the routing file by
`routing_rules.load_rules`, with each route's pipeline parameters, model and criteria files;
a site override by `criteria.rules.RulesSource.check`, merged over the shipped file), with
every error at file:line of the real file. A valid text is saved atomically over the file
(temporary file, fsync, rename), as a new version in `rules_versions` with who and why;
the file as it was before (first edit, or changed outside the console) is kept as a version
first. The running node's `RulesHolder` then reloads it, as SIGHUP does.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from daemon.config import ConfigError, Settings
from daemon.criteria.rules import RULES_DIR, RulesSource, criterion_files
from daemon.pipelines.params import CRITERIA_FILES, rules_model
from daemon.routing import Rules
from daemon.routing_rules import load_rules
from daemon.store import console
from daemon.store.spool import fsync_dir

ROUTING = "routing"
SITE = "site:"
MAX_TEXT = 1_000_000  # characters of one rules file


class RulesEditError(Exception):
    """A request about rules files that cannot be done (unknown file, no site folder)."""


@dataclass(frozen=True)
class Checked:
    errors: tuple[str, ...]
    rules: Rules | None = None  # the routing file's, when valid

    @property
    def valid(self) -> bool:
        return not self.errors


def _errors(exc: ConfigError, candidate: Path, real: Path) -> tuple[str, ...]:
    return tuple(line.replace(str(candidate), str(real)) for line in str(exc).splitlines() if line.strip())


def _in_temp(name: str, text: str, check: Callable[[Path], Rules | None], real: Path) -> Checked:
    with tempfile.TemporaryDirectory(prefix="nadir-candidate-") as folder:
        candidate = Path(folder) / name
        candidate.write_text(text, encoding="utf-8")
        try:
            return Checked((), check(Path(folder)))
        except ConfigError as exc:
            return Checked(_errors(exc, candidate, real))


def check_routing(settings: Settings, text: str) -> Checked:
    """The candidate routing text checked as the node would load it."""
    real = settings.routing.rules_file
    if len(text) > MAX_TEXT:
        return Checked((f"{real}: longer than {MAX_TEXT} characters",))
    return _in_temp(real.name, text, lambda folder: load_rules(
        folder / real.name, settings.destinations.keys(), settings.criteria.site_dir), real)


def site_names() -> list[str]:
    """The criteria rules files a site folder may override."""
    return sorted({*criterion_files(), *(n for names in CRITERIA_FILES.values() for n in names)})


def site_file(settings: Settings, name: str) -> Path:
    site = settings.criteria.site_dir
    if site is None:
        raise RulesEditError("criteria.site_dir is not set: the node reads the shipped criteria files only")
    if name not in site_names():
        raise RulesEditError(f"{name!r} is not a criterion's rules file (the files: {', '.join(site_names())})")
    return site / f"{name}.yaml"


def check_site(settings: Settings, name: str, text: str) -> Checked:
    """A candidate site override of `name`: merged over the shipped file and validated.
    An empty text removes the override (always valid)."""
    real = site_file(settings, name)
    if not text.strip():
        return Checked(())
    if len(text) > MAX_TEXT:
        return Checked((f"{real}: longer than {MAX_TEXT} characters",))

    def check(folder: Path) -> None:
        RulesSource(RULES_DIR, folder).check(name, rules_model(name))

    return _in_temp(f"{name}.yaml", text, check, real)


def kind_path(settings: Settings, kind: str) -> Path:
    if kind == ROUTING:
        return settings.routing.rules_file
    if kind.startswith(SITE):
        return site_file(settings, kind[len(SITE):])
    raise RulesEditError(f"unknown rules file kind {kind!r}")


def check_kind(settings: Settings, kind: str, text: str) -> Checked:
    if kind == ROUTING:
        return check_routing(settings, text)
    return check_site(settings, kind[len(SITE):], text)


def current_text(path: Path) -> str:
    """The file's text ('' when there is none)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


@dataclass(frozen=True)
class Saved:
    version: console.RulesVersion
    path: Path


def save(session: Session, settings: Settings, kind: str, text: str, comment: str, user: str, now: datetime,
         remote: str | None, base_sha256: str | None = None) -> Saved | Checked:
    """Check and save `text` as the file of `kind`; the Checked result when invalid.
    `base_sha256`: the text the editor started from; the save is refused (RulesEditError)
    when the file changed since. Commits."""
    path = kind_path(settings, kind)
    checked = check_kind(settings, kind, text)
    if not checked.valid:
        return checked
    before = current_text(path)
    if base_sha256 is not None and base_sha256 != console.sha256_text(before):
        raise RulesEditError(f"{path} changed since the editor loaded it: reload the page and edit again")
    known = console.versions_of(session, kind, limit=1)
    if before and (not known or known[0].sha256 != console.sha256_text(before)):
        why = "the file as found before the first edit in the console" if not known else "changed outside the console"
        console.add_version(session, kind, str(path), before, why, "(file)", now)
    if text.strip():
        _write_atomically(path, text)
    else:
        path.unlink(missing_ok=True)
    version = console.add_version(session, kind, str(path), text, comment, user, now)
    console.audit(session, now, user, "rules.save", f"{kind} {path}", f"version {version.id}: {comment}", remote)
    session.commit()
    return Saved(version, path)


def diff(old: str, new: str, old_name: str, new_name: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""))


def criteria_files() -> list[dict[str, Any]]:
    """The shipped criteria rules files, read only: name, path, text and every citation."""
    out = []
    for name in site_names() + [p.stem for p in sorted(RULES_DIR.glob("*.yaml"))
                                if p.stem not in site_names() and p.stem != "routing"]:
        path = RULES_DIR / f"{name}.yaml"
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        out.append({"name": name, "path": str(path), "text": text, "citations": _citations(data)})
    return out


def _citations(data: Any, where: str = "") -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "citation" and isinstance(value, dict) and "text" in value:
                found.append({"section": where or "(file)", "text": " ".join(str(value["text"]).split())})
            elif isinstance(value, dict):
                found += _citations(value, f"{where}.{key}" if where else str(key))
    return found
