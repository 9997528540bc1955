"""Association threads that wait for work instead of polling for it.

pynetdicom (3.0) runs two loops per accepted association. Its DUL thread sleeps 1 ms
whenever a pass finds nothing to do; the association thread sleeps 1 ms before every
look at the queue of received DIMSE messages. A C-STORE request therefore waits for
each loop to come round (0.5 ms on average each), and its response for the DUL thread
once more: about 1.5 ms per instance when the sender waits for every response, a
quarter of an instance's time through a minimal pynetdicom SCP on a 2-core machine.
Polling faster would burn the CPU that the receive path needs.

Here both threads block until there is something to do: the DUL thread in `select`
on its socket and a wake-up pipe that is written when a primitive is queued for it;
the association thread on an event set when a DIMSE message, or a release or abort
from the peer, is queued for it. Both still wake every `IDLE_WAKE_S` to check their
timers (ARTIM, network timeout) and whether they were told to stop, as the stock
loops do every pass. The loops are pynetdicom's own, with only the sleeps replaced:
`WAKING_LOOPS_FOR` names the pynetdicom versions they were taken from, and with any
other version the stock classes are used (and a warning logged).

Bounds kept here (issue 23): a PDU announcing more than the maximum length the node
negotiated (`node.max_pdu_length`; `UNLIMITED_PDU_CEILING` where that is 0, and
`OTHER_PDU_CEILING` for PDUs other than P-DATA) is refused before anything is buffered:
an A-ABORT, then the connection closed. The A-ASSOCIATE-RQ itself arrives already read
by the listener's gate (daemon.node.gate) and is replayed from memory (`PrefixedSocket`).
When an association's thread ends, the temporary files of C-STORE datasets it received
but never handed to the C-STORE handler (a transfer cut off by an abort or a closed
connection) are removed: pynetdicom leaves them in the spool's tmp/.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pynetdicom
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.transport import AssociationSocket, RequestHandler

from daemon.node.pynetdicom_patches import PINNED

log = logging.getLogger(__name__)

IDLE_WAKE_S = 0.05
WAKING_LOOPS_FOR = (PINNED,)  # the pynetdicom release whose loops are copied below (pinned)
P_DATA_TF = 0x04
UNLIMITED_PDU_CEILING = 64 * 1024 * 1024  # node.max_pdu_length 0 ("unlimited") still has a bound
OTHER_PDU_CEILING = 1024 * 1024  # A-ASSOCIATE, A-RELEASE, A-ABORT PDUs


def request_handler() -> type[RequestHandler]:
    """The listener's connection handler: `WakingRequestHandler` where its loops were
    taken from this pynetdicom, else pynetdicom's own."""
    if pynetdicom.__version__.startswith(WAKING_LOOPS_FOR):
        return WakingRequestHandler
    log.warning(
        "pynetdicom %s: using its polling association loops (daemon.node.reactor knows %s)",
        pynetdicom.__version__, ", ".join(v + "x" for v in WAKING_LOOPS_FOR),
    )
    return RequestHandler


