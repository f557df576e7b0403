"""The editor's draft for a list's next edition: an intro note (Markdown) and a subject.

A draft waits until an edition is frozen; the ledger's freeze copies it into the edition
and clears it in the same transaction (see `take`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from .guard import guarded
from .tables import drafts


@dataclass(frozen=True)
class Draft:
    """What the editor set for the next edition; None = not set."""

    note: str | None = None
    subject: str | None = None


@guarded
class DraftStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, list_name: str) -> Draft:
        query = sa.select(drafts.c.note, drafts.c.subject).where(drafts.c.list_name == list_name)
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return Draft(row.note, row.subject) if row is not None else Draft()

    def set_note(self, list_name: str, note: str | None, when: datetime) -> None:
        """Set (or with None clear) the note of the list's next edition."""
        self._set(list_name, when, note=note)

    def set_subject(self, list_name: str, subject: str | None, when: datetime) -> None:
        """Set (or with None clear) the subject of the list's next edition."""
        self._set(list_name, when, subject=subject)

    def _set(self, list_name: str, when: datetime, **values: str | None) -> None:
        with self.engine.begin() as db:
            changed = db.execute(drafts.update().where(drafts.c.list_name == list_name)
                                 .values(updated_at=when, **values)).rowcount
            if not changed:
                db.execute(drafts.insert().values(list_name=list_name, updated_at=when, **values))
            db.execute(drafts.delete().where(drafts.c.list_name == list_name, drafts.c.note.is_(None),
                                             drafts.c.subject.is_(None)))


def take(db: sa.Connection, list_name: str, until: datetime) -> None:
    """Inside the freeze's transaction: the draft went into an edition, so the next one
    starts without it; a draft changed after `until` (the build) waits for the next."""
    db.execute(drafts.delete().where(drafts.c.list_name == list_name, drafts.c.updated_at <= until))
