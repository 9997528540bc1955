"""With TLS on, idle TCP connections do not stop TLS callers (issue 23): the handshake
runs in the listener's gate, not on its acceptor thread, and one that does not finish
within `node.artim_timeout_s` is closed. A real `nadir serve`; certificates generated
here (test_tls.make_pki)."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest
from hostile_harness import HostileNode, close_all, closed_by_node, half_open
from node_harness import free_port
from test_tls import echo, make_pki

pytestmark = pytest.mark.integration

ARTIM_S = 3.0


def test_idle_connections_do_not_stop_tls_callers(tmp_path: Path) -> None:
    make_pki(tmp_path)
    node = HostileNode(data_dir=tmp_path / "data", port=free_port(), extra={
        "NADIR_NODE__TLS__CERTIFICATE": str(tmp_path / "server.pem"),
        "NADIR_NODE__TLS__PRIVATE_KEY": str(tmp_path / "server.key"),
        "NADIR_NODE__ARTIM_TIMEOUT_S": str(ARTIM_S),
    })
    node.start()
    idle = half_open(node.port, 5)  # TCP connected, no ClientHello ever
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tmp_path / "ca.pem"))
        client.check_hostname = False
        start = time.monotonic()
        assert echo(node.port, client), "a TLS caller was kept out by idle connections"
        assert time.monotonic() - start < 5
        assert all(closed_by_node(s, ARTIM_S + 3) for s in idle)
        assert "no complete TLS handshake within node.artim_timeout_s" in node.log_text()
    finally:
        close_all(idle)
        node.stop()
