"""Receiving: the DICOM listener of the node's process, and `node.receivers - 1` more.

Python runs one thread at a time per process, so one process receives at about
the speed of one core however many associations arrive at once. `node.receivers`
> 1 starts that many receiving processes in all: the node's own process and
`receivers - 1` children (`daemon.runtime.supervisor`), each listening on the same
port with SO_REUSEPORT (the kernel spreads new connections over them), each with
its own database connections and recorder. Everything else stays in the node's
process.

The default is 1 on purpose. Measured on the 2-core development machine (with
the senders on the same cores), 2 processes gave no clear gain, and with 10
concurrent associations they made a rare stall more frequent (the bench's
pynetdicom sender losing the response to its own reactor thread, worked around in
bench/receive.py); more processes on the same cores only starved the senders
more. Raise it on a machine with more cores.
"""

from __future__ import annotations

import logging
import os
import threading

from pynetdicom.transport import ThreadedAssociationServer

from daemon.config import Settings
from daemon.node.scp import StoreHandler, ensure_port_free, listen
from daemon.runtime.context import Context
from daemon.runtime.supervisor import ChildProcesses
from daemon.store.db import make_engine
from daemon.store.reconcile import adopt_orphans, mark_running, mark_stopped
from daemon.store.recorder import Recorder
from daemon.store.spool import Spool

log = logging.getLogger(__name__)


def run_receiver(settings: Settings, index: int, stop: threading.Event) -> None:
    """A child receiving process: listen until `stop`."""
    engine = make_engine(settings.store.effective_database_url)
    recorder = Recorder(engine)
    recorder.start()
    spool = Spool(settings.store.spool_dir)  # prepared by the node's process; never cleared here
    handler = StoreHandler(
        spool, recorder, settings.store.min_free_bytes, settings.node.max_associations,
        settings.node.max_inflated_bytes,
    )
    server = listen(settings.node, handler, share_port=True)
    log.info("receiving process %d (pid %d) listening", index + 1, os.getpid())
    stop.wait()
    server.shutdown()
    handler.close()
    recorder.stop()
    engine.dispose()


class ReceivingService:
    """The listening node as a service: its own process listens,
    and with `node.receivers` > 1 so do that many - 1 child processes."""

    name = "receiving"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.recorder = Recorder(ctx.engine)
        store = ctx.settings.store
        self.handler = StoreHandler(
            ctx.spool, self.recorder, store.min_free_bytes, ctx.settings.node.max_associations,
            ctx.settings.node.max_inflated_bytes,
        )
        self._server: ThreadedAssociationServer | None = None
        self.children: ChildProcesses | None = None

    def start(self) -> None:
        node = self.ctx.settings.node
        if not node.allowed_calling_aes:
            log.warning(
                "node.allowed_calling_aes is empty: any calling AE may store instances "
                "(set NADIR_NODE__ALLOWED_CALLING_AES to restrict)"
            )
        ensure_port_free(node.host, node.port)  # before anything: another node may run here
        self.recorder.start()
        if mark_running(self.ctx.spool):
            log.warning("the previous run did not stop cleanly; checking the spool")
            adopt_orphans(self.ctx.spool, self.recorder, self.ctx.sessions)
        share = node.receivers > 1
        self._server = listen(node, self.handler, share_port=share)
        if share:
            self.children = ChildProcesses(
                "receiver", run_receiver, (self.ctx.settings,), node.receivers - 1
            )
            self.children.start()
        log.info(
            "listening as %s on %s:%d%s (%d receiving process%s)", node.ae_title, node.host,
            node.port, " (TLS)" if node.tls is not None else "", node.receivers,
            "es" if node.receivers > 1 else "",
        )

    @property
    def listening(self) -> bool:
        """Whether this process's DICOM listener is up (the console's /ready)."""
        return self._server is not None

    def stop(self) -> None:
        if self.children is not None:
            self.children.stop()
            self.children = None
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self.handler.close()
        self.recorder.stop()
        mark_stopped(self.ctx.spool)
