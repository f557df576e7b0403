"""Editions, frozen once built, and the ledger: one row per (edition, subscriber).

A row is `pending` until its batch goes out, `sending` while it is out (written and
committed before the provider is called), then `accepted` (with the provider's id) or
`refused` (with the reason). A row still `sending` when a run starts was cut off by a
crash: its outcome is `unknown` and it is not sent again unless the operator asks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .mailers import Outcome
from .render import Edition
from .store import Store, UTCDateTime, metadata
from .subscribers import subscribers, suppressions

editions = sa.Table(
    "editions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tokens", sa.Text, nullable=False),        # JSON: html and text tokens
    sa.Column("web_url", sa.Text, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # "sending" | "sent"
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Index("ix_editions_list", "list_name", "since", "until"),
)

deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("edition_id", sa.ForeignKey("editions.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("event", sa.String(20)),                 # the provider's last word: delivered, deferred...
    sa.Column("event_at", UTCDateTime),
    sa.UniqueConstraint("edition_id", "subscriber_id"),
    sa.Index("ix_deliveries_state", "edition_id", "status", "id"),
)

FINAL = ("accepted", "refused", "suppressed")


class Ledger:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        metadata.create_all(self.engine, tables=[subscribers, suppressions, editions, deliveries])

    # ---------------------------------------------------------------- editions

    def latest(self, list_name: str, since: datetime, until: datetime) -> sa.Row | None:
        query = (sa.select(editions.c.id, editions.c.status, editions.c.created_at, editions.c.finished_at)
                 .where(editions.c.list_name == list_name, editions.c.since == since, editions.c.until == until)
                 .order_by(editions.c.id.desc()).limit(1))
        with self.engine.connect() as db:
            return db.execute(query).first()

    def freeze(self, edition: Edition, now: datetime) -> int:
        """Store a built edition; from now on it is what goes out, unchanged."""
        tokens = json.dumps({"html": edition.tokens, "text": edition.text_tokens})
        with self.engine.begin() as db:
            return db.execute(editions.insert().values(
                list_name=edition.list_name, since=edition.since, until=edition.until, subject=edition.subject,
                html=edition.html, text=edition.text, tokens=tokens, web_url=edition.web_url,
                status="sending", created_at=now)).inserted_primary_key[0]

    def edition(self, edition_id: int) -> Edition:
        with self.engine.connect() as db:
            row = db.execute(sa.select(editions).where(editions.c.id == edition_id)).one()
        tokens = json.loads(row.tokens)
        return Edition(row.list_name, row.since, row.until, row.subject, row.html, row.text, row.web_url,
                       tokens["html"], tokens["text"])

    def finish(self, edition_id: int, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(editions.update().where(editions.c.id == edition_id).values(status="sent", finished_at=now))

    def history(self, list_name: str | None = None) -> list[dict[str, Any]]:
        counts = (sa.select(deliveries.c.edition_id, deliveries.c.status, sa.func.count().label("n"))
                  .group_by(deliveries.c.edition_id, deliveries.c.status))
        query = sa.select(editions.c.id, editions.c.list_name, editions.c.since, editions.c.until,
                          editions.c.subject, editions.c.status, editions.c.created_at,
                          editions.c.finished_at).order_by(editions.c.id)
        if list_name:
            query = query.where(editions.c.list_name == list_name)
            counts = counts.join(editions, editions.c.id == deliveries.c.edition_id).where(
                editions.c.list_name == list_name)
        with self.engine.connect() as db:
            tally: dict[int, dict[str, int]] = {}
            for row in db.execute(counts):
                tally.setdefault(row.edition_id, {})[row.status] = row.n
            return [{**dict(r._mapping), "counts": tally.get(r.id, {})} for r in db.execute(query)]

    # ---------------------------------------------------------------- the ledger

    def fill(self, edition_id: int, list_name: str, now: datetime) -> int:
        """One pending row per active, unsuppressed member, in one statement (no memory)."""
        suppressed = sa.exists().where(suppressions.c.email_key == subscribers.c.email_key,
                                       suppressions.c.list_name.in_([list_name, "*"]))
        source = sa.select(sa.literal(edition_id), subscribers.c.id, subscribers.c.email, subscribers.c.email_key,
                           subscribers.c.name, sa.literal("pending"), sa.literal(now, UTCDateTime)).where(
            subscribers.c.list_name == list_name, subscribers.c.active.is_(True), ~suppressed)
        columns = ["edition_id", "subscriber_id", "email", "email_key", "name", "status", "updated_at"]
        with self.engine.begin() as db:
            return db.execute(deliveries.insert().from_select(columns, source)).rowcount

    def mark_cut_off(self, edition_id: int, now: datetime) -> int:
        """Rows left `sending` by a crashed run: their outcome is unknown."""
        return self._move(edition_id, "sending", "unknown", now)

    def retry_unknown(self, edition_id: int, now: datetime) -> int:
        return self._move(edition_id, "unknown", "pending", now)

    def _move(self, edition_id: int, old: str, new: str, now: datetime) -> int:
        with self.engine.begin() as db:
            return db.execute(deliveries.update().where(deliveries.c.edition_id == edition_id,
                                                        deliveries.c.status == old)
                              .values(status=new, updated_at=now)).rowcount

    def pending(self, edition_id: int, size: int) -> list[sa.Row]:
        query = (sa.select(deliveries).where(deliveries.c.edition_id == edition_id, deliveries.c.status == "pending")
                 .order_by(deliveries.c.id).limit(size))
        with self.engine.connect() as db:
            return db.execute(query).all()

    def mark(self, ids: Iterable[int], status: str, now: datetime) -> None:
        with self.engine.begin() as db:
            _update(db, list(ids), status=status, updated_at=now)

    def record(self, outcomes: list[Outcome], sending: list[int], now: datetime) -> None:
        """In one transaction: the outcomes so far, then the ids about to go out."""
        groups: dict[tuple[str, str | None, str | None], list[int]] = {}
        for outcome in outcomes:
            groups.setdefault((outcome.status, outcome.message_id, outcome.error), []).append(outcome.delivery_id)
        with self.engine.begin() as db:
            for (status, message_id, error), ids in groups.items():
                _update(db, ids, status=status, message_id=message_id, error=error, updated_at=now)
            _update(db, sending, status="sending", updated_at=now)

    def provider_event(self, edition_id: int, email_key: str, event: str, when: datetime) -> int:
        with self.engine.begin() as db:
            return db.execute(deliveries.update().where(deliveries.c.edition_id == edition_id,
                                                        deliveries.c.email_key == email_key)
                              .values(event=event, event_at=when)).rowcount

    def sent_editions(self, list_name: str) -> list[sa.Row]:
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, editions.c.subject,
                           editions.c.finished_at)
                 .where(editions.c.list_name == list_name, editions.c.status == "sent")
                 .order_by(editions.c.since.desc(), editions.c.id.desc()))
        with self.engine.connect() as db:
            return db.execute(query).all()

    def counts(self, edition_id: int) -> dict[str, int]:
        query = (sa.select(deliveries.c.status, sa.func.count()).where(deliveries.c.edition_id == edition_id)
                 .group_by(deliveries.c.status))
        with self.engine.connect() as db:
            return {status: n for status, n in db.execute(query)}

    def suppressed_now(self, list_name: str, keys: Iterable[str]) -> set[str]:
        """Which of these addresses were suppressed since the ledger was filled."""
        keys = list(keys)
        query = sa.select(suppressions.c.email_key).where(suppressions.c.email_key.in_(keys),
                                                          suppressions.c.list_name.in_([list_name, "*"]))
        with self.engine.connect() as db:
            return {r.email_key for r in db.execute(query)}


def _update(db: sa.Connection, ids: list[int], **values: object) -> None:
    for start in range(0, len(ids), 500):
        db.execute(deliveries.update().where(deliveries.c.id.in_(ids[start:start + 500])).values(**values))
