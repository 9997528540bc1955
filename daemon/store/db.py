"""The database: SQLAlchemy declarative base and engine/session factory.

Every table of every part (studies, instances, jobs, outbox...) derives from
`Base`, so one `create_schema` builds them all on SQLite or PostgreSQL.
"""

from __future__ import annotations

import logging

from sqlalchemy import Column, Engine, String, Text, create_engine, event, inspect, text
from sqlalchemy.orm import DeclarativeBase, sessionmaker

log = logging.getLogger(__name__)


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
    import daemon.store.console  # noqa: F401
    import daemon.store.jobs  # noqa: F401
    import daemon.store.lesions  # noqa: F401
    import daemon.store.models  # noqa: F401
    import daemon.store.outbox  # noqa: F401
    import daemon.store.telemetry  # noqa: F401

    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    widen_text_columns(engine)


def add_missing_columns(engine: Engine) -> list[str]:
    """Columns added by a later version to an existing table (each nullable or with a
    server default, so old rows stay valid): ALTER TABLE ... ADD COLUMN. Returns them."""
    existing = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not existing.has_table(table.name):
                continue
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {_ddl(column, engine)}"))
                    added.append(f"{table.name}.{column.name}")
    if added:
        log.info("database schema: added column(s) %s", ", ".join(added))
    return added


def widen_text_columns(engine: Engine) -> list[str]:
    """TEXT columns that an older version created as VARCHAR(n) (PostgreSQL enforces n,
    SQLite does not): ALTER COLUMN ... TYPE TEXT. Returns them."""
    if engine.dialect.name != "postgresql":
        return []
    existing = inspect(engine)
    widened = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not existing.has_table(table.name):
                continue
            have = {c["name"]: c["type"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                old = have.get(column.name)
                if isinstance(column.type, Text) and isinstance(old, String) and getattr(old, "length", None):
                    conn.execute(text(f"ALTER TABLE {table.name} ALTER COLUMN {column.name} TYPE TEXT"))
                    widened.append(f"{table.name}.{column.name}")
    if widened:
        log.info("database schema: widened column(s) %s to TEXT", ", ".join(widened))
    return widened


def _ddl(column: Column, engine: Engine) -> str:  # type: ignore[type-arg]
    if not column.nullable and column.server_default is None:
        raise RuntimeError(f"column {column.table.name}.{column.name} cannot be added to existing rows")
    ddl = f"{column.name} {column.type.compile(dialect=engine.dialect)}"
    default = getattr(column.server_default, "arg", None)
    if default is not None:
        ddl += f" DEFAULT '{default}'" if isinstance(default, str) else f" DEFAULT {default}"
    return ddl
