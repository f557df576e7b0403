"""Provider events (SendGrid's webhook), each applied once: keyed by the provider's event id."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .guard import guarded
from .tables import deliveries, provider_events


@guarded
class EventStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def first_time(self, event_id: str, kind: str, email: str, now: datetime) -> bool:
        """Record an event; False when it was seen before."""
        try:
            with self.engine.begin() as db:
                db.execute(provider_events.insert().values(sg_event_id=event_id[:200], event=kind[:30],
                                                           email=email[:320], received_at=now))
        except IntegrityError:
            return False
        return True

    def on_delivery(self, edition_id: int, email_key: str, event: str, when: datetime) -> int:
        """The provider's last word on a message (delivered, deferred, bounce...)."""
        with self.engine.begin() as db:
            return db.execute(deliveries.update().where(deliveries.c.edition_id == edition_id,
                                                        deliveries.c.email_key == email_key)
                              .values(event=event[:20], event_at=when)).rowcount
