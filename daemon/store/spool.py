"""The spool: where received instances live on disk, written crash-safely.

A file enters the spool only complete: it is written (or received) into
`<spool>/tmp/`, fsync'd, renamed into `<spool>/<study>/<series>/<sop>.dcm`, and the
directory is fsync'd. After a crash, `tmp/` holds at most incomplete files, which
`clear_tmp` removes at start; nothing in `tmp/` is ever counted as stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from daemon.store.header import valid_uid

TMP_DIR = "tmp"
SUFFIX = ".dcm"


def path_component(uid: str) -> str:
    """A UID as a file name: itself when it is a valid UID (PS3.5 9.1: digits and dots,
    never `tmp`, `.` or `..`), else `x` and the whole SHA-256 of it. The two kinds
    cannot collide (a UID never starts with `x`), nor two digests in practice. The
    receiver refuses invalid UIDs before this; the digest keeps any other caller safe."""
    if valid_uid(uid):
        return uid
    return "x" + hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> int:
    """fsync `path`; return its size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


class Spool:
    """A directory of instance files; paths handed out are relative to `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / TMP_DIR
        self._known_dirs: set[Path] = set()
        self._claims: set[str] = set()
        self._claims_lock = threading.Lock()

    def prepare(self) -> int:
        """Create the spool and remove leftovers of interrupted writes; return their count."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        removed = 0
        for entry in os.scandir(self.tmp):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        fsync_dir(self.tmp)
        return removed

    def clear_stale_tmp(self, older_than_s: float) -> int:
        """Remove files in tmp/ untouched for `older_than_s`: the remains of transfers
        whose association was aborted (a live transfer keeps writing its file)."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in os.scandir(self.tmp):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:  # finished (renamed) meanwhile
                continue
        return removed

    def relative_path(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        return "/".join(
            (path_component(study_uid), path_component(series_uid), path_component(sop_uid) + SUFFIX)
        )

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def new_temp_path(self) -> Path:
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def commit_file(self, temp: Path, relative: str) -> int:
        """Make a complete file in tmp/ durable under `relative` (replacing an unrecorded
        leftover); return its size."""
        size = fsync_file(temp)
        final = self.root / relative
        self._ensure_dir(final.parent)
        try:
            os.replace(temp, final)
        except FileNotFoundError:  # the directory was removed meanwhile (retention)
            self._known_dirs.discard(final.parent)
            self._ensure_dir(final.parent)
            os.replace(temp, final)
        fsync_dir(final.parent)
        return size

    def commit_new(self, temp: Path, relative: str) -> int:
        """Like `commit_file`, but never over a file already there (FileExistsError):
        a hard link is the atomic rename that does not replace. Returns the size."""
        size = fsync_file(temp)
        final = self.root / relative
        self._ensure_dir(final.parent)
        try:
            os.link(temp, final)
        except FileNotFoundError:  # the directory was removed meanwhile (retention)
            self._known_dirs.discard(final.parent)
            self._ensure_dir(final.parent)
            os.link(temp, final)
        os.unlink(temp)
        fsync_dir(final.parent)
        return size

    @contextlib.contextmanager
    def claim(self, relative: str) -> Iterator[str]:
        """A path for a new file of this process: `relative` when no file is there and no
        other thread holds it, else a free name beside it (`<name>.<random>.dcm`), so
        that two copies of one instance never write over each other."""
        with self._claims_lock:
            if relative in self._claims or os.path.lexists(self.root / relative):
                relative = relative.removesuffix(SUFFIX) + f".{uuid.uuid4().hex[:12]}{SUFFIX}"
            self._claims.add(relative)
        try:
            yield relative
        finally:
            with self._claims_lock:
                self._claims.discard(relative)

    def write_bytes(self, relative: str, data: bytes) -> Path:
        """Write `data` atomically and durably under `relative`."""
        temp = self.new_temp_path()
        with open(temp, "wb") as f:
            f.write(data)
        self.commit_file(temp, relative)
        return self.root / relative

    def discard(self, temp: Path) -> None:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass

    def remove(self, relative: str) -> None:
        """Remove a file and then its directories as they become empty."""
        path = self.root / relative
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        for parent in (path.parent, path.parent.parent):
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break
            self._known_dirs.discard(parent)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def iter_files(self) -> Iterator[str]:
        """Relative paths of every stored file (never those in tmp/)."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and TMP_DIR in dirnames:
                dirnames.remove(TMP_DIR)
            for name in filenames:
                if name.endswith(SUFFIX):
                    yield os.path.relpath(os.path.join(dirpath, name), self.root)

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._known_dirs:
            return
        missing = []
        d = directory
        while not d.is_dir():
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            try:
                m.mkdir()
            except FileExistsError:
                pass
            fsync_dir(m.parent)
        self._known_dirs.add(directory)
