"""Orders: what the web asked to be done (send a period now, deliver an approved edition),
carried out by the scheduler within seconds, never inside a web request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from .guard import guarded
from .tables import orders

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"


@guarded
class OrderStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def place(self, list_name: str, kind: str, now: datetime, since: datetime | None = None,
              until: datetime | None = None, edition_id: int | None = None) -> int:
        """A new order, waiting; its id. One waiting or running order per list and kind at
        a time: asking again returns the one already there."""
        with self.engine.begin() as db:
            found = db.execute(sa.select(orders.c.id).where(orders.c.list_name == list_name, orders.c.kind == kind,
                                                            orders.c.status.in_([WAITING, RUNNING]))).first()
            if found is not None:
                return int(found.id)
            inserted = db.execute(orders.insert().values(list_name=list_name, kind=kind, since=since, until=until,
                                                         edition_id=edition_id, status=WAITING, requested_at=now))
            key = inserted.inserted_primary_key
            return int(key[0]) if key else 0

    def claim(self, now: datetime) -> sa.Row | None:
        """The oldest waiting order, now running (only the caller that moved it gets it)."""
        with self.engine.begin() as db:
            for row in db.execute(sa.select(orders).where(orders.c.status == WAITING).order_by(orders.c.id)).all():
                moved = db.execute(orders.update().where(orders.c.id == row.id, orders.c.status == WAITING)
                                   .values(status=RUNNING, started_at=now))
                if moved.rowcount == 1:
                    return db.execute(sa.select(orders).where(orders.c.id == row.id)).one()
        return None

    def finish(self, order_id: int, failed: bool, outcome: str, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(orders.update().where(orders.c.id == order_id).values(
                status=FAILED if failed else DONE, outcome=outcome[:2000], finished_at=now))

    def release(self, order_id: int) -> None:
        """Back to waiting (the list was busy with another send): tried again in a moment."""
        with self.engine.begin() as db:
            db.execute(orders.update().where(orders.c.id == order_id).values(status=WAITING, started_at=None))

    def requeue_running(self) -> int:
        """Orders a scheduler that died was carrying out: waiting again (what they do resumes
        from the ledger, so nobody gets a second copy)."""
        with self.engine.begin() as db:
            return db.execute(orders.update().where(orders.c.status == RUNNING)
                              .values(status=WAITING, started_at=None)).rowcount

    def get(self, order_id: int) -> sa.Row | None:
        with self.engine.connect() as db:
            return db.execute(sa.select(orders).where(orders.c.id == order_id)).first()

    def recent(self, list_name: str, limit: int = 5) -> Sequence[sa.Row]:
        query = sa.select(orders).where(orders.c.list_name == list_name).order_by(orders.c.id.desc()).limit(limit)
        with self.engine.connect() as db:
            return db.execute(query).all()
