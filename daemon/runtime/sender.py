"""The sender service: the outbox sent to each destination (`daemon.node.scu.Sender`)
every `outbox.poll_seconds`, and at once when a local worker finished a job."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.node.scu import Sender

log = logging.getLogger(__name__)


class SenderService:
    """Runs `Sender.send_due` every `outbox.poll_seconds` on its own thread."""

    name = "outbox"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self._sender = Sender(settings, sessions)
        self._interval = settings.outbox.poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def on_outputs_ready(self, _none: None = None) -> None:
        """New rows are due: send now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self._sender.send_due() and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("outbox: sending pass failed")
            self._wake.wait(self._interval)
            self._wake.clear()
