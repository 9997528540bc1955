"""The listener with TLS: a client presenting a certificate signed by the configured CA
is served; one without a certificate is not. Certificates are generated here."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from node_harness import Node, free_port
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

pytestmark = pytest.mark.integration


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-out", str(d / f"{name}.pem"))


def echo(port: int, context: ssl.SSLContext) -> bool:
    ae = AE(ae_title="TLSSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="NADIR", tls_args=(context, None))
    if not assoc.is_established:
        return False
    ok = assoc.send_c_echo().Status == 0
    assoc.release()
    return bool(ok)


def test_tls_with_client_certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_pki(tmp_path)
    node = Node(data_dir=tmp_path / "data", port=free_port())
    env = node.env()
    env.update(
        NADIR_NODE__TLS__CERTIFICATE=str(tmp_path / "server.pem"),
        NADIR_NODE__TLS__PRIVATE_KEY=str(tmp_path / "server.key"),
        NADIR_NODE__TLS__CA_CERTIFICATES=str(tmp_path / "ca.pem"),
    )
    monkeypatch.setattr(Node, "env", lambda self: env)
    node.start()
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tmp_path / "ca.pem"))
        client.check_hostname = False
        assert not echo(node.port, client)  # no client certificate: refused
        client.load_cert_chain(str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        assert echo(node.port, client)
        assert "(TLS)" in node.log_text()
    finally:
        node.stop()
