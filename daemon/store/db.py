"""The database: SQLAlchemy declarative base and engine/session factory.

Every table of every part (studies, instances, jobs, outbox...) derives from
`Base`, so one `create_schema` builds them all on SQLite or PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, full fsync and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return sessionmaker(engine, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Create every table that the imported model modules declare."""
    # import the model modules so their tables are registered on Base.metadata
    import daemon.store.jobs  # noqa: F401
    import daemon.store.lesions  # noqa: F401
    import daemon.store.models  # noqa: F401
    import daemon.store.outbox  # noqa: F401

    Base.metadata.create_all(engine)
