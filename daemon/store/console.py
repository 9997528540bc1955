"""Tables of the admins' console (daemon/web): users, sessions, the audit trail, and every
saved version of the rules files the console edits.

- `console_users`: local accounts (`nadir user add`); the password is stored only as an
  argon2 hash (daemon/web/passwords.py).
- `console_sessions`: one row per browser login; the cookie holds a random token, the row
  only its sha256, the CSRF token of the session, and when it was last used.
- `audit`: who changed what, when, from where (a route saved or restored, a job retried,
  an output resent, a C-ECHO, a login).
- `rules_versions`: every saved text of the routing file and of the site's criteria
  overrides, with who saved it and why; any can be shown, diffed and restored.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from daemon.store.db import Base
from daemon.store.jobs import utc


class Role(enum.StrEnum):
    ADMIN = "admin"  # reads and changes
    VIEWER = "viewer"  # reads


class ConsoleUser(Base):
    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    remote: Mapped[str | None] = mapped_column(String(128), nullable=True)


class RulesVersion(Base):
    __tablename__ = "rules_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)  # "routing" or "site:<criterion>"
    path: Mapped[str] = mapped_column(String(1024))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text)
    user_name: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- users ---------------------------------------------------------------------------


def user_by_name(session: Session, name: str) -> ConsoleUser | None:
    return session.scalar(select(ConsoleUser).where(ConsoleUser.name == name))


def put_user(session: Session, name: str, role: Role, password_hash: str, now: datetime) -> bool:
    """Add the user, or set the role and password of an existing one; commits. True when added."""
    user = user_by_name(session, name)
    added = user is None
    if user is None:
        user = ConsoleUser(name=name, created=now)
        session.add(user)
    user.role = role.value
    user.password_hash = password_hash
    if not added:  # a new password ends the user's sessions
        session.execute(delete(ConsoleSession).where(ConsoleSession.user_name == name))
    session.commit()
    return added


def remove_user(session: Session, name: str) -> bool:
    """Remove the user and end their sessions; commits. False when there is no such user."""
    user = user_by_name(session, name)
    if user is None:
        return False
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_name == name))
    session.delete(user)
    session.commit()
    return True


def list_users(session: Session) -> list[ConsoleUser]:
    return list(session.scalars(select(ConsoleUser).order_by(ConsoleUser.name)))


# --- sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    user_name: str
    role: Role
    csrf_token: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def open_session(session: Session, user_name: str, now: datetime) -> str:
    """A new login session; commits; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_sha256=_token_hash(token), user_name=user_name,
                               csrf_token=secrets.token_urlsafe(32), created=now, last_seen=now))
    session.commit()
    return token


def session_of(session: Session, token: str, now: datetime, idle: timedelta, max_age: timedelta) -> SessionInfo | None:
    """The live session of `token` (its last use moved to `now`), or None: unknown, expired
    (idle or too old, then removed), or its user is gone. Commits."""
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_sha256 == _token_hash(token)))
    if row is None:
        return None
    user = user_by_name(session, row.user_name)
    if user is None or now - utc(row.last_seen) > idle or now - utc(row.created) > max_age:
        session.delete(row)
        session.commit()
        return None
    row.last_seen = now
    session.commit()
    return SessionInfo(user.name, Role(user.role), row.csrf_token)


def close_session(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_sha256 == _token_hash(token)))
    session.commit()


def purge_sessions(session: Session, now: datetime, idle: timedelta, max_age: timedelta) -> int:
    """Remove expired sessions; commits."""
    result = session.execute(delete(ConsoleSession).where(
        (ConsoleSession.last_seen < now - idle) | (ConsoleSession.created < now - max_age)))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- audit ---------------------------------------------------------------------------


def audit(session: Session, now: datetime, user_name: str, action: str, target: str,
          detail: str | None = None, remote: str | None = None) -> None:
    """Within the caller's transaction: one audit entry."""
    session.add(AuditEntry(at=now, user_name=user_name, action=action, target=target[:256],
                           detail=detail, remote=remote))


def audit_entries(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [{"id": a.id, "at": utc(a.at).isoformat(), "user": a.user_name, "action": a.action,
             "target": a.target, "detail": a.detail, "remote": a.remote} for a in rows]


# --- rules versions ------------------------------------------------------------------


def add_version(session: Session, kind: str, path: str, text: str, comment: str, user_name: str,
                now: datetime) -> RulesVersion:
    """Within the caller's transaction: a saved version (flushed, so it has its id)."""
    version = RulesVersion(kind=kind, path=path, text=text, sha256=sha256_text(text), comment=comment,
                           user_name=user_name, at=now)
    session.add(version)
    session.flush()
    return version


def versions_of(session: Session, kind: str, limit: int = 200) -> list[RulesVersion]:
    """The saved versions of `kind`, newest first."""
    return list(session.scalars(select(RulesVersion).where(RulesVersion.kind == kind)
                                .order_by(RulesVersion.id.desc()).limit(limit)))


def version_by_id(session: Session, version_id: int) -> RulesVersion | None:
    return session.get(RulesVersion, version_id)


def version_as_dict(v: RulesVersion, with_text: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": v.id, "kind": v.kind, "path": v.path, "sha256": v.sha256, "comment": v.comment,
                           "user": v.user_name, "at": utc(v.at).isoformat()}
    if with_text:
        out["text"] = v.text
    return out
