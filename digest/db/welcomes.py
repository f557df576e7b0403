"""The welcome email after a confirmed subscription: at most one per list and address."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .guard import guarded
from .tables import welcomes
from .upsert import insert_ignore


@guarded
class WelcomeStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(self, list_name: str, key: str, now: datetime) -> bool:
        """Record that key is being welcomed to list_name; False when it was before (or
        another request is doing it now): only the caller that gets True sends."""
        with self.engine.begin() as db:
            return insert_ignore(db, welcomes, {"list_name": list_name, "email_key": key, "sent_at": now}) == 1

    def release(self, list_name: str, key: str) -> None:
        """The welcome could not be sent: a later confirmation click may try again."""
        with self.engine.begin() as db:
            db.execute(welcomes.delete().where(welcomes.c.list_name == list_name, welcomes.c.email_key == key))

    def sent(self, list_name: str, key: str) -> bool:
        query = sa.select(welcomes.c.sent_at).where(welcomes.c.list_name == list_name, welcomes.c.email_key == key)
        with self.engine.connect() as db:
            return db.execute(query).first() is not None
