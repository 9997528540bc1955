"""What the console's handlers share: the settings, the database, the spool, the rules in
force, the readiness checks and the clock (built once by `daemon.web.service`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from daemon.config import Settings
from daemon.routing_rules import RulesHolder
from daemon.store.spool import Spool

# readiness: part name -> a check returning None when well, else what is wrong
Check = Callable[[], str | None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebDeps:
    settings: Settings
    sessions: sessionmaker[Session]
    spool: Spool
    holder: RulesHolder | None = None  # the router's rules in force; None: none runs here
    checks: Mapping[str, Check] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
