"""`web.tls`: the console's own service (daemon.web.service, as `nadir serve` starts it)
serves HTTPS with the configured certificate: a client verifying against that certificate
signs in and reads the API, and the session cookie is marked Secure; a client that trusts
another certificate, and a plain-HTTP request, get nothing. The certificate is self-signed,
made here with `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx  # the dev group's HTTP client (tests/web)
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from daemon.config import Settings
from daemon.demo.peers import free_port
from daemon.runtime.context import Context
from daemon.store.db import make_engine, make_sessionmaker
from daemon.web.service import WebService
from web.conftest import PASSWORD, Console


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid a day, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_console(console: Console, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """The console's database served by WebService with web.tls; (base URL, cert, another cert)."""
    cert, key = self_signed(tmp_path, "nadir-console")
    other, _ = self_signed(tmp_path, "someone-else")
    port = free_port()
    data = console.settings.model_dump()
    data["web"] = {**data["web"], "port": port, "tls": {"certificate": cert, "private_key": key}}
    settings = Settings.model_validate(data)
    engine = make_engine(settings.store.effective_database_url)
    ctx = Context(settings, engine, make_sessionmaker(engine), console.deps.spool, BackgroundScheduler())
    service = WebService(ctx, console.deps.holder, {"database": lambda: None})
    service.start()
    try:
        yield f"https://127.0.0.1:{port}", cert, other
    finally:
        service.stop()
        engine.dispose()


def _client(base: str, trust: Path) -> httpx.Client:
    return httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=str(trust)), timeout=20)


def test_the_console_serves_https_with_its_certificate(https_console: tuple[str, Path, Path]) -> None:
    base, cert, other = https_console
    with _client(base, cert) as client:
        assert client.get("/health").json() == {"status": "ok"}
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        r = client.post("/login", data={"username": "ada", "password": PASSWORD["ada"], "csrf_token": token.group(1),
                                        "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("nadir_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie
        studies = client.get("/api/studies")
        assert studies.status_code == 200 and len(studies.json()) == 1
    with _client(base, other) as stranger, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        stranger.get("/health")
    with httpx.Client(timeout=20) as plain, pytest.raises(httpx.HTTPError):
        plain.get(base.replace("https://", "http://") + "/health")
