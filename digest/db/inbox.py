"""The mailbox's messages in mail mode (sign-ups, confirmations, unsubscribes, approvals),
each applied once: its effect is applied (every effect may be applied twice and changes
nothing the second time), then the message is recorded here by its Message-ID, then it is
marked read in the mailbox. A crash before the record leaves it to be read and applied
again; one after it leaves a message known here, only marked read."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .guard import guarded
from .tables import mail_messages
from .upsert import insert_ignore


@guarded
class InboxStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def seen(self, message_id: str) -> bool | None:
        """None: never applied; else whether it was kept for the editor."""
        query = sa.select(mail_messages.c.kept).where(mail_messages.c.message_id == message_id[:250])
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return None if row is None else bool(row.kept)

    def record(self, message_id: str, kind: str, outcome: str, kept: bool, now: datetime, address: str = "",
               list_name: str | None = None) -> bool:
        """Note the message as applied; False when it was already (another reader just now)."""
        row = {"message_id": message_id[:250], "kind": kind, "outcome": outcome, "kept": kept,
               "address": address[:320] or None, "list_name": list_name, "received_at": now}
        with self.engine.begin() as db:
            return insert_ignore(db, mail_messages, row) == 1

    def outcomes(self, since: datetime) -> list[tuple[str, str, datetime]]:
        """(kind, outcome, received at) of the messages applied since then, oldest first."""
        query = (sa.select(mail_messages.c.kind, mail_messages.c.outcome, mail_messages.c.received_at)
                 .where(mail_messages.c.received_at >= since).order_by(mail_messages.c.received_at))
        with self.engine.connect() as db:
            return [(row.kind, row.outcome, row.received_at) for row in db.execute(query)]

    def kept(self, kind: str, since: datetime) -> list[tuple[str | None, str, datetime]]:
        """(list, address, received at) of the messages of kind kept for the editor since then
        that name someone, newest first (a plain "unsubscribe" whose From is on a list)."""
        query = (sa.select(mail_messages.c.list_name, mail_messages.c.address, mail_messages.c.received_at)
                 .where(mail_messages.c.kind == kind, mail_messages.c.kept.is_(True),
                        mail_messages.c.received_at >= since, mail_messages.c.address.is_not(None))
                 .order_by(mail_messages.c.received_at.desc()).limit(KEPT_SHOWN))
        with self.engine.connect() as db:
            return [(row.list_name, row.address, row.received_at) for row in db.execute(query)]


KEPT_SHOWN = 200          # requests kept for the editor that the desk lists at most
