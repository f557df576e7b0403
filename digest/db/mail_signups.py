"""Requests to subscribe by mail (mail mode), one row per request mail within its
mailbox's limits (its confirmation sent, or waiting for the day's budget: confirm_sent_at
None, asked_at when it was first read), until the asker confirms by replying: the
confirm token of the confirmation names the row. A mail read
twice (a crash before it was marked read) is still one row: rows are keyed by its
Message-ID. `email_key` holds the mailbox the address reaches (send/subscribers.py's
`mailbox()`: case, `+tags` and Gmail's dots folded), so that the sign-up limits count
every spelling of one mailbox as one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from .guard import guarded
from .tables import mail_signups
from .upsert import insert_ignore


@dataclass(frozen=True)
class MailSignup:
    id: int
    list_name: str
    email: str                          # as the request's From wrote it (checked)
    name: str                           # its display name, cleaned; used once the asker confirms
    asked_at: datetime
    confirm_sent_at: datetime | None    # None: the confirmation has not gone (yet, or at all)
    confirmed_at: datetime | None


@guarded
class MailSignupStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, list_name: str, email: str, box: str, name: str, message_id: str,
               now: datetime) -> MailSignup:
        """The request of that mail, stored once: a second call with the same message_id
        (the same mail read again) returns the row the first one stored."""
        row = {"list_name": list_name, "email_key": box[:320], "email": email[:320], "name": name,
               "message_id": message_id[:250], "asked_at": now}
        with self.engine.begin() as db:
            insert_ignore(db, mail_signups, row)
            found = db.execute(_select().where(mail_signups.c.message_id == message_id[:250])).one()
        return _signup(found)

    def find(self, signup_id: int) -> MailSignup | None:
        with self.engine.connect() as db:
            found = db.execute(_select().where(mail_signups.c.id == signup_id)).first()
        return None if found is None else _signup(found)

    def confirmation_sent(self, signup_id: int, now: datetime) -> None:
        """The confirmation went (the first time counts)."""
        with self.engine.begin() as db:
            db.execute(mail_signups.update().where(mail_signups.c.id == signup_id,
                                                   mail_signups.c.confirm_sent_at.is_(None))
                       .values(confirm_sent_at=now))

    def confirmed(self, signup_id: int, now: datetime) -> bool:
        """Mark the request confirmed; False when it was already."""
        with self.engine.begin() as db:
            return db.execute(mail_signups.update().where(mail_signups.c.id == signup_id,
                                                          mail_signups.c.confirmed_at.is_(None))
                              .values(confirmed_at=now)).rowcount == 1

    def sent_to(self, box: str, since: datetime) -> int:
        """Confirmations sent since then to that mailbox (every spelling of it), on any list."""
        query = sa.select(sa.func.count()).select_from(mail_signups).where(
            mail_signups.c.email_key == box[:320], mail_signups.c.confirm_sent_at >= since)
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())

    def sent_in_all(self, since: datetime) -> int:
        """Confirmations sent since then, to anyone."""
        query = sa.select(sa.func.count()).select_from(mail_signups).where(mail_signups.c.confirm_sent_at >= since)
        with self.engine.connect() as db:
            return int(db.execute(query).scalar_one())


def _select() -> sa.Select:
    c = mail_signups.c
    return sa.select(c.id, c.list_name, c.email, c.name, c.asked_at, c.confirm_sent_at, c.confirmed_at)


def _signup(row: sa.Row) -> MailSignup:
    return MailSignup(row.id, row.list_name, row.email, row.name, row.asked_at, row.confirm_sent_at,
                      row.confirmed_at)
