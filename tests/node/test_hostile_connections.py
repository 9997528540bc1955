"""Nobody can stop the node before or during association (issue 23): a real `nadir
serve` against raw-socket probes from 127.0.0.2, legitimate callers from 127.0.0.1.

- 100 half-open connections (a bare 6-byte PDU header, or nothing) do not keep a
  C-ECHO out; at most `node.max_half_open_per_address` of them are held, the rest
  closed at once and logged, and those held are closed after `node.artim_timeout_s`.
- An A-ASSOCIATE-RQ announcing 1 GiB is aborted at once, never buffered.
- Inside an association: a P-DATA-TF announcing more than the negotiated maximum is
  aborted before its body is read; a peer that stops inside a PDU is cut off after
  `node.network_timeout_s` (the socket's read timeout).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_harness import (
    A_ASSOCIATE_RQ,
    P_DATA_TF,
    HostileNode,
    close_all,
    closed_by_node,
    echo,
    half_open,
    pdu_header,
)
from node_harness import free_port
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

pytestmark = pytest.mark.integration

ARTIM_S = 3.0
NETWORK_TIMEOUT_S = 3.0
PER_ADDRESS = 16


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileNode]:
    root: Path = tmp_path_factory.mktemp("hostile")
    n = HostileNode(data_dir=root / "data", port=free_port(), extra={
        "NADIR_NODE__ARTIM_TIMEOUT_S": str(ARTIM_S),
        "NADIR_NODE__NETWORK_TIMEOUT_S": str(NETWORK_TIMEOUT_S),
        "NADIR_NODE__MAX_HALF_OPEN_PER_ADDRESS": str(PER_ADDRESS),
    })
    n.start()
    yield n
    n.stop()


def test_half_open_connections_neither_lock_out_nor_stay(node: HostileNode) -> None:
    headers = half_open(node.port, 50, send=pdu_header(A_ASSOCIATE_RQ, 200))
    silent = half_open(node.port, 50)
    try:
        latency = echo(node.port, timeout_s=10)
        assert latency is not None and latency < 5, "a legitimate C-ECHO was kept out"
        # the node closed all but PER_ADDRESS of them at once...
        time.sleep(0.5)
        still_open = [s for s in headers + silent if not closed_by_node(s, 0.01)]
        assert len(still_open) == PER_ADDRESS
        # ...and closes those after ARTIM
        assert all(closed_by_node(s, ARTIM_S + 3) for s in still_open)
        log = node.log_text()
        assert "node.max_half_open_per_address" in log and "node.artim_timeout_s" in log
        assert echo(node.port) is not None
    finally:
        close_all(headers + silent)


def test_a_huge_associate_request_is_aborted_unread(node: HostileNode) -> None:
    [sock] = half_open(node.port, 1, send=pdu_header(A_ASSOCIATE_RQ, 1 << 30) + b"\0" * 1000)
    try:
        sock.settimeout(2)
        reply = sock.recv(10)
        assert reply[:1] == b"\x07", "no A-ABORT"
        assert closed_by_node(sock, 2)
        assert "node.max_associate_request_bytes" in node.log_text()
    finally:
        close_all([sock])


def _associated(port: int) -> tuple[AE, object]:
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="NADIR")
    assert assoc.is_established
    return ae, assoc


def test_a_p_data_over_the_negotiated_maximum_is_aborted(node: HostileNode) -> None:
    _, assoc = _associated(node.port)
    raw = assoc.dul.socket.socket  # type: ignore[attr-defined]
    raw.sendall(pdu_header(P_DATA_TF, 1 << 30) + b"\0" * 4096)
    deadline = time.monotonic() + 3
    while not assoc.is_aborted and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert assoc.is_aborted, "the node kept reading a 1 GiB PDU"  # type: ignore[attr-defined]
    assert "announces 1073741824 bytes, more than 4194304" in node.log_text()


def test_a_peer_stalling_inside_a_pdu_is_cut_off(node: HostileNode) -> None:
    _, assoc = _associated(node.port)
    raw = assoc.dul.socket.socket  # type: ignore[attr-defined]
    start = time.monotonic()
    raw.sendall(pdu_header(P_DATA_TF, 100) + b"\0" * 10)  # and never the rest
    while not assoc.is_aborted and time.monotonic() - start < NETWORK_TIMEOUT_S + 5:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert assoc.is_aborted, "a stalled PDU held its association"  # type: ignore[attr-defined]
    assert time.monotonic() - start >= NETWORK_TIMEOUT_S - 0.5
