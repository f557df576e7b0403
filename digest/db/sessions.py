"""The editor's logins: one row per session, named by the SHA-256 of the cookie's
random token (the token itself is never stored), with its expiry and its logout."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import sqlalchemy as sa

from .guard import guarded
from .tables import editor_sessions

KEEP_ENDED = timedelta(days=1)          # ended or expired rows are purged after this


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@guarded
class SessionStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def start(self, token: str, now: datetime, expires_at: datetime) -> None:
        """A new session for the cookie's token; rows long ended or expired are purged."""
        with self.engine.begin() as db:
            db.execute(editor_sessions.delete().where(sa.or_(editor_sessions.c.expires_at < now - KEEP_ENDED,
                                                             editor_sessions.c.ended_at < now - KEEP_ENDED)))
            db.execute(editor_sessions.insert().values(id=session_id(token), created_at=now, expires_at=expires_at))

    def is_live(self, token: str, now: datetime) -> bool:
        """The token names a session not logged out and not expired at now."""
        if not token:
            return False
        query = sa.select(editor_sessions.c.id).where(
            editor_sessions.c.id == session_id(token), editor_sessions.c.ended_at.is_(None),
            editor_sessions.c.expires_at > now)
        with self.engine.connect() as db:
            return db.execute(query).first() is not None

    def end(self, token: str, now: datetime) -> bool:
        """Log the session out; False when it was not live."""
        query = (editor_sessions.update()
                 .where(editor_sessions.c.id == session_id(token), editor_sessions.c.ended_at.is_(None))
                 .values(ended_at=now))
        with self.engine.begin() as db:
            return bool(db.execute(query).rowcount)
