"""A list's subscribers as the editor sees them (read only): how many are on it now and
how that changed, and a page of them at a time (search, filters, keyset pages that stay
fast at a million rows). What changes them is ListStore's (lists.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..models import EVERY_LIST, Reason
from .guard import guarded
from .tables import subscribers, suppressions
from .types import UTCDateTime

STATES = ("active", "left", "unsubscribed", "removed", "bounced")
BOUNCED = (Reason.BOUNCED.value, Reason.COMPLAINED.value)


@dataclass(frozen=True)
class Counts:
    confirmed: int          # on the list, mailed: active and not suppressed
    left: int               # retired from the list file, unsubscribed or removed
    bounced: int            # bounced or complained


@guarded
class SubscriberStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def counts(self, list_name: str) -> Counts:
        reason = _first_reason(list_name)
        state = sa.case((reason.c.reason.in_(BOUNCED), "bounced"), (reason.c.reason.is_not(None), "left"),
                        (subscribers.c.active.is_(True), "confirmed"), else_="left")
        query = (sa.select(state.label("state"), sa.func.count().label("n"))
                 .select_from(subscribers.outerjoin(reason, reason.c.email_key == subscribers.c.email_key))
                 .where(subscribers.c.list_name == list_name).group_by(state))
        with self.engine.connect() as db:
            found = {row.state: int(row.n) for row in db.execute(query)}
        return Counts(found.get("confirmed", 0), found.get("left", 0), found.get("bounced", 0))

    def growth(self, list_name: str, moments: Sequence[datetime]) -> list[int]:
        """How many were on the list (joined, not yet left or suppressed) at each moment:
        one pass over the list, whatever the number of moments."""
        reason = _first_reason(list_name)
        columns = [sa.func.sum(sa.case((_subscribed_at(reason, moment), 1), else_=0)).label(f"m{n}")
                   for n, moment in enumerate(moments)]
        query = (sa.select(*columns)
                 .select_from(subscribers.outerjoin(reason, reason.c.email_key == subscribers.c.email_key))
                 .where(subscribers.c.list_name == list_name))
        with self.engine.connect() as db:
            row = db.execute(query).one()
        return [int(value or 0) for value in row]

    def page(self, list_name: str, words: str = "", state: str = "", origin: str = "", after: int = 0,
             size: int = 50) -> list[dict[str, Any]]:
        """Up to `size` subscribers after id `after` (keyset), oldest first, matching the words
        (in the address or the name), the state and where they came from."""
        reason = _first_reason(list_name)
        query = (sa.select(subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.origin,
                           subscribers.c.active, subscribers.c.created_at, subscribers.c.retired_at,
                           reason.c.reason, reason.c.at.label("suppressed_at"))
                 .select_from(subscribers.outerjoin(reason, reason.c.email_key == subscribers.c.email_key))
                 .where(subscribers.c.list_name == list_name, subscribers.c.id > after)
                 .order_by(subscribers.c.id).limit(size))
        for word in words.lower().split()[:5]:
            pattern = f"%{_escaped(word)}%"
            query = query.where(sa.or_(sa.func.lower(subscribers.c.email).like(pattern, escape="\\"),
                                       sa.func.lower(subscribers.c.name).like(pattern, escape="\\")))
        if origin:
            query = query.where(subscribers.c.origin == origin)
        if state:
            query = query.where(_state(reason, state))
        with self.engine.connect() as db:
            return [{**dict(row._mapping), "state": _state_of(row)} for row in db.execute(query)]


def _first_reason(list_name: str) -> sa.Subquery:
    """Per address, the earliest suppression that keeps it off list_name (its own or "*")."""
    earliest = (sa.select(suppressions.c.email_key, sa.func.min(suppressions.c.at).label("at"))
                .where(suppressions.c.list_name.in_([list_name, EVERY_LIST]))
                .group_by(suppressions.c.email_key).subquery())
    return (sa.select(suppressions.c.email_key, sa.type_coerce(earliest.c.at, UTCDateTime).label("at"),
                      sa.func.min(suppressions.c.reason).label("reason"))
            .join(earliest, sa.and_(earliest.c.email_key == suppressions.c.email_key,
                                    earliest.c.at == suppressions.c.at))
            .where(suppressions.c.list_name.in_([list_name, EVERY_LIST]))
            .group_by(suppressions.c.email_key, earliest.c.at).subquery())


def _subscribed_at(reason: sa.Subquery, moment: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(subscribers.c.created_at <= moment,
                   sa.or_(subscribers.c.retired_at.is_(None), subscribers.c.retired_at > moment),
                   sa.or_(reason.c.at.is_(None), reason.c.at > moment))


def _state(reason: sa.Subquery, state: str) -> sa.ColumnElement[bool]:
    if state == "active":
        return sa.and_(subscribers.c.active.is_(True), reason.c.reason.is_(None))
    if state == "bounced":
        return reason.c.reason.in_(BOUNCED)
    if state in ("unsubscribed", "removed"):
        return reason.c.reason == (Reason.UNSUBSCRIBED if state == "unsubscribed" else Reason.REMOVED).value
    return sa.and_(subscribers.c.active.is_(False), reason.c.reason.is_(None))     # left: off the list file


def _state_of(row: sa.Row) -> str:
    if row.reason in BOUNCED:
        return "bounced"
    if row.reason:
        return str(row.reason)
    return "active" if row.active else "left"


def _escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
