"""Delivery against a real pynetdicom C-STORE SCP that answers the statuses a PACS
chooses: a permanent refusal (0xA900, 0xC000, 0x0122, 0x0124) is a dead letter at
once, the PACS's status shown; a transient one (0xA700, 0x0110) is retried; a warning
is sent. One output file that is not an instance (no SOP Class UID: an AttributeError
once) fails alone, and the rows behind it are sent. Files are synthetic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jobs.studies import make_series
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.node.scu import Sender
from daemon.node.store_status import describe, is_transient
from daemon.store import outbox as ob
from daemon.store.db import create_schema, make_engine, make_sessionmaker

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
# what the PACS answers, in the rows' order; None: the output file is broken
ANSWERS: list[int | None] = [None, 0xA900, 0xC000, 0xA700, 0x0122, 0x0124, 0x0110, 0x0000, 0xB000]
EXPECTED = [ob.OutboxState.DEAD] * 3 + [ob.OutboxState.PENDING] + [ob.OutboxState.DEAD] * 2 + [
    ob.OutboxState.PENDING] + [ob.OutboxState.SENT] * 2


class Pacs:
    def __init__(self) -> None:
        self.answers: dict[str, int] = {}
        self.seen: list[str] = []

    def on_store(self, event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        self.seen.append(uid)
        return self.answers.get(uid, 0x0000)


@pytest.fixture
def pacs() -> Iterator[tuple[Pacs, int]]:
    pacs = Pacs()
    ae = AE("CHOOSY")
    ae.add_supported_context(CTImageStorage)
    server: ThreadedAssociationServer = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, pacs.on_store)])
    try:
        yield pacs, int(server.server_address[1])
    finally:
        server.shutdown()


def broken(ds: Dataset) -> Dataset:
    del ds.SOPClassUID  # reads back; a C-STORE of it needs what is not there
    return ds


def test_one_row_fails_alone_and_permanent_refusals_are_dead_letters(
    tmp_path: Path, pacs: tuple[Pacs, int]
) -> None:
    server, port = pacs
    settings = Settings(
        store={"data_dir": tmp_path / "data"},
        destinations={"pacs": {"ae_title": "CHOOSY", "host": "127.0.0.1", "port": port}},
        outbox={"batch_size": 20},
        node={"network_timeout_s": 5},
    )
    settings.store.data_dir.mkdir(parents=True)
    engine = make_engine(settings.store.effective_database_url)
    create_schema(engine)
    sessions: sessionmaker[Session] = make_sessionmaker(engine)
    series = make_series("1.2.826.0.1.3680043.10.1442.78", positions=list(range(len(ANSWERS))))
    uids = [str(ds.SOPInstanceUID) for ds in series]
    with sessions() as s:
        for ds, answer in zip(series, ANSWERS, strict=True):  # one add each: row ids in this order
            path = ob.write_output(settings.store.data_dir, broken(ds) if answer is None else ds)
            ob.add(s, [ob.Output(str(ds.SOPInstanceUID), str(CTImageStorage), str(ds.StudyInstanceUID), path)],
                   ["pacs"], None, T0)
            s.flush()
            if answer:
                server.answers[str(ds.SOPInstanceUID)] = answer
        s.commit()

    sent = Sender(settings, sessions, lambda: T0).send_due()

    assert sent == 2
    assert server.seen == uids[1:]  # everything behind the broken file was sent
    with sessions() as s:
        rows = {r.sop_instance_uid: ob.row_as_dict(r) for r in ob.list_rows(s)}
    assert [rows[u]["state"] for u in uids] == EXPECTED
    assert all(rows[u]["attempts"] == 1 for u in uids)
    assert "not a sendable instance" in rows[uids[0]]["error"] and "AttributeError" in rows[uids[0]]["error"]
    for uid, answer in zip(uids[1:], ANSWERS[1:], strict=True):
        row = rows[uid]
        assert row["last_status"] == f"0x{answer:04X}"
        if row["state"] == ob.OutboxState.DEAD:
            assert "dead letter at once" in row["error"] and describe(answer or 0) in row["error"]
    assert "Data Set Does Not Match SOP Class" in rows[uids[1]]["error"]
    engine.dispose()


def test_status_classes() -> None:
    assert [is_transient(s) for s in (0xA700, 0xA7FF, 0x0110, 0x0213, 0x0210, 0xFE00)] == [True] * 6
    assert [is_transient(s) for s in (0xA900, 0xA9FF, 0xC000, 0xCFFF, 0x0122, 0x0124, 0x0111, 0x0117)] == [False] * 8
    assert not is_transient(0x0000) and not is_transient(0xB007)
    assert is_transient(0xD123)  # defined by no table: not known to be permanent
    assert describe(0xA900) == "0xA900 (Failure: Data Set Does Not Match SOP Class)"
