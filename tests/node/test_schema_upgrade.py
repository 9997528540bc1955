"""An older PostgreSQL database (PatientID VARCHAR(64), AccessionNumber VARCHAR(16),
Modality VARCHAR(16)) refused an over-long value for ever (0xA701 retried by senders):
opening it with this version widens those columns to TEXT, and the value is stored whole."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, inspect, text

from daemon.store.db import create_schema, make_engine
from daemon.store.models import Study


def test_an_older_database_gets_text_columns(postgres_url: str) -> None:
    old = create_engine(postgres_url)
    with old.begin() as conn:  # the columns as the previous version created them
        conn.execute(text("CREATE TABLE studies (id SERIAL PRIMARY KEY, study_instance_uid VARCHAR(64) UNIQUE,"
                          " state VARCHAR(16), revision INTEGER, patient_id VARCHAR(64),"
                          " accession_number VARCHAR(16), first_received TIMESTAMPTZ, last_received TIMESTAMPTZ,"
                          " revision_started TIMESTAMPTZ, state_changed TIMESTAMPTZ, settle_seconds FLOAT,"
                          " instance_count INTEGER)"))
    old.dispose()

    engine = make_engine(postgres_url)
    create_schema(engine)  # what the node does at start
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("studies")}
    assert getattr(columns["accession_number"], "length", None) is None
    assert getattr(columns["patient_id"], "length", None) is None
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(Study.__table__.insert().values(  # type: ignore[attr-defined]
            study_instance_uid="1.2.3", state="RECEIVING", revision=1, patient_id="P" * 80,
            accession_number="A" * 20, first_received=now, last_received=now, revision_started=now,
            state_changed=now, instance_count=1))
        assert conn.execute(text("SELECT accession_number FROM studies")).scalar_one() == "A" * 20
    engine.dispose()
