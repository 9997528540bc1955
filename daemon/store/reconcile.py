"""Bringing the spool and the database back into agreement after a crash.

A crash between renaming a file into the spool and committing its row leaves a
complete, fsync'd file that was never acknowledged. At start, if the previous run
did not stop cleanly (its marker file is still there), every such file is
adopted: its row is recorded as if it had just arrived (the sender, which saw no
acknowledgement, will send it again; that is then a duplicate). A file that
cannot be read is removed (it was never acknowledged either).
"""

from __future__ import annotations

import logging
import os

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from daemon.store.header import InvalidInstance, read_header
from daemon.store.models import Instance
from daemon.store.recorder import InstanceRecord, Outcome, Recorder
from daemon.store.spool import Spool, fsync_dir

log = logging.getLogger(__name__)

RUNNING_MARKER = ".running"
BATCH = 500


def mark_running(spool: Spool) -> bool:
    """Leave the marker of a running node; return whether the last run stopped uncleanly."""
    marker = spool.root / RUNNING_MARKER
    unclean = marker.exists()
    marker.touch()
    fsync_dir(spool.root)
    return unclean


def mark_stopped(spool: Spool) -> None:
    marker = spool.root / RUNNING_MARKER
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    fsync_dir(spool.root)


def adopt_orphans(spool: Spool, recorder: Recorder, sessions: sessionmaker[Session]) -> int:
    """Record every spool file that has no row; return how many were adopted."""
    adopted = 0
    batch: list[str] = []
    for relative in spool.iter_files():
        batch.append(relative)
        if len(batch) >= BATCH:
            adopted += _adopt(batch, spool, recorder, sessions)
            batch = []
    if batch:
        adopted += _adopt(batch, spool, recorder, sessions)
    if adopted:
        log.warning("adopted %d complete but unrecorded instance file(s) found in the spool", adopted)
    return adopted


def _adopt(
    batch: list[str], spool: Spool, recorder: Recorder, sessions: sessionmaker[Session]
) -> int:
    with sessions() as session:
        known = set(session.scalars(select(Instance.path).where(Instance.path.in_(batch))))
    adopted = 0
    for relative in batch:
        if relative in known:
            continue
        path = spool.absolute(relative)
        try:
            header = read_header(path)
        except InvalidInstance as exc:
            log.warning("removing unreadable unrecorded spool file %s: %s", relative, exc)
            os.unlink(path)
            continue
        expected = spool.relative_path(
            header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
        )
        if expected != relative:
            log.warning("removing misplaced unrecorded spool file %s", relative)
            os.unlink(path)
            continue
        outcome = recorder.record(
            InstanceRecord.from_header(header, relative, path.stat().st_size, calling_ae="")
        )
        if outcome is Outcome.DUPLICATE:  # its instance is recorded under another file
            log.warning("removing unrecorded spool file %s: its instance is stored in another file", relative)
            os.unlink(path)
            continue
        adopted += 1
    return adopted
