"""Serve the OHIF v3 viewer on a PACS's DICOMweb, same origin, offline.

The built viewer comes from the npm package `@ohif/app` (its `dist/` folder, put in
deploy/ohif/viewer/ by deploy/ohif/install-viewer.sh, version and sha512
pinned in deploy/ohif/package.json; nothing is downloaded at run time). This
server:

- serves `dist/` as static files, with our own `app-config.js` (one DICOMweb data
  source on the same origin: `/dicom-web` for QIDO/WADO-RS, `/wado` for WADO-URI);
- falls back to `index.html` for every other path (OHIF is a single-page app:
  `/viewer?StudyInstanceUIDs=...` is a client-side route);
- forwards `/dicom-web/...` and `/wado...` to the PACS (Orthanc with its DICOMweb
  plugin), so the browser needs no CORS.

`start_viewer(pacs_url)` starts it in a background thread and returns a
`ViewerServer`; `ViewerServer.study_url(uid)` is the link that opens a study.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import mimetypes
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from daemon import resources

log = logging.getLogger(__name__)

DEPLOY_DIR = resources.OHIF_DIR
DEFAULT_DIST = DEPLOY_DIR / "viewer" / "dist"
DEFAULT_APP_CONFIG = DEPLOY_DIR / "app-config.js"
PROXIED = ("/dicom-web", "/wado")
CHUNK = 256 * 1024
# request headers passed to the PACS; response headers passed back
_REQUEST_HEADERS = ("accept", "content-type", "content-length", "range", "if-none-match")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authenticate", "proxy-authorization"}
_TYPES = {".js": "application/javascript", ".mjs": "application/javascript",
          ".wasm": "application/wasm", ".json": "application/json", ".map": "application/json",
          ".svg": "image/svg+xml", ".css": "text/css", ".html": "text/html; charset=utf-8",
          ".woff2": "font/woff2", ".ico": "image/x-icon", ".png": "image/png"}


class ViewerNotInstalledError(FileNotFoundError):
    """The built viewer is missing: run deploy/ohif/install-viewer.sh."""


def orthanc_dicomweb_settings(root: str = "/dicom-web/", wado_root: str = "/wado") -> dict[str, Any]:
    """The Orthanc configuration keys that make it a DICOMweb server for OHIF.

    Debian's `orthanc-dicomweb` package (plugin 1.7 for Orthanc 1.10); merge into the
    Orthanc JSON configuration.
    """
    return {
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": root, "EnableWado": True, "WadoRoot": wado_root},
    }


@dataclass(frozen=True)
class _Site:
    dist: Path
    app_config: bytes
    upstream: urllib.parse.SplitResult
    timeout_s: float


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._dispatch(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(head=True)

    def do_POST(self) -> None:  # noqa: N802
        if self._proxied():
            self._proxy()
        else:
            self.send_error(405)

    def _proxied(self) -> bool:
        path = urllib.parse.urlsplit(self.path).path
        return any(path == p or path.startswith(p + "/") or path.startswith(p + "?") for p in PROXIED)

    def _dispatch(self, head: bool) -> None:
        if self._proxied():
            self._proxy()
        else:
            self._static(head)

    def _static(self, head: bool) -> None:
        site = self.server.site
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        if rel == "app-config.js":
            self._send(200, "application/javascript", site.app_config, head, cache=False)
            return
        target = (site.dist / rel).resolve()
        if not rel or not target.is_relative_to(site.dist) or not target.is_file():
            # single-page app: client-side routes (e.g. /viewer) get index.html
            target = site.dist / "index.html"
        self._send(200, _content_type(target), target.read_bytes(), head, cache=target.name != "index.html")

    def _send(self, status: int, ctype: str, data: bytes, head: bool, cache: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-cache")
        # SharedArrayBuffer (multi-threaded decoders) needs cross-origin isolation
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _proxy(self) -> None:
        site = self.server.site
        up = site.upstream
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in _REQUEST_HEADERS}
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=site.timeout_s)
        try:
            conn.request(self.command, up.path.rstrip("/") + self.path, body=payload, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status, resp.reason)
            chunked = resp.getheader("Content-Length") is None and self.command != "HEAD"
            for key, value in resp.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            self.end_headers()
            self._copy(resp, chunked)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("PACS %s unreachable for %s: %s", up.netloc, self.path.split("?")[0], exc)
            self.send_error(502, "PACS unreachable")
        finally:
            conn.close()

    def _copy(self, resp: http.client.HTTPResponse, chunked: bool) -> None:
        while block := resp.read(CHUNK):
            if chunked:
                self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
            else:
                self.wfile.write(block)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], site: _Site) -> None:
        super().__init__(address, _Handler)
        self.site = site


@dataclass
class ViewerServer:
    """A running viewer; `url` is its root, e.g. http://127.0.0.1:3000/."""

    url: str
    _server: _Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def study_url(self, *study_instance_uids: str) -> str:
        """The link that opens these studies (the first is the one shown) in the viewer."""
        return f"{self.url}viewer?StudyInstanceUIDs={','.join(study_instance_uids)}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ViewerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_viewer(
    pacs_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dist: Path = DEFAULT_DIST,
    app_config: Path = DEFAULT_APP_CONFIG,
    timeout_s: float = 60.0,
) -> ViewerServer:
    """Serve OHIF on host:port (0: a free port) over the PACS at `pacs_url`.

    `pacs_url` is the PACS's HTTP root under which `/dicom-web/` and `/wado` live,
    e.g. `http://127.0.0.1:8042` for Orthanc with its DICOMweb plugin.
    """
    dist = dist.resolve()
    if not (dist / "index.html").is_file():
        raise ViewerNotInstalledError(f"{dist}/index.html missing: run {DEPLOY_DIR}/install-viewer.sh")
    upstream = urllib.parse.urlsplit(pacs_url)
    if upstream.scheme != "http" or not upstream.hostname:
        raise ValueError(f"pacs_url must be http://host:port[/prefix], not {pacs_url!r}")
    site = _Site(dist, app_config.read_bytes(), upstream, timeout_s)
    server = _Server((host, port), site)
    bound_host, bound_port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, name="ohif-viewer", daemon=True)
    thread.start()
    url = f"http://{bound_host!s}:{bound_port}/"
    log.info("OHIF viewer at %s on PACS %s", url, upstream.netloc)
    return ViewerServer(url, server, thread)


def main(argv: list[str] | None = None) -> int:
    """`python -m daemon.web.ohif --pacs http://127.0.0.1:8042 --port 3000`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pacs", default="http://127.0.0.1:8042", help="PACS HTTP root with /dicom-web/ and /wado")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    viewer = start_viewer(args.pacs, host=args.host, port=args.port)
    print(f"OHIF viewer: {viewer.url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
