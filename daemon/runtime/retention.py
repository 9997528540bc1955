"""The retention service: hourly, finished studies past `store.retention_days`, and FAILED
ones past `store.failed_retention_days`, are removed (`daemon.store.retention.purge`), and
so are files of aborted transfers in the spool's tmp/, and the rejection counters and
inference runs unused for `store.retention_days` (`daemon.store.telemetry.prune`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from daemon.runtime.context import Context
from daemon.store import telemetry
from daemon.store.recorder import utcnow
from daemon.store.retention import purge

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 3600.0
# a file in the spool's tmp/ untouched this long belongs to an aborted transfer
STALE_TMP_SECONDS = 3600.0


class RetentionService:
    name = "retention"

    def __init__(self, ctx: Context, clock: Callable[[], datetime] = utcnow) -> None:
        self._ctx = ctx
        self._clock = clock

    def start(self) -> None:
        self._ctx.every("retention", RETENTION_INTERVAL_SECONDS, self.tick, first=self._clock())

    def stop(self) -> None:
        self._ctx.cancel("retention")

    def tick(self) -> None:
        store = self._ctx.settings.store
        stale_after = max(STALE_TMP_SECONDS, 2 * self._ctx.settings.node.network_timeout_s)
        try:
            removed = self._ctx.spool.clear_stale_tmp(stale_after)
            if removed:
                log.info("removed %d file(s) of aborted transfers from the spool's tmp/", removed)
            now = self._clock()
            purge(self._ctx.sessions, self._ctx.spool, now, store.retention_days,
                  store.failed_retention_days, store.data_dir)
            with self._ctx.sessions() as session:  # /metrics' own rows (daemon.store.telemetry)
                telemetry.prune(session, now - timedelta(days=store.retention_days))
        except Exception:
            log.exception("retention run failed")
