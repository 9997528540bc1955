"""The listener's waking association loops (daemon.node.reactor) keep pynetdicom's
behaviour: echo, store, release, abort by the peer, the network timeout, and a
pynetdicom they were not taken from falls back to the stock loops; and the
requestor's guard (daemon.node.requestor) keeps responses in order. Real sockets,
pynetdicom as the peer, in this process."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pynetdicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from daemon.node import reactor
from daemon.node.reactor import WakingAssociation, WakingRequestHandler, request_handler
from daemon.node.requestor import keep_responses


class Seen:
    def __init__(self) -> None:
        self.kinds: list[type] = []
        self.events: list[str] = []
        self.stored: list[str] = []
        self.done = threading.Event()

    def on_echo(self, event: evt.Event) -> int:
        self.kinds.append(type(event.assoc))
        return 0

    def on_store(self, event: evt.Event) -> int:
        self.stored.append(str(event.dataset.SOPInstanceUID))
        return 0

    def on_end(self, event: evt.Event) -> None:
        self.events.append(event.event.name)
        self.done.set()


@pytest.fixture
def server() -> Iterator[tuple[ThreadedAssociationServer, Seen]]:
    seen = Seen()
    ae = AE("WAKING")
    ae.add_supported_context(Verification)
    ae.add_supported_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.network_timeout = 1.0
    handlers: list[Any] = [
        (evt.EVT_C_ECHO, seen.on_echo), (evt.EVT_C_STORE, seen.on_store),
        (evt.EVT_RELEASED, seen.on_end), (evt.EVT_ABORTED, seen.on_end),
    ]
    srv = ae.make_server(("127.0.0.1", 0), evt_handlers=handlers, request_handler=WakingRequestHandler)
    ae._servers.append(srv)  # as AE.start_server does: shutdown() removes it
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv, seen
    finally:
        srv.shutdown()


def _associate(srv: ThreadedAssociationServer) -> Any:
    scu = AE("PEER")
    scu.add_requested_context(Verification)
    scu.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = scu.associate("127.0.0.1", srv.server_address[1], ae_title="WAKING")
    assert assoc.is_established
    return assoc


def _ct() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    return ds


def test_echo_store_and_release(server: tuple[ThreadedAssociationServer, Seen]) -> None:
    srv, seen = server
    assoc = _associate(srv)
    kept = keep_responses(assoc)  # the requestor's guard (daemon.node.requestor) in place
    assert assoc.send_c_echo().Status == 0
    sent = [_ct() for _ in range(20)]
    assert [assoc.send_c_store(ds).Status for ds in sent] == [0] * 20
    assoc.release()
    assert seen.done.wait(5)
    assert seen.kinds == [WakingAssociation]
    assert seen.stored == [str(ds.SOPInstanceUID) for ds in sent]
    assert seen.events == ["EVT_RELEASED"]
    assert kept.count >= 0


def test_a_response_taken_by_the_reactor_goes_back_first() -> None:
    """The race of daemon.node.requestor, played by hand on a real queue: the reactor
    takes response 1 while response 2 is queued; send_* must read 1 then 2. A request
    from the peer is still served by the reactor."""
    messages: queue.Queue[tuple[int, Any]] = queue.Queue()
    served: list[Any] = []
    assoc = SimpleNamespace(_serve_request=lambda msg, cx: served.append(msg), dimse=SimpleNamespace(msg_queue=messages))
    kept = keep_responses(assoc)
    messages.put((1, SimpleNamespace(MessageIDBeingRespondedTo=2)))
    assoc._serve_request(SimpleNamespace(MessageIDBeingRespondedTo=1), 1)
    request = SimpleNamespace(MessageID=7)
    assoc._serve_request(request, 1)
    assert [messages.get_nowait()[1].MessageIDBeingRespondedTo for _ in range(2)] == [1, 2]
    assert served == [request] and kept.count == 1


def test_abort_by_the_peer(server: tuple[ThreadedAssociationServer, Seen]) -> None:
    srv, seen = server
    assoc = _associate(srv)
    assoc.abort()
    assert seen.done.wait(5)
    assert seen.events == ["EVT_ABORTED"]


def test_network_timeout_aborts_a_silent_peer(server: tuple[ThreadedAssociationServer, Seen]) -> None:
    srv, seen = server
    assoc = _associate(srv)
    start = time.monotonic()
    assert seen.done.wait(10), "the acceptor never timed out"
    assert 0.9 <= time.monotonic() - start < 5
    assert seen.events == ["EVT_ABORTED"]
    assoc.abort()


def test_other_pynetdicom_versions_use_the_stock_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    assert request_handler() is WakingRequestHandler
    monkeypatch.setattr(pynetdicom, "__version__", "4.0.0")
    assert request_handler() is RequestHandler
    assert reactor.WAKING_LOOPS_FOR and not pynetdicom.__version__.startswith(reactor.WAKING_LOOPS_FOR)
