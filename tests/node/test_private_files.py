"""What the node creates is its user's alone: the data folder, the spool and its tmp/
0700, nadir.db 0600 (the umask the node sets, as its systemd units do with UMask=0077),
and an output written afterwards 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs.studies import make_series

from daemon.config import Settings
from daemon.runtime.context import build_context
from daemon.store import outbox as ob

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    before = os.umask(0o022)  # what a login shell or a container usually has
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_spool_and_outputs_are_private(tmp_path: Path, usual_umask: None) -> None:
    settings = Settings(store={"data_dir": tmp_path / "data"})
    ctx = build_context(settings)
    try:
        data = settings.store.data_dir
        assert mode(data) == 0o700
        assert mode(data / "nadir.db") == 0o600
        assert mode(settings.store.spool_dir) == 0o700 and mode(settings.store.spool_dir / "tmp") == 0o700
        ds = make_series("1.2.826.0.1.3680043.10.1442.79", positions=[0])[0]
        relative = ob.write_output(data, ds)
        output = ob.outputs_root(data) / relative
        assert mode(output) == 0o600 and mode(output.parent) == 0o700
    finally:
        ctx.engine.dispose()


@pytest.mark.parametrize("unit", ["nadir.service", "nadir-worker@.service"])
def test_systemd_units_set_a_private_umask(unit: str) -> None:
    lines = (DEPLOY / unit).read_text(encoding="utf-8").splitlines()
    assert "UMask=0077" in lines
    if unit == "nadir.service":
        assert "StateDirectoryMode=0700" in lines
