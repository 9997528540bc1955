"""A service's own thread: `tick()` every `interval` seconds, or at once when woken."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class WakeableLoop:
    """Runs `tick` until stopped; a failing tick is logged and the loop goes on.

    `tick` returns True while it has more to do right away (it runs again without
    waiting), False when it is done for now.
    """

    def __init__(self, name: str, interval: float, tick: Callable[[], bool]) -> None:
        self._interval = interval
        self._tick = tick
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self._tick() and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("%s: pass failed", self._thread.name)
            self._wake.wait(self._interval)
            self._wake.clear()
