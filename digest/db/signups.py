"""Sign-ups whose confirmation mail went and was not clicked yet: the dashboard's "pending"."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .guard import guarded
from .tables import signups
from .upsert import insert_ignore


@guarded
class SignupStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def asked(self, list_name: str, key: str, now: datetime) -> None:
        with self.engine.begin() as db:
            if not insert_ignore(db, signups, {"list_name": list_name, "email_key": key, "asked_at": now}):
                db.execute(signups.update().where(signups.c.list_name == list_name, signups.c.email_key == key)
                           .values(asked_at=now))

    def confirmed(self, list_name: str, key: str) -> None:
        with self.engine.begin() as db:
            db.execute(signups.delete().where(signups.c.list_name == list_name, signups.c.email_key == key))

    def pending(self, list_name: str, since: datetime) -> int:
        """Sign-ups asked for since `since` (links older than that no longer work) and not confirmed."""
        query = sa.select(sa.func.count()).select_from(signups).where(signups.c.list_name == list_name,
                                                                      signups.c.asked_at >= since)
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())
