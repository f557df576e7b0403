"""One instance at a time: named locks held as rows.

Works the same on SQLite and PostgreSQL (the primary key does the guarding). A lock
older than its time-to-live is taken over (its holder is presumed dead), and so at
once is one whose holder was a process on this machine that no longer runs. A holder
that runs for long keeps its lock fresh with `heartbeat`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import LockedError
from .guard import guarded
from .tables import locks

DEFAULT_TTL = timedelta(hours=6)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@guarded
class LockStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, name: str, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None) -> Iterator[None]:
        """Hold lock `name` for the with-block; raise LockedError if someone else has it."""
        me = holder_id()
        self.acquire(name, me, ttl, now or datetime.now(UTC))
        try:
            yield
        finally:
            self.release(name, me)

    def acquire(self, name: str, me: str, ttl: timedelta, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(locks.delete().where(locks.c.name == name, locks.c.acquired_at < now - ttl))
            row = db.execute(sa.select(locks.c.holder).where(locks.c.name == name)).first()
            if row is not None and _dead(row.holder):
                db.execute(locks.delete().where(locks.c.name == name, locks.c.holder == row.holder))
        try:
            with self.engine.begin() as db:
                db.execute(locks.insert().values(name=name, holder=me, acquired_at=now))
        except IntegrityError:
            raise LockedError(f"{name} is already running ({self._who(name)}); wait for it to finish, "
                              f"or if it died, run again after {ttl} or delete its row from the locks table") from None

    def _who(self, name: str) -> str:
        with self.engine.connect() as db:
            row = db.execute(sa.select(locks).where(locks.c.name == name)).first()
        return f"{row.holder} since {row.acquired_at:%Y-%m-%d %H:%M} UTC" if row else "another process"

    def heartbeat(self, name: str, me: str, now: datetime) -> None:
        """Keep a held lock fresh so others know its holder is alive."""
        with self.engine.begin() as db:
            db.execute(locks.update().where(locks.c.name == name, locks.c.holder == me).values(acquired_at=now))

    def release(self, name: str, me: str) -> None:
        with self.engine.begin() as db:
            db.execute(locks.delete().where(locks.c.name == name, locks.c.holder == me))


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