class _WakingQueue(queue.Queue[Any]):
    """A queue that calls `wake` after every put."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class _Wakeup:
    """A self-pipe (a socket pair: once closed, a late `wake` fails instead of writing
    to whatever reused the descriptor): `wake` from any thread ends the owner's select."""

    def __init__(self) -> None:
        self.r, self.w = socket.socketpair()
        self.r.setblocking(False)
        self.w.setblocking(False)

    def wake(self) -> None:
        try:
            self.w.send(b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def drain(self) -> None:
        try:
            while self.r.recv(512):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.r.close()
        self.w.close()


class PrefixedSocket(AssociationSocket):
    """pynetdicom's socket wrapper, serving `prefix` (bytes the gate read already)
    before the socket's own."""

    prefix: bytearray

    @property
    def ready(self) -> bool:
        return bool(self.prefix) or bool(super().ready)

    def recv(self, nr_bytes: int) -> bytearray:
        taken = self.prefix[:nr_bytes]
        del self.prefix[:nr_bytes]
        if len(taken) < nr_bytes:
            taken += super().recv(nr_bytes - len(taken))
        return taken


def _peer_of(assoc: Association) -> str:
    info = assoc.requestor
    return f"{info.address}:{info.port}"


class WakingDUL(DULServiceProvider):
    """pynetdicom's DUL reactor, blocking in `select` where it slept."""

    def __init__(self, assoc: Association, wake_association: Callable[[], None]) -> None:
        super().__init__(assoc)
        self._pipe = _Wakeup()
        self.event_queue = _WakingQueue(self._pipe.wake)
        self.to_provider_queue = _WakingQueue(self._pipe.wake)
        self.to_user_queue = _WakingQueue(wake_association)

    def kill_dul(self) -> None:
        super().kill_dul()
        self._pipe.wake()

    def stop_dul(self) -> bool:
        # pynetdicom's, with a wake-up once the thread is told to stop
        if self.state_machine.current_state == "Sta1":
            self._kill_thread = True
            self._pipe.wake()
            while self.is_alive():
                time.sleep(self._run_loop_delay)
            return True
        return False

    def _idle_wait(self) -> None:
        """Until the peer sends, a primitive is queued, or `IDLE_WAKE_S` has passed."""
        wrapper = self.socket
        sock = wrapper.socket if wrapper is not None else None
        if isinstance(wrapper, PrefixedSocket) and wrapper.prefix:
            return
        if sock is None:
            select.select([self._pipe.r], [], [], IDLE_WAKE_S)
        elif isinstance(sock, ssl.SSLSocket) and sock.pending():
            return  # decrypted bytes already buffered: select would not see them
        else:
            try:
                select.select([self._pipe.r, sock], [], [], IDLE_WAKE_S)
            except (OSError, ValueError):  # closed meanwhile: the next pass finds out
                return
        self._pipe.drain()

    def _pdu_limit(self, pdu_type: int) -> int:
        if pdu_type == P_DATA_TF:
            return self.assoc.acceptor.maximum_length or UNLIMITED_PDU_CEILING
        return OTHER_PDU_CEILING

    def _read_pdu_data(self) -> None:
        # pynetdicom 3.0 DULServiceProvider._read_pdu_data, with the announced length
        # checked before the body is read, and its events (Evt17 closed, Evt19 invalid)
        wrapper = cast(AssociationSocket, self.socket)
        try:
            head = wrapper.recv(6)
        except OSError as exc:  # TimeoutError too: the socket's read timeout
            log.warning("connection from %s closed: %s", _peer_of(self.assoc), exc or "read timeout")
            self.event_queue.put("Evt17")
            return
        if len(head) < 6:
            self.event_queue.put("Evt17")
            return
        pdu_type, _, length = struct.unpack(">BBL", head)
        if pdu_type not in range(0x01, 0x08):
            log.error("unknown PDU type 0x%02X from %s", pdu_type, _peer_of(self.assoc))
            self.event_queue.put("Evt19")
            return
        limit = self._pdu_limit(pdu_type)
        if length > limit:
            log.warning(
                "connection from %s aborted: a PDU of type 0x%02X announces %d bytes, more than %d",
                _peer_of(self.assoc), pdu_type, length, limit,
            )
            self._abort_and_close(wrapper)
            return
        try:
            body = wrapper.recv(length)
        except OSError as exc:
            log.warning("connection from %s closed inside a PDU: %s", _peer_of(self.assoc), exc or "read timeout")
            self.event_queue.put("Evt17")
            return
        if len(body) != length:
            self.event_queue.put("Evt17")
            return
        try:
            pdu, event = self._decode_pdu(head + body)
        except Exception as exc:  # noqa: BLE001 - as pynetdicom: an invalid PDU is Evt19
            log.error("invalid PDU from %s: %s", _peer_of(self.assoc), exc)
            self.event_queue.put("Evt19")
            return
        self.event_queue.put(event)
        self._recv_pdu.put(pdu)

    def _abort_and_close(self, wrapper: AssociationSocket) -> None:
        pdu = A_ABORT_RQ()
        pdu.source = 0x02
        pdu.reason_diagnostic = 0x00
        sock = wrapper.socket
        if sock is not None:
            try:
                sock.sendall(pdu.encode())
            except OSError:
                pass
        wrapper.close()  # Evt17: the state machine ends the association

    def run_reactor(self) -> None:
        # pynetdicom 3.0 DULServiceProvider.run_reactor, with `_idle_wait` for its sleep
        self._idle_timer.start()
        sleep = False
        try:
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                    sleep = True
                if sleep:
                    self._idle_wait()
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    if self._process_recv_primitive():
                        pass
                    elif self._is_transport_event():
                        self._idle_timer.restart()
                except Exception as exc:  # noqa: BLE001 - as pynetdicom: abort, never hang
                    self._abort_on(exc)
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    sleep = True
                    continue
                self.state_machine.do_action(event)
                sleep = False
        finally:
            self._pipe.close()

    def _abort_on(self, exc: Exception) -> None:
        log.error("DICOM connection error, association aborted: %s", exc)
        pdu = A_ABORT_RQ()
        pdu.source = 0x02
        pdu.reason_diagnostic = 0x00
        if self.socket is not None:
            self.socket.send(pdu.encode())
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True


class WakingAssociation(Association):
    """pynetdicom's acceptor, its reactor waiting on an event where it slept.

    Made from a stock acceptor by `make_waking` (pynetdicom builds the object)."""

    _wake: threading.Event

    def _run_reactor(self) -> None:
        try:
            self._serve()
        finally:
            self.dul.join(5)  # stopped by kill(): nothing more is written after this
            _remove_unserved_datasets(self)

    def _serve(self) -> None:
        # pynetdicom 3.0 Association._run_reactor, with the event wait for its sleep
        self._is_paused = False
        while not self._kill:
            self._wake.wait(IDLE_WAKE_S)
            self._wake.clear()
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False
            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, cast(int, context_id))
                self._wake.set()  # another message may be queued already
            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return
            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV fires
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return
            if not self.dul.is_alive():
                self.kill()
                return
            if self.dul.idle_timer_expired():
                log.error("network timeout: no data from the peer for %s s", self.network_timeout)
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


