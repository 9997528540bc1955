"""Fixtures of the receiving node's integration tests: a synthetic study, a node
factory, and the database backends (SQLite file; a private PostgreSQL database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from node_harness import (
    Node,
    Study,
    free_port,
    write_series,
)
from pydicom.uid import generate_uid


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Synthetic: a 200-slice CT (128x128) and a 3D MR of 40 slices, JPEG-LS compressed."""
    root = tmp_path_factory.mktemp("study")
    uid = generate_uid()
    ct = write_series(root / "ct", "CT", 200, 128, 128, uid, seed=1)
    mr = write_series(root / "mr", "MR", 40, 96, 96, uid, compressed=True, seed=2)
    return Study(uid, ct, mr)


@pytest.fixture(scope="session")
def kill_loads(tmp_path_factory: pytest.TempPathFactory) -> list[list[Path]]:
    """Synthetic: five studies of 150 CT slices of 256x256, one per kill -9 trial."""
    root = tmp_path_factory.mktemp("kill")
    return [
        write_series(root / f"ct{i}", "CT", 150, 256, 256, generate_uid(), seed=10 + i)
        for i in range(5)
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the default: SQLite in the data folder
        return
    yield request.getfixturevalue("postgres_url")  # a database on the session's private cluster


@pytest.fixture
def make_node(tmp_path: Path, database_url: str | None) -> Iterator[type[Node]]:
    started: list[Node] = []

    def factory(**kwargs: object) -> Node:
        name = f"data{len(started)}"
        node = Node(data_dir=tmp_path / name, port=free_port(), database_url=database_url, **kwargs)  # type: ignore[arg-type]
        started.append(node)
        return node

    yield factory  # type: ignore[misc]
    for node in started:
        if node.proc is not None:
            node.stop()
