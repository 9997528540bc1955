"""daemon/web/ohif.py without a browser: static files, SPA fallback, our app-config, the proxy."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.web.ohif import (
    DEFAULT_APP_CONFIG,
    ViewerNotInstalledError,
    ViewerServer,
    orthanc_dicomweb_settings,
    start_viewer,
)


class _FakePacs(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = f"{self.path}|{self.headers.get('Accept')}".encode()
        self.send_response(200 if "missing" not in self.path else 404)
        self.send_header("Content-Type", 'multipart/related; type="application/octet-stream"; boundary=xyz')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def pacs() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePacs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def viewer(tmp_path: Path, pacs: str) -> Iterator[ViewerServer]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>OHIF</html>")
    (dist / "app-config.js").write_text("window.config = {upstream: true};")
    (dist / "assets" / "codec.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("no")
    with start_viewer(pacs, dist=dist) as v:
        yield v


def _get(url: str, accept: str = "*/*") -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_static_files_and_spa_fallback(viewer: ViewerServer) -> None:
    assert _get(viewer.url + "assets/codec.wasm")[1:] == ("application/wasm", b"\0asm")
    for path in ("", "viewer?StudyInstanceUIDs=1.2.3", "no/such/page", "../secret.txt", "%2e%2e/secret.txt"):
        status, ctype, body = _get(viewer.url + path)
        assert (status, body) == (200, b"<html>OHIF</html>"), path
        assert ctype.startswith("text/html")


def test_our_app_config_replaces_the_packaged_one(viewer: ViewerServer) -> None:
    status, ctype, body = _get(viewer.url + "app-config.js")
    assert status == 200 and ctype == "application/javascript"
    assert body == DEFAULT_APP_CONFIG.read_bytes()
    text = body.decode()
    for setting in ("qidoRoot: '/dicom-web'", "wadoRoot: '/dicom-web'", "wadoUriRoot: '/wado'",
                    "routerBasename: '/'", "omitQuotationForMultipartRequest: true",
                    "qidoSupportsIncludeField: false"):
        assert setting in text
    assert "http" not in text.split("*/", 1)[1], "no absolute URL: everything same-origin"


def test_dicomweb_and_wado_are_proxied(viewer: ViewerServer) -> None:
    status, ctype, body = _get(viewer.url + "dicom-web/studies/1.2/series?Modality=SR", "application/dicom+json")
    assert status == 200 and body == b"/dicom-web/studies/1.2/series?Modality=SR|application/dicom+json"
    assert "boundary=xyz" in ctype
    assert _get(viewer.url + "wado?requestType=WADO&studyUID=1")[2].startswith(b"/wado?requestType=WADO")
    assert _get(viewer.url + "dicom-web/missing")[0] == 404


def test_study_url(viewer: ViewerServer) -> None:
    assert viewer.url.startswith("http://127.0.0.1:") and viewer.url.endswith("/")
    assert viewer.study_url("1.2", "3.4") == viewer.url + "viewer?StudyInstanceUIDs=1.2,3.4"


def test_unreachable_pacs_is_502(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("x")
    with start_viewer("http://127.0.0.1:9", dist=tmp_path, timeout_s=2) as v:
        assert _get(v.url + "dicom-web/studies")[0] == 502


def test_missing_build_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ViewerNotInstalledError, match="install-viewer"):
        start_viewer("http://127.0.0.1:8042", dist=tmp_path)
    with pytest.raises(ValueError, match="http://"):
        (tmp_path / "index.html").write_text("x")
        start_viewer("ftp://pacs", dist=tmp_path)


def test_orthanc_settings() -> None:
    s = orthanc_dicomweb_settings()
    assert s["Plugins"] == ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]
    assert s["DicomWeb"] == {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado"}
