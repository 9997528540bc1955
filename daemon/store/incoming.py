"""Files being received into the spool's tmp/, with the free space watched as they grow.

pynetdicom writes each C-STORE dataset, as it arrives, into a temporary file it opens
itself (`IncomingFiles.open` is that opener). The spool's free space is checked before
the first byte and again every `CHECK_EVERY` bytes written. Once it is below
`store.min_free_bytes` the file is emptied and the rest of the dataset dropped as it
arrives: the transfer completes on the wire, and the C-STORE handler answers 0xA700
(`refusal` gives the reason). Before, the space was checked only once the whole
dataset had been written, so large datasets filled the disk past the margin.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import weakref
from typing import IO, Any

from daemon.store.spool import Spool

log = logging.getLogger(__name__)

CHECK_EVERY = 4 * 1024 * 1024


class GuardedFile:
    """A temporary file that stops growing once the spool's free space runs short."""

    def __init__(self, inner: Any, owner: IncomingFiles) -> None:
        self._inner = inner
        self._owner = owner
        self._since_check = 0
        self.refusal: str | None = owner.check()
        if self.refusal is not None:
            inner.truncate(0)

    @property
    def name(self) -> str:
        return str(self._inner.name)

    @property
    def file(self) -> IO[bytes]:
        return self if self.refusal is not None else self._inner.file  # type: ignore[return-value]

    def flush(self) -> None:
        if self.refusal is None:
            self._inner.file.flush()

    def write(self, data: bytes) -> int:
        if self.refusal is not None:
            return len(data)
        self._since_check += len(data)
        if self._since_check >= CHECK_EVERY:
            self._since_check = 0
            self.refusal = self._owner.check()
            if self.refusal is not None:
                self._inner.truncate(0)
                return len(data)
        return int(self._inner.write(data))

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class IncomingFiles:
    """The opener of received datasets' temporary files; see the module doc."""

    def __init__(self, spool: Spool, min_free_bytes: int) -> None:
        self.spool = spool
        self.min_free_bytes = min_free_bytes
        self._open: weakref.WeakValueDictionary[str, GuardedFile] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def check(self) -> str | None:
        """None while the spool has room; else why not."""
        free = self.spool.free_bytes()
        if free < self.min_free_bytes:
            return f"free space {free} bytes, below store.min_free_bytes ({self.min_free_bytes})"
        return None

    def open(self, **kwargs: Any) -> GuardedFile:
        """`tempfile.NamedTemporaryFile(**kwargs)` in the spool's tmp/, guarded."""
        kwargs["dir"] = self.spool.tmp
        f = GuardedFile(tempfile.NamedTemporaryFile(**kwargs), self)  # noqa: SIM115 - pynetdicom closes it
        with self._lock:
            self._open[f.name] = f
        return f

    def refusal(self, path: str) -> str | None:
        """Why the dataset received into `path` was dropped, or None if it was not."""
        with self._lock:
            f = self._open.get(str(path))
        return f.refusal if f is not None else None
