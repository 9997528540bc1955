"""The sender service: the outbox sent to each destination (`daemon.node.scu.Sender`)
every `outbox.poll_seconds`, and at once when a local worker finished a job."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.node.scu import Sender
from daemon.runtime.loop import WakeableLoop


class SenderService:
    name = "outbox"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        sender = Sender(settings, sessions)
        self._loop = WakeableLoop("outbox-sender", settings.outbox.poll_seconds, lambda: sender.send_due() > 0)

    def start(self) -> None:
        self._loop.start()

    def on_outputs_ready(self, _none: None = None) -> None:
        """New rows are due: send now rather than at the next poll."""
        self._loop.wake()

    def stop(self) -> None:
        self._loop.stop()
