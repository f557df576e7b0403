"""The editor's picks: comments pinned or excluded for the next edition of a list."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ..models import PickAction
from .guard import guarded
from .tables import comments, picks


@guarded
class PickStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def set(self, list_name: str, comment_key: str, action: PickAction, when: datetime) -> None:
        """Pin or exclude a comment for the next edition of a list (replacing an earlier pick)."""
        with self.engine.begin() as db:
            db.execute(picks.delete().where(picks.c.list_name == list_name, picks.c.comment_key == comment_key,
                                            picks.c.used_at.is_(None)))
            db.execute(picks.insert().values(list_name=list_name, comment_key=comment_key,
                                             action=action.value, created_at=when))

    def clear(self, list_name: str, comment_key: str | None = None) -> int:
        query = picks.delete().where(picks.c.list_name == list_name, picks.c.used_at.is_(None))
        if comment_key is not None:
            query = query.where(picks.c.comment_key == comment_key)
        with self.engine.begin() as db:
            return db.execute(query).rowcount

    def waiting(self, list_name: str) -> dict[str, PickAction]:
        """{comment key: action} waiting for the next edition of a list, oldest first."""
        query = sa.select(picks.c.comment_key, picks.c.action).where(
            picks.c.list_name == list_name, picks.c.used_at.is_(None)).order_by(picks.c.created_at)
        with self.engine.connect() as db:
            return {r.comment_key: PickAction(r.action) for r in db.execute(query)}

    def use(self, list_name: str, when: datetime) -> None:
        """The picks went into an edition: they no longer apply to the next one."""
        with self.engine.begin() as db:
            db.execute(picks.update().where(picks.c.list_name == list_name, picks.c.used_at.is_(None))
                       .values(used_at=when))

    def comment_exists(self, key: str) -> bool:
        with self.engine.connect() as db:
            return db.execute(sa.select(comments.c.id).where(comments.c.key == key).limit(1)).first() is not None
