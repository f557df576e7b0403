"""Provider events (SendGrid's webhook), each applied once: keyed by the provider's event
id, the "seen" row and the event's effect written in one transaction, so an event is
either applied and remembered, or neither (and the provider's retry applies it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..models import Reason
from .guard import guarded
from .lists import suppress_in
from .tables import deliveries, provider_events
from .upsert import insert_ignore


@dataclass(frozen=True)
class Effect:
    """What one provider event changes: a suppression and/or a delivery's last word."""

    email_key: str
    suppress_list: str | None = None       # a list name, EVERY_LIST, or None for no suppression
    reason: Reason | None = None
    detail: str = ""
    edition_id: int | None = None
    event: str = ""


@guarded
class EventStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def apply(self, event_id: str, kind: str, email: str, effect: Effect, now: datetime) -> bool:
        """Apply an event once; False when it was applied before (nothing changes)."""
        with self.engine.begin() as db:
            ident = event_id if len(event_id) <= 200 else "sha1:" + hashlib.sha1(event_id.encode()).hexdigest()
            seen = {"sg_event_id": ident, "event": kind[:30], "email": email[:320], "received_at": now}
            if insert_ignore(db, provider_events, seen) == 0:
                return False
            if effect.suppress_list is not None and effect.reason is not None:
                suppress_in(db, effect.email_key, effect.suppress_list, effect.reason, effect.detail, now)
            if effect.edition_id is not None:
                db.execute(deliveries.update().where(deliveries.c.edition_id == effect.edition_id,
                                                     deliveries.c.email_key == effect.email_key)
                           .values(event=effect.event[:20], event_at=now))
        return True
