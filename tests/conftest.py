"""Fixtures shared by every part's tests, among them the private PostgreSQL and RabbitMQ
servers of the session (daemon.demo.private_servers): each is started at the first test
that asks for it and stopped at the end of the session. A server that cannot start fails
the tests that need it, with the reason; none is skipped."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.demo import private_servers

REPO_ROOT = Path(__file__).resolve().parents[1]


# The test files that take longest, longest first (worker seconds from `pytest -n 2 --dist loadfile
# --durations=0`: the browser test about 340 s, the liver e2e about 180 s, the next 120 s). They are
# collected before the rest: --dist loadfile hands the files to the workers in collection order, so
# each of these starts at once on a worker of its own and the short files fill in around them, instead
# of one worker being left alone with a five-minute file at the end (the browser test was collected last).
LONGEST_FILES = ("tests/viewer/test_ohif.py", "tests/e2e/test_liver_mets_e2e.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first = {name: n for n, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::")[0], len(first)))  # stable: the rest keep their order


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


def started(what: str, start: Callable[[], str]) -> str:
    """`start()`, or the test fails (never skips) with the reason the server did not start."""
    try:
        return start()
    except private_servers.ServerError as e:
        reason = str(e)
    pytest.fail(f"the private {what} could not be started: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """The session's PostgreSQL (a private cluster, or NADIR_TEST_PG_URL's server)."""
    yield started("PostgreSQL cluster", private_servers.postgres_admin_url)
    private_servers.stop_postgres()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A database of the test's own on the session's PostgreSQL (SQLAlchemy URL), dropped after."""
    with private_servers.private_postgres_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The AMQP URL of the session's private RabbitMQ node (user guest, loopback only)."""
    with contextlib.ExitStack() as stack:
        yield started("RabbitMQ node",
                      lambda: stack.enter_context(private_servers.private_rabbitmq()))
