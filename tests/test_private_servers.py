"""The session's private PostgreSQL and RabbitMQ (daemon.demo.private_servers) answer, and a
private database is a database of its own that is gone afterwards."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy.engine import make_url

from daemon.demo.private_servers import amqp_handshake, private_postgres_database

pytestmark = pytest.mark.integration


def test_postgres_round_trip(postgres_admin_url: str, postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg" and url.host == "127.0.0.1"
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        assert conn.execute("select 1, current_database()").fetchone() == (1, url.database)


def test_private_database_is_dropped_afterwards(postgres_admin_url: str) -> None:
    with private_postgres_database(postgres_admin_url) as url:
        name = make_url(url).database
    with psycopg.connect(postgres_admin_url) as conn:
        found = conn.execute("select count(*) from pg_database where datname = %s", (name,))
        assert found.fetchone() == (0,)


def test_rabbitmq_answers_the_amqp_handshake(rabbitmq_url: str) -> None:
    url = urlsplit(rabbitmq_url)
    assert (url.scheme, url.hostname, url.username) == ("amqp", "127.0.0.1", "guest")
    assert url.port is not None and url.port != 5672  # not the machine's own broker
    assert amqp_handshake("127.0.0.1", url.port)
