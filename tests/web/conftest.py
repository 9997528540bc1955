"""A console on a real SQLite database with two local accounts (admin, viewer), a routing
file of its own, and a stored CT study whose files are in the spool; driven in process by
FastAPI's TestClient (the browser test, test_console_browser.py, drives a real node)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jobs.studies import make_series, write_study
from pydicom.uid import generate_uid
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.routing_rules import RulesHolder
from daemon.store.console import Role, put_user
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.models import Instance, Study, StudyState
from daemon.store.spool import Spool
from daemon.web.app import create_app
from daemon.web.deps import WebDeps
from daemon.web.passwords import hash_password

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
PASSWORD = {"ada": "admin-password-1", "vic": "viewer-password-1"}
RULES = """\
version: 1
routes:
  - name: qa
    pipeline: qa_report
    destinations: [pacs]
    match: {attribute: Modality, equals: CT}
"""


@functools.cache
def hashed(name: str) -> str:
    """The password hash of a test user (made once per session)."""
    return hash_password(PASSWORD[name])


@dataclass
class Console:
    settings: Settings
    sessions: sessionmaker[Session]
    deps: WebDeps
    client: TestClient
    study_uid: str
    rules_file: Path

    def login(self, name: str) -> str:
        """Sign in through the form; returns the page's CSRF token."""
        page = self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = self.client.post("/login", data={"username": name, "password": PASSWORD[name],
                                             "csrf_token": token.group(1), "next": "/"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", r.text
        home = self.client.get("/")
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
        assert csrf is not None and csrf.group(1)
        return csrf.group(1)


def store_study(sessions: sessionmaker[Session], spool_root: Path, calling_ae: str = "CT_SCANNER",
                count: int = 3) -> str:
    """A DONE CT study (synthetic) whose files are in the spool."""
    uid = generate_uid()
    series = make_series(uid, positions=[float(i) for i in range(count)], description="AXIAL")
    paths = write_study(spool_root / uid, [series])
    with sessions() as s:
        study = Study(study_instance_uid=uid, state=StudyState.DONE, revision=1, patient_id="SYNTH-1",
                      accession_number="ACC-SECRET", first_received=NOW, last_received=NOW, revision_started=NOW,
                      state_changed=NOW, instance_count=count)
        s.add(study)
        s.flush()
        for ds, path in zip(series, paths, strict=True):
            s.add(Instance(sop_instance_uid=ds.SOPInstanceUID, study_id=study.id,
                           series_instance_uid=ds.SeriesInstanceUID, sop_class_uid=ds.SOPClassUID,
                           transfer_syntax_uid=ds.file_meta.TransferSyntaxUID, modality="CT",
                           path=str(path.relative_to(spool_root)), size=path.stat().st_size, revision=1,
                           calling_ae=calling_ae, received=NOW))
        s.commit()
    return uid


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    rules = tmp_path / "routing.yaml"
    rules.write_text(RULES)
    settings = Settings(store={"data_dir": tmp_path / "data"}, routing={"rules_file": rules},
                        destinations={"pacs": {"ae_title": "PACS", "host": "127.0.0.1", "port": 1}})
    settings.store.data_dir.mkdir()
    engine = make_engine(settings.store.effective_database_url)
    create_schema(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        for name, role in (("ada", Role.ADMIN), ("vic", Role.VIEWER)):
            put_user(s, name, role, hashed(name), NOW)
    spool = Spool(settings.store.spool_dir)
    spool.prepare()
    uid = store_study(sessions, spool.root)
    holder = RulesHolder(rules, settings.destinations.keys())
    deps = WebDeps(settings, sessions, spool, holder, {"database": lambda: None}, clock=lambda: NOW)
    with TestClient(create_app(deps), base_url="http://testserver") as client:
        yield Console(settings, sessions, deps, client, uid, rules)
    engine.dispose()
