"""One instance at a time: a named lock held as a row in the database.

Works the same on SQLite and PostgreSQL (the primary key does the guarding). A lock
older than its time-to-live is taken over (its holder is presumed dead), and so at
once is one whose holder was a process on this machine that no longer runs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .errors import DigestError
from .store import Store, UTCDateTime, metadata

locks = sa.Table(
    "locks", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
)


class LockedError(DigestError):
    """Another process holds the lock."""


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def hold(store: Store, name: str, ttl: timedelta = timedelta(hours=6),
         now: datetime | None = None) -> Iterator[None]:
    """Hold lock `name` for the with-block; raise LockedError if someone else has it."""
    me = holder_id()
    acquire(store, name, me, ttl, now or datetime.now(UTC))
    try:
        yield
    finally:
        release(store, name, me)


def acquire(store: Store, name: str, me: str, ttl: timedelta, now: datetime) -> None:
    locks.create(store.engine, checkfirst=True)
    with store.engine.begin() as db:
        db.execute(locks.delete().where(locks.c.name == name, locks.c.acquired_at < now - ttl))
        row = db.execute(sa.select(locks.c.holder).where(locks.c.name == name)).first()
        if row is not None and _dead(row.holder):
            db.execute(locks.delete().where(locks.c.name == name, locks.c.holder == row.holder))
    try:
        with store.engine.begin() as db:
            db.execute(locks.insert().values(name=name, holder=me, acquired_at=now))
    except IntegrityError:
        with store.engine.connect() as db:
            row = db.execute(sa.select(locks).where(locks.c.name == name)).first()
        who = f"{row.holder} since {row.acquired_at:%Y-%m-%d %H:%M} UTC" if row else "another process"
        raise LockedError(f"{name} is already running ({who}); wait for it to finish, "
                          f"or if it died, run again after {ttl} or delete its row from the locks table") from None


def _dead(holder: str) -> bool:
    """A holder on this machine whose process is gone (killed, crashed) holds nothing."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release(store: Store, name: str, me: str) -> None:
    with store.engine.begin() as db:
        db.execute(locks.delete().where(locks.c.name == name, locks.c.holder == me))
