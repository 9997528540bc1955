"""What the node's services share: settings, database, spool, scheduler and bus."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.runtime.bus import Bus
from daemon.store.db import create_schema, make_engine, make_sessionmaker
from daemon.store.spool import Spool

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    spool: Spool
    scheduler: BackgroundScheduler
    bus: Bus = field(default_factory=Bus)

    def every(self, job_id: str, seconds: float, fn: Callable[[], None], first: datetime | None = None) -> None:
        """Run `fn` on the scheduler every `seconds` (first at `first`, else after one
        interval); a run still going when the next is due is not doubled."""
        extra: dict[str, Any] = {} if first is None else {"next_run_time": first}
        self.scheduler.add_job(
            fn, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True, **extra
        )

    def cancel(self, job_id: str) -> None:
        """Remove a timer added with `every` (nothing when there is none)."""
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)


# What the node creates (nadir.db and its journal, the spool, outputs) is its user's
# alone: files 0600, folders 0700. The systemd units say the same (UMask=0077).
PRIVATE_UMASK = 0o077


def build_context(settings: Settings) -> Context:
    """Create the data folder, the schema and the spool; nothing is started."""
    os.umask(PRIVATE_UMASK)
    settings.store.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(settings.store.effective_database_url)
    create_schema(engine)
    spool = Spool(settings.store.spool_dir)
    removed = spool.prepare()
    if removed:
        log.info("removed %d incomplete file(s) of interrupted transfers from the spool", removed)
    scheduler = BackgroundScheduler(timezone="UTC")
    return Context(settings, engine, make_sessionmaker(engine), spool, scheduler)