def _remove_unserved_datasets(assoc: Association) -> None:
    """Remove the temporary files of datasets received on `assoc` and never handed to
    the C-STORE handler: the one being received, and those still queued."""
    files: list[Any] = []
    message = assoc.dimse.message
    if message is not None and getattr(message, "_data_set_file", None) is not None:
        files.append(message._data_set_file)
    for _, primitive in list(assoc.dimse.msg_queue.queue):
        if isinstance(primitive, C_STORE) and primitive._dataset_file is not None:
            files.append(primitive._dataset_file)
    for f in files:
        try:
            f.close()
            os.unlink(f.name)
        except OSError:
            continue
        log.warning("association from %s ended inside a C-STORE: its partial dataset removed", _peer_of(assoc))


def make_waking(assoc: Association) -> Association:
    """Turn a stock acceptor, before it starts, into a `WakingAssociation`."""
    wake = threading.Event()
    stock = assoc.dul
    dul = WakingDUL(assoc, wake.set)
    dul.socket = stock.socket
    dul._idle_timer = stock._idle_timer  # the timeouts were set on the stock ones
    dul.artim_timer = stock.artim_timer
    dul.state_machine.current_state = stock.state_machine.current_state
    for name in ("event_queue", "to_provider_queue", "to_user_queue"):  # e.g. the connection's Evt5
        old, new = getattr(stock, name), getattr(dul, name)
        while not old.empty():
            new.put(old.get_nowait())
    assoc.dul = dul
    assoc.dimse.msg_queue = _WakingQueue(wake.set)
    assoc.__class__ = WakingAssociation
    cast(WakingAssociation, assoc)._wake = wake
    return assoc


class WakingRequestHandler(RequestHandler):
    """The listener's handler of a new connection: a `WakingAssociation` serves it."""

    def _create_association(self) -> Association:
        assoc = make_waking(super()._create_association())
        # the bytes the listener's gate read already (its A-ASSOCIATE-RQ), if any
        take = getattr(self.server, "take_prefix", None)
        prefix = take(self.request) if take is not None else b""
        wrapper = assoc.dul.socket
        assert wrapper is not None
        wrapper.__class__ = PrefixedSocket
        cast(PrefixedSocket, wrapper).prefix = bytearray(prefix)
        return assoc
