"""The bounce mailbox's messages, each applied once: keyed by the message's own
Message-ID, the "read" row, the suppression it causes and the delivery's last word
are written in one transaction; a crash before the commit leaves the message to be
read again, and one after it leaves a message already read (its Message-ID is known)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..models import EVERY_LIST, DeliveryStatus, Reason
from .guard import guarded
from .lists import suppress_in
from .tables import bounce_messages, deliveries, editions
from .upsert import insert_ignore

SUPPRESSING = {"hard": Reason.BOUNCED, "complaint": Reason.COMPLAINED}
# Anyone can mail the bounce address: a report tied to its recipient only by the address it
# names is weaker evidence. A hard bounce then counts as a soft one (several editions in
# a row suppress); a complaint is kept for the editor and suppresses nothing.
UNVERIFIED = {"hard": "soft", "complaint": "unverified"}
EVENTS = {"hard": "bounce", "complaint": "spamreport", "soft": "soft-bounce"}   # deliveries.event, as the webhook's


@dataclass(frozen=True)
class Recipient:
    """Whom a bounce is about: the address and, when known, the edition it answers."""

    email_key: str
    edition_id: int | None = None
    delivery_id: int | None = None
    list_name: str | None = None
    verified: bool = True        # found by what only our own mail carries (VERP, Message-ID, unsubscribe token)


@dataclass(frozen=True)
class Applied:
    new: bool                   # False: read before, nothing changed
    suppressed: bool = False
    soft_in_a_row: int = 0      # editions in a row with a soft bounce, this one included
    kind: str = ""              # what it was taken for (a hard bounce not verified: soft)


@guarded
class BounceStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def seen(self, message_id: str) -> bool:
        query = sa.select(bounce_messages.c.kind).where(bounce_messages.c.message_id == message_id[:250])
        with self.engine.connect() as db:
            return db.execute(query).first() is not None

    def by_delivery(self, delivery_id: int) -> Recipient | None:
        return self._recipient(deliveries.c.id == delivery_id)

    def by_message_id(self, message_id: str) -> Recipient | None:
        return self._recipient(deliveries.c.message_id == message_id[:250])

    def by_address(self, email_key: str, list_name: str | None = None) -> Recipient | None:
        """The latest edition that went to the address (on list_name, when given)."""
        where = [deliveries.c.email_key == email_key, deliveries.c.status == DeliveryStatus.ACCEPTED.value]
        if list_name:
            where.append(editions.c.list_name == list_name)
        return self._recipient(*where)

    def _recipient(self, *where: sa.ColumnElement[bool]) -> Recipient | None:
        query = (sa.select(deliveries.c.id, deliveries.c.email_key, deliveries.c.edition_id, editions.c.list_name)
                 .join(editions, editions.c.id == deliveries.c.edition_id).where(*where)
                 .order_by(deliveries.c.edition_id.desc()).limit(1))
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return Recipient(row.email_key, row.edition_id, row.id, row.list_name) if row else None

    def apply(self, message_id: str, kind: str, recipient: Recipient | None, status: str, detail: str,
              soft_limit: int, now: datetime) -> Applied:
        """Record the message once and do what it means: a hard bounce or a complaint
        suppresses the address on every list; a soft bounce does when the last soft_limit
        editions the address was sent all bounced softly. A recipient found only by the
        address the report names is not believed as far (UNVERIFIED). `Applied.kind`:
        what it was taken for."""
        if recipient is not None and not recipient.verified:
            kind = UNVERIFIED.get(kind, kind)
        row = {"message_id": message_id[:250], "kind": kind[:12], "status": status[:20], "detail": detail[:500],
               "received_at": now, "email_key": recipient.email_key if recipient else None,
               "edition_id": recipient.edition_id if recipient else None,
               "delivery_id": recipient.delivery_id if recipient else None}
        with self.engine.begin() as db:
            if insert_ignore(db, bounce_messages, row) == 0:
                return Applied(False)
            if recipient is None:
                return Applied(True, kind=kind)
            _mark_delivery(db, recipient, kind, now)
            run = _soft_run(db, recipient.email_key, soft_limit) if kind == "soft" else 0
            reason = SUPPRESSING.get(kind) or (Reason.BOUNCED if run >= soft_limit else None)
            if reason is not None:
                words = f"soft bounces in {run} editions in a row" if kind == "soft" else f"{kind} {status}"
                suppress_in(db, recipient.email_key, EVERY_LIST, reason, f"bounce mailbox: {words} {detail}".strip(),
                            now)
            return Applied(True, reason is not None, run, kind)

    def of_editions(self, edition_ids: list[int]) -> dict[int, dict[str, int]]:
        """Per edition: how many of its messages came back, by kind."""
        query = (sa.select(bounce_messages.c.edition_id, bounce_messages.c.kind, sa.func.count().label("n"))
                 .where(bounce_messages.c.edition_id.in_(edition_ids))
                 .group_by(bounce_messages.c.edition_id, bounce_messages.c.kind))
        found: dict[int, dict[str, int]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                found.setdefault(row.edition_id, {})[row.kind] = int(row.n)
        return found


def _mark_delivery(db: sa.Connection, recipient: Recipient, kind: str, now: datetime) -> None:
    event = EVENTS.get(kind)
    if event and recipient.delivery_id is not None:
        db.execute(deliveries.update().where(deliveries.c.id == recipient.delivery_id)
                   .values(event=event, event_at=now))


def _soft_run(db: sa.Connection, email_key: str, limit: int) -> int:
    """How many of the last `limit` editions sent to the address bounced softly, counting
    from the newest and stopping at the first that did not."""
    sent = (sa.select(deliveries.c.edition_id).where(deliveries.c.email_key == email_key,
                                                     deliveries.c.status == DeliveryStatus.ACCEPTED.value)
            .order_by(deliveries.c.edition_id.desc()).limit(limit))
    latest = [row.edition_id for row in db.execute(sent)]
    soft = {row.edition_id for row in db.execute(
        sa.select(bounce_messages.c.edition_id).where(bounce_messages.c.email_key == email_key,
                                                      bounce_messages.c.kind == "soft",
                                                      bounce_messages.c.edition_id.in_(latest)))}
    run = 0
    for edition_id in latest:
        if edition_id not in soft:
            break
        run += 1
    return run
