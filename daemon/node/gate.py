"""The pre-association gate: connections between TCP accept and a complete A-ASSOCIATE-RQ.

pynetdicom gives every accepted connection a thread and an association slot at once,
reads the A-ASSOCIATE-RQ with blocking `recv` calls on a socket without timeout, and
runs a TLS handshake on the listener's single acceptor thread. So a few idle or
half-sent connections (a 6-byte PDU header, or nothing) held every slot for ever and
legitimate callers were refused, and one idle TCP connection stopped every TLS caller.

Here one thread holds every connection that has not yet sent its A-ASSOCIATE-RQ, in a
`selectors` loop, without blocking on any of them:

- the TLS handshake runs here, non-blocking;
- the A-ASSOCIATE-RQ is read here into a buffer, its announced length checked first
  against `node.max_associate_request_bytes` (nothing larger is ever buffered);
- a connection that has not completed both within `node.artim_timeout_s` is closed;
- at most `node.max_half_open` such connections are held in all and
  `node.max_half_open_per_address` per peer address; past that a new one is closed
  at once. Refusals and timeouts are logged (a WARNING, at most one line per peer
  address and reason every `LOG_EVERY_S`, with the count since the last line).

A connection whose A-ASSOCIATE-RQ is complete is handed, with the bytes read, to the
listener (`hand_over`), which serves it with pynetdicom on a thread of its own; its
socket is blocking with a read timeout of `node.network_timeout_s` from then on.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
A_ASSOCIATE_RQ = 0x01
# A-ABORT, source 2 (service provider), reason 0 (not specified): PS3.8 9.3.8
A_ABORT = bytes((0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0))

Address = Any  # (host, port) or (host, port, flowinfo, scope_id)
HandOver = Callable[[socket.socket, Address, bytes], None]


@dataclass(frozen=True)
class GateLimits:
    artim_timeout_s: float
    max_half_open: int
    max_half_open_per_address: int
    max_associate_request_bytes: int
    read_timeout_s: float  # set on the socket when it is handed over


@dataclass
class _Pending:
    sock: socket.socket
    address: Address
    deadline: float
    handshaking: bool
    buf: bytearray = field(default_factory=bytearray)

    @property
    def host(self) -> str:
        return str(self.address[0])


class _RateLimitedLog:
    """One WARNING per (reason, host) every `LOG_EVERY_S`, with the count since."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self._count: Counter[tuple[str, str]] = Counter()

    def warn(self, reason: str, host: str, detail: str) -> None:
        key = (reason, host)
        self._count[key] += 1
        now = time.monotonic()
        if now - self._last.get(key, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        count = self._count.pop(key)
        self._last[key] = now
        more = f" ({count} such connections from this address since the last line)" if count > 1 else ""
        log.warning("connection from %s closed before association: %s%s", host, detail, more)


class Gate:
    """Holds connections until their A-ASSOCIATE-RQ is complete; see the module doc."""

    def __init__(self, limits: GateLimits, ssl_context: ssl.SSLContext | None, hand_over: HandOver) -> None:
        self.limits = limits
        self.ssl_context = ssl_context
        self._hand_over = hand_over
        self._selector = selectors.DefaultSelector()
        self._pending: dict[socket.socket, _Pending] = {}
        self._per_host: Counter[str] = Counter()
        self._admitted: list[tuple[socket.socket, Address]] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stop = False
        self._log = _RateLimitedLog()
        self._thread = threading.Thread(target=self._run, name="dicom-gate", daemon=True)
        self._thread.start()

    # -- called from the acceptor thread ------------------------------------------------

    def admit(self, sock: socket.socket, address: Address) -> None:
        """Take a freshly accepted connection (never blocks)."""
        with self._lock:
            self._admitted.append((sock, address))
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full: a wake-up is pending anyway
            pass

    def close(self) -> None:
        self._stop = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        self._thread.join(5)

    @property
    def half_open(self) -> int:
        return len(self._pending)

    # -- the gate's thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop:
                timeout = self._next_deadline() - time.monotonic()
                for key, _ in self._selector.select(max(0.0, min(timeout, 1.0))):
                    if key.fileobj is self._wake_r:
                        self._drain_wakeups()
                    elif (p := self._pending.get(key.fileobj)) is not None:  # type: ignore[call-overload]
                        self._progress(p)
                self._take_admitted()
                self._expire(time.monotonic())
        finally:
            for p in list(self._pending.values()):
                self._drop(p)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _next_deadline(self) -> float:
        if not self._pending:
            return time.monotonic() + 1.0
        return min(p.deadline for p in self._pending.values())

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _take_admitted(self) -> None:
        with self._lock:
            admitted, self._admitted = self._admitted, []
        for sock, address in admitted:
            self._add(sock, address)

    def _add(self, sock: socket.socket, address: Address) -> None:
        host = str(address[0])
        if len(self._pending) >= self.limits.max_half_open:
            self._log.warn("total", host, f"{len(self._pending)} connections already wait for their "
                           "A-ASSOCIATE-RQ (node.max_half_open)")
            _close(sock)
            return
        if self._per_host[host] >= self.limits.max_half_open_per_address:
            self._log.warn("address", host, f"{self._per_host[host]} connections from this address "
                           "already wait for their A-ASSOCIATE-RQ (node.max_half_open_per_address)")
            _close(sock)
            return
        sock.setblocking(False)
        handshaking = False
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                log.info("connection from %s closed: %s", host, exc)
                _close(sock)
                return
            handshaking = True
        p = _Pending(sock, address, time.monotonic() + self.limits.artim_timeout_s, handshaking)
        self._pending[sock] = p
        self._per_host[host] += 1
        self._selector.register(sock, selectors.EVENT_READ)
        self._progress(p)  # data or a ClientHello may be there already

    def _progress(self, p: _Pending) -> None:
        try:
            if p.handshaking:
                assert isinstance(p.sock, ssl.SSLSocket)
                p.sock.do_handshake()
                p.handshaking = False
            self._read(p)
        except ssl.SSLWantReadError:
            self._selector.modify(p.sock, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._selector.modify(p.sock, selectors.EVENT_WRITE)
        except BlockingIOError:
            pass
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.info("connection from %s closed before association: %s", p.host, exc)
            self._drop(p)

    def _read(self, p: _Pending) -> None:
        """Read what is missing of the first PDU; hand the connection over once complete."""
        while True:
            need = 6 - len(p.buf)
            if need <= 0:
                pdu_type, _, length = struct.unpack(">BBL", p.buf[:6])
                limit = self.limits.max_associate_request_bytes
                if length > limit:
                    self._refuse_pdu(p, pdu_type, length, limit)
                    return
                need = 6 + length - len(p.buf)
                if need <= 0 or pdu_type != A_ASSOCIATE_RQ:
                    # complete, or not an A-ASSOCIATE-RQ: pynetdicom answers the latter
                    self._finish(p)
                    return
            data = p.sock.recv(min(need, 65536))
            if not data:
                self._drop(p)  # closed by the peer
                return
            p.buf += data
            if self._selector.get_key(p.sock).events != selectors.EVENT_READ:
                self._selector.modify(p.sock, selectors.EVENT_READ)

    def _refuse_pdu(self, p: _Pending, pdu_type: int, length: int, limit: int) -> None:
        self._log.warn("pdu", p.host, f"its first PDU (type 0x{pdu_type:02X}) announces {length} bytes, more "
                       f"than node.max_associate_request_bytes ({limit}); aborted")
        try:
            p.sock.send(A_ABORT)
        except OSError:
            pass
        self._drop(p)

    def _finish(self, p: _Pending) -> None:
        self._forget(p)
        p.sock.setblocking(True)
        p.sock.settimeout(self.limits.read_timeout_s)
        try:
            self._hand_over(p.sock, p.address, bytes(p.buf))
        except Exception:  # noqa: BLE001 - one connection never stops the gate
            log.exception("connection from %s could not be served", p.host)
            _close(p.sock)

    def _expire(self, now: float) -> None:
        for p in [p for p in self._pending.values() if p.deadline <= now]:
            what = "TLS handshake" if p.handshaking else "A-ASSOCIATE-RQ"
            self._log.warn("artim", p.host, f"no complete {what} within node.artim_timeout_s "
                           f"({self.limits.artim_timeout_s:g} s; {len(p.buf)} bytes received)")
            self._drop(p)

    def _forget(self, p: _Pending) -> None:
        del self._pending[p.sock]
        self._per_host[p.host] -= 1
        if self._per_host[p.host] <= 0:
            del self._per_host[p.host]
        self._selector.unregister(p.sock)

    def _drop(self, p: _Pending) -> None:
        if p.sock in self._pending:
            self._forget(p)
        _close(p.sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
