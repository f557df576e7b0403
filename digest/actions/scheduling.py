"""The scheduler's own record, for the scheduler front: the one-scheduler lock and its
heartbeat, the runs it made, the jobs it stored, and the editions it must resume."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..db import Database

LOCK = "schedule"


def take_lock(db: Database, me: str, ttl: timedelta, now: datetime) -> None:
    """Become the one scheduler of this database (LockedError naming the other one)."""
    db.locks.acquire(LOCK, me, ttl, now)


def beat(db: Database, me: str, now: datetime) -> None:
    """Keep the lock fresh so another scheduler knows this one is alive."""
    db.locks.heartbeat(LOCK, me, now)


def release_lock(db: Database, me: str) -> None:
    db.locks.release(LOCK, me)


def record_run(db: Database, list_name: str, scheduled_for: datetime | None, outcome: str, now: datetime) -> None:
    db.runs.record(list_name, scheduled_for, outcome, now)


def last_runs(db: Database) -> dict[str, dict[str, Any]]:
    """Each list's latest run: started_at, outcome..."""
    return db.runs.last()


def stored_jobs(db: Database) -> dict[str, tuple[str, datetime | None]]:
    """{job id: (its trigger as text, its next run time)} as the scheduler stored them."""
    return db.runs.stored_jobs()


def delete_jobs(db: Database, ids: list[str]) -> None:
    db.runs.delete_jobs(ids)


def requeue_orders(db: Database) -> int:
    """Orders a scheduler that died was carrying out: waiting again (they resume from the ledger)."""
    return db.orders.requeue_running()


def unfinished(db: Database, list_name: str) -> bool:
    """Whether the list has an edition a crash, a stop or a deferral left unfinished."""
    return bool(db.ledger.unfinished(list_name))


def next_retry(db: Database, list_name: str) -> datetime | None:
    """When the earliest deferred message of the list's unfinished editions may go again."""
    due = [when for edition in db.ledger.unfinished(list_name) if (when := db.ledger.next_retry(edition.id))]
    return min(due, default=None)
