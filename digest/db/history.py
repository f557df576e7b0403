"""What the editor did, edition by edition: the picks each frozen edition used.

A pick is marked used with the very moment its edition was frozen (ledger.freeze sets
picks.used_at and editions.created_at from one clock reading), so the two join on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..models import EditionStatus, PickAction
from .guard import guarded
from .tables import editions, links, picks


@dataclass(frozen=True)
class PastEdition:
    """A frozen edition and the editor's picks it was made with."""

    edition_id: int
    since: datetime
    until: datetime
    pinned: frozenset[str]
    excluded: frozenset[str]


@dataclass(frozen=True)
class ClickedEdition:
    """A sent edition's threads with what subscribers did: key -> (place shown, clicks)."""

    edition_id: int
    since: datetime
    until: datetime
    threads: dict[str, tuple[int, int]]


@guarded
class EditorHistory:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def editions(self, list_name: str) -> list[PastEdition]:
        """The list's frozen editions, oldest first, each with its pins and excludes."""
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, picks.c.comment_key, picks.c.action)
                 .outerjoin(picks, sa.and_(picks.c.list_name == editions.c.list_name,
                                           picks.c.used_at == editions.c.created_at))
                 .where(editions.c.list_name == list_name).order_by(editions.c.id))
        found: dict[int, tuple[datetime, datetime, set[str], set[str]]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                since, until, pinned, excluded = found.setdefault(row.id, (row.since, row.until, set(), set()))
                if row.action == PickAction.PIN.value:
                    pinned.add(row.comment_key)
                elif row.action == PickAction.EXCLUDE.value:
                    excluded.add(row.comment_key)
        return [PastEdition(key, since, until, frozenset(pinned), frozenset(excluded))
                for key, (since, until, pinned, excluded) in found.items()]

    def clicked(self, list_name: str) -> list[ClickedEdition]:
        """The list's sent editions whose threads' links were counted, oldest first."""
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, links.c.thread,
                           sa.func.min(links.c.position).label("position"), sa.func.sum(links.c.clicks).label("n"))
                 .join(links, links.c.edition_id == editions.c.id)
                 .where(editions.c.list_name == list_name, editions.c.status == EditionStatus.SENT.value,
                        links.c.thread.is_not(None))
                 .group_by(editions.c.id, editions.c.since, editions.c.until, links.c.thread)
                 .order_by(editions.c.id))
        found: dict[int, ClickedEdition] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                edition = found.setdefault(row.id, ClickedEdition(row.id, row.since, row.until, {}))
                edition.threads[row.thread] = (int(row.position or 0), int(row.n or 0))
        return list(found.values())
