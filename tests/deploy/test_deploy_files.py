"""The deployment files are usable as shipped: example settings validate, compose and unit are coherent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from daemon.config import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("name", ["nadir.yaml", "nadir-postgres.yaml"])
def test_example_settings_validate(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("NADIR_")]:
        monkeypatch.delenv(key)
    settings = load_settings(DEPLOY / name)
    assert "pacs" in settings.destinations
    if name == "nadir-postgres.yaml":
        assert settings.store.effective_database_url.startswith("postgresql+psycopg://")
    else:
        assert settings.store.effective_database_url.startswith("sqlite:///")


def test_compose_runs_nadir_orthanc_postgres() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"nadir", "orthanc", "db"}
    env = services["nadir"]["environment"]
    assert env["NADIR_STORE__DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["NADIR_DESTINATIONS__PACS__HOST"] == "orthanc"


def test_systemd_unit_serves_the_checked_config() -> None:
    unit = (DEPLOY / "nadir.service").read_text()
    assert "ExecStart=/opt/nadir/.venv/bin/nadir serve --config /etc/nadir/nadir.yaml" in unit
    assert "ExecStartPre=/opt/nadir/.venv/bin/nadir check-config /etc/nadir/nadir.yaml" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
