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

    def record(self, message_id: str, kind: str, outcome: str, kept: bool, now: datetime) -> bool:
        """Note the message as applied; False when it was already (another reader just now)."""
        row = {"message_id": message_id[:250], "kind": kind, "outcome": outcome, "kept": kept, "received_at": now}
        with self.engine.begin() as db:
            return insert_ignore(db, mail_messages, row) == 1

    def outcomes(self, since: datetime) -> list[tuple[str, str, datetime]]:
        """(kind, outcome, received at) of the messages applied since then, oldest first."""
        query = (sa.select(mail_messages.c.kind, mail_messages.c.outcome, mail_messages.c.received_at)
                 .where(mail_messages.c.received_at >= since).order_by(mail_messages.c.received_at))
        with self.engine.connect() as db:
            return [(row.kind, row.outcome, row.received_at) for row in db.execute(query)]
