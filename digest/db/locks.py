"""One instance at a time: named locks held as rows.

Works the same on SQLite and PostgreSQL (the primary key does the guarding). A holder
keeps its lock fresh with a heartbeat (a thread, every fifth of the time-to-live), so a
lock whose holder is alive is never taken over, however long the work. A lock not
refreshed for its time-to-live is taken over (its holder is presumed dead), and so at
once is one whose holder was a process on this machine that no longer runs. Holding is
re-entrant for the same thread (a send holds the list's lock around its sync).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import LockedError
from .guard import guarded
from .tables import locks

log = logging.getLogger(__name__)
DEFAULT_TTL = timedelta(minutes=5)


def holder_id() -> str:
    """This thread of this process on this machine: host:pid:thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@guarded
class LockStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, name: str, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None,
             wait: timedelta = timedelta(0), reentrant: bool = True) -> Iterator[None]:
        """Hold lock `name` for the with-block, beating every ttl/5; raise LockedError if
        someone else still has it after `wait`. Inside a block of the same thread that
        holds it: a no-op (unless not reentrant: then it is refused like any other)."""
        me = holder_id()
        if reentrant and self.holder(name) == me:
            yield
            return
        self._acquire_within(name, me, ttl, now or datetime.now(UTC), wait)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(name, me, ttl, stop), daemon=True, name=f"lock {name}")
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            self.release(name, me)

    def _acquire_within(self, name: str, me: str, ttl: timedelta, now: datetime, wait: timedelta) -> None:
        deadline = time.monotonic() + wait.total_seconds()
        while True:
            try:
                self.acquire(name, me, ttl, now)
                return
            except LockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)

    def _beat(self, name: str, me: str, ttl: timedelta, stop: threading.Event) -> None:
        while not stop.wait(ttl.total_seconds() / 5):
            try:
                self.heartbeat(name, me, datetime.now(UTC))
            except Exception as error:  # noqa: BLE001 - a missed beat is retried; ttl allows four
                log.warning("could not refresh lock %s (%s); trying again", name, error)

    def state(self, name: str) -> tuple[str, datetime, bool] | None:
        """(holder, its last heartbeat, whether it is a process on this machine that is gone)
        of a held lock, or None."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(locks.c.holder, locks.c.acquired_at).where(locks.c.name == name)).first()
        return (row.holder, row.acquired_at, _dead(row.holder)) if row else None

    def holder(self, name: str) -> str | None:
        with self.engine.connect() as db:
            return db.execute(sa.select(locks.c.holder).where(locks.c.name == name)).scalar()

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
    host, pid = (holder.split(":") + [""])[:2]     # host:pid, or host:pid:thread
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
