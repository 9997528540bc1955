"""AE titles at association as PS3.5/PS3.8 compare them: trailing spaces are padding,
a leading space is part of the title; a caller asking for another AE title than the
node's is refused with A-ASSOCIATE-RJ reason 0x07 (called AE title not recognized),
one not allowed with 0x03. Real sockets, pynetdicom as the requestor, the node's own
AE set-up (`make_ae` and its event handlers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from daemon.config import NodeSettings
from daemon.node import ae_titles
from daemon.node.scp import make_ae


@pytest.fixture
def node() -> Iterator[int]:
    ae = make_ae(NodeSettings(ae_title="NADIR", allowed_calling_aes=["PACS", "CT1"], network_timeout_s=5))
    server: ThreadedAssociationServer = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=ae_titles.handlers())
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def echo(port: int, calling: str, called: str) -> tuple[bool, tuple[int, int, int] | None]:
    """(established, the rejection's result/source/reason)."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = 5
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    rejection = None
    if assoc.is_rejected:
        rj = assoc.acceptor.primitive
        rejection = (rj.result, rj.result_source, rj.diagnostic)
    ok = assoc.is_established
    if ok:
        assoc.release()
    return ok, rejection


def test_trailing_spaces_are_padding(node: int) -> None:
    assert echo(node, "PACS", "NADIR") == (True, None)
    assert echo(node, "PACS   ", "NADIR  ") == (True, None)


def test_a_leading_space_is_another_calling_ae(node: int) -> None:
    assert echo(node, " PACS", "NADIR") == (False, (0x01, 0x01, 0x03))


def test_the_called_ae_is_checked(node: int) -> None:
    assert echo(node, "PACS", "OTHER") == (False, (0x01, 0x01, 0x07))
    assert echo(node, "PACS", " NADIR") == (False, (0x01, 0x01, 0x07))


def test_titles_of_a_raw_pdu() -> None:
    pdu = bytes([1, 0, 0, 0, 0, 0xCC, 0, 1, 0, 0]) + b" NADIR".ljust(16) + b"CT1".ljust(16) + b"\x00" * 32
    assert ae_titles.titles_of(pdu) == (" NADIR", "CT1")
    assert ae_titles.titles_of(b"\x04" + pdu[1:]) is None  # a P-DATA-TF
    assert ae_titles.same_ae("PACS ", "PACS") and not ae_titles.same_ae(" PACS", "PACS")
