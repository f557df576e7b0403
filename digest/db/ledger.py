"""Editions, frozen once built, and the ledger: one delivery (a row) per (edition,
recipient).

A delivery is `pending` until its batch goes out, in flight while it is out (written and
committed before the provider is called; stored as `sending`), then `accepted` (with the
provider's id) or `refused` (with the reason). A delivery still in flight when a run
starts was cut off by a crash: its outcome is `unknown` and it is not sent again unless
the operator asks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..models import EVERY_LIST, DeliveryStatus, Edition, EditionStatus, Link, Outcome
from .drafts import take as take_draft
from .guard import guarded
from .in_chunks import in_chunks
from .lists import suppressed
from .locks import _dead
from .tables import deliveries, editions, links, picks, subscribers, suppressions
from .types import UTCDateTime


@guarded
class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # ---------------------------------------------------------------- editions

    def latest(self, list_name: str, since: datetime, until: datetime) -> sa.Row | None:
        query = (sa.select(editions.c.id, editions.c.status, editions.c.created_at, editions.c.finished_at)
                 .where(editions.c.list_name == list_name, editions.c.since == since, editions.c.until == until)
                 .order_by(editions.c.id.desc()).limit(1))
        with self.engine.connect() as db:
            return db.execute(query).first()

    def freeze(self, edition: Edition, now: datetime, picks_until: datetime | None = None,
               threads: Sequence[str] = (), hold: bool = False, tracked: Sequence[Link] = ()) -> tuple[int, int]:
        """Store a built edition with one pending delivery per active, unsuppressed
        subscriber, and mark the list's picks made up to picks_until (when it was built) used and
        its draft (note, subject: frozen with the edition) taken: one transaction, so a crash
        leaves either all of it or nothing. A pick or draft made later waits for the next
        edition. With hold, the edition waits for the editor's approval instead: its picks
        and draft stay the editor's to change until then (`approve` takes them). `tracked`:
        the links whose clicks are counted, stored with it. Returns (edition id, recipients)."""
        with self.engine.begin() as db:
            inserted = db.execute(editions.insert().values(
                **_content(edition, threads), list_name=edition.list_name, since=edition.since, until=edition.until,
                status=(EditionStatus.HELD if hold else EditionStatus.RELEASED).value, created_at=now,
                built_at=picks_until or now, held_at=now if hold else None)).inserted_primary_key
            edition_id = int(inserted[0]) if inserted else 0
            filled = db.execute(deliveries.insert().from_select(
                _LEDGER_COLUMNS, _recipients(edition_id, edition.list_name, now))).rowcount
            if filled < 0:                              # psycopg cannot say for INSERT ... SELECT: count them
                filled = int(db.execute(sa.select(sa.func.count()).where(
                    deliveries.c.edition_id == edition_id)).scalar() or 0)
            _store_links(db, edition_id, tracked)
            if not hold:
                _take_picks(db, edition.list_name, picks_until or now, now)
        if self.engine.dialect.name == "postgresql":    # the planner learns of the rows just written now,
            with self.engine.begin() as db:             # not a minute later: every batch looks them up by id
                db.execute(sa.text("ANALYZE deliveries"))
        return edition_id, filled

    # ---------------------------------------------------------------- held for approval

    def held(self, list_name: str) -> sa.Row | None:
        """The list's edition waiting for approval (the newest), or None."""
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, editions.c.subject,
                           editions.c.held_at, editions.c.built_at, editions.c.review_sent_at)
                 .where(editions.c.list_name == list_name, editions.c.status == EditionStatus.HELD.value)
                 .order_by(editions.c.id.desc()).limit(1))
        with self.engine.connect() as db:
            return db.execute(query).first()

    def all_held(self) -> Sequence[sa.Row]:
        query = (sa.select(editions.c.id, editions.c.list_name, editions.c.held_at, editions.c.review_sent_at)
                 .where(editions.c.status == EditionStatus.HELD.value).order_by(editions.c.id))
        with self.engine.connect() as db:
            return db.execute(query).all()

    def reviewed(self, edition_id: int, now: datetime) -> None:
        """The editor was sent the held edition to review."""
        with self.engine.begin() as db:
            db.execute(editions.update().where(editions.c.id == edition_id).values(review_sent_at=now))

    def replace(self, edition_id: int, edition: Edition, built_at: datetime, threads: Sequence[str],
                tracked: Sequence[Link] = ()) -> bool:
        """A held edition built again (the editor changed a pick, the note or the subject),
        its links with it; False when it is no longer held (approved or skipped meanwhile)."""
        with self.engine.begin() as db:
            changed = db.execute(editions.update().where(editions.c.id == edition_id,
                                                         editions.c.status == EditionStatus.HELD.value)
                                 .values(**_content(edition, threads), built_at=built_at)).rowcount == 1
            if changed:
                db.execute(links.delete().where(links.c.edition_id == edition_id))
                _store_links(db, edition_id, tracked)
            return changed

    # ---------------------------------------------------------------- links and their clicks

    def links(self, edition_id: int) -> list[Link]:
        query = (sa.select(links.c.n, links.c.url, links.c.thread, links.c.post, links.c.position)
                 .where(links.c.edition_id == edition_id).order_by(links.c.n))
        with self.engine.connect() as db:
            return [Link(row.n, row.url, row.thread, row.post, row.position) for row in db.execute(query)]

    def link_url(self, edition_id: int, n: int) -> str | None:
        query = sa.select(links.c.url).where(links.c.edition_id == edition_id, links.c.n == n)
        with self.engine.connect() as db:
            return db.execute(query).scalar()

    def count_click(self, edition_id: int, n: int, by: int = 1) -> None:
        """Add `by` (taken back with a negative one, never below 0) to a link's clicks."""
        with self.engine.begin() as db:
            db.execute(links.update().where(links.c.edition_id == edition_id, links.c.n == n)
                       .values(clicks=sa.func.max(links.c.clicks + by, 0) if db.dialect.name == "sqlite"
                               else sa.func.greatest(links.c.clicks + by, 0)))

    def clicks(self, edition_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """Per edition, its links with their clicks (each link once, in order)."""
        query = (sa.select(links).where(links.c.edition_id.in_(list(edition_ids)))
                 .order_by(links.c.edition_id, links.c.n))
        found: dict[int, list[dict[str, Any]]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                found.setdefault(row.edition_id, []).append(
                    {"n": row.n, "url": row.url, "thread": row.thread, "post": row.post,
                     "position": row.position, "clicks": row.clicks})
        return found

    def approve(self, edition_id: int, now: datetime, decision: str = "approved") -> bool:
        """Held -> released (going out), and the picks and draft it was built with taken, in one
        transaction; False (nothing changed) when it was not held: a second approval, or a
        skip that came first."""
        with self.engine.begin() as db:
            row = db.execute(sa.select(editions.c.list_name, editions.c.built_at)
                             .where(editions.c.id == edition_id)).first()
            moved = db.execute(editions.update().where(editions.c.id == edition_id,
                                                       editions.c.status == EditionStatus.HELD.value)
                               .values(status=EditionStatus.RELEASED.value, decided_at=now, decision=decision))
            if moved.rowcount != 1 or row is None:
                return False
            _take_picks(db, row.list_name, row.built_at or now, now)
            return True

    def skip(self, edition_id: int, now: datetime, decision: str = "skipped") -> bool:
        """Held -> skipped: it never goes; its picks and draft wait for the next edition."""
        with self.engine.begin() as db:
            return db.execute(editions.update().where(editions.c.id == edition_id,
                                                      editions.c.status == EditionStatus.HELD.value)
                              .values(status=EditionStatus.SKIPPED.value, decided_at=now,
                                      decision=decision)).rowcount == 1

    def last_decided(self, list_name: str) -> sa.Row | None:
        """The list's newest edition that was approved or skipped: id, period, status, decision."""
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, editions.c.status,
                           editions.c.decision, editions.c.decided_at)
                 .where(editions.c.list_name == list_name, editions.c.decision.is_not(None))
                 .order_by(editions.c.id.desc()).limit(1))
        with self.engine.connect() as db:
            return db.execute(query).first()

    def decision(self, edition_id: int) -> sa.Row | None:
        query = sa.select(editions.c.status, editions.c.decision, editions.c.decided_at).where(
            editions.c.id == edition_id)
        with self.engine.connect() as db:
            return db.execute(query).first()

    def sent_threads(self, list_name: str, since: datetime, until: datetime) -> list[tuple[sa.Row, list[str]]]:
        """The list's sent editions whose period overlaps [since, until), with the keys of
        the threads each showed (none recorded for editions sent before revision 0009)."""
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, editions.c.finished_at,
                           editions.c.threads)
                 .where(editions.c.list_name == list_name, editions.c.status == EditionStatus.SENT.value,
                        editions.c.since < until, editions.c.until > since).order_by(editions.c.id))
        with self.engine.connect() as db:
            return [(row, json.loads(row.threads) if row.threads else []) for row in db.execute(query)]

    def info(self, edition_id: int) -> sa.Row | None:
        """An edition's record without its content: list, period, subject, status, dates, decision."""
        query = sa.select(editions.c.id, editions.c.list_name, editions.c.since, editions.c.until,
                          editions.c.subject, editions.c.status, editions.c.created_at, editions.c.finished_at,
                          editions.c.held_at, editions.c.decided_at, editions.c.decision, editions.c.note,
                          editions.c.threads, editions.c.review_sent_at, editions.c.posted_at).where(
            editions.c.id == edition_id)
        with self.engine.connect() as db:
            return db.execute(query).first()

    def edition(self, edition_id: int) -> Edition:
        with self.engine.connect() as db:
            row = db.execute(sa.select(editions).where(editions.c.id == edition_id)).one()
        tokens = json.loads(row.tokens)
        return Edition(row.list_name, row.since, row.until, row.subject, row.html, row.text, row.web_url,
                       tokens["html"], tokens["text"])

    def finish(self, edition_id: int, now: datetime) -> bool:
        """Released -> sent; False when another sender marked it first."""
        with self.engine.begin() as db:
            return db.execute(editions.update().where(
                editions.c.id == edition_id, editions.c.status == EditionStatus.RELEASED.value).values(
                status=EditionStatus.SENT.value, finished_at=now)).rowcount == 1

    def reopen(self, edition_id: int) -> None:
        """A sent edition is being sent again (its messages of unknown outcome)."""
        with self.engine.begin() as db:
            db.execute(editions.update().where(editions.c.id == edition_id)
                       .values(status=EditionStatus.RELEASED.value, finished_at=None))

    # ---------------------------------------------------------------- posted to the blog

    def to_post(self, finished_after: datetime, finished_before: datetime) -> list[tuple[int, datetime]]:
        """(id, finished_at) of the editions sent between the two moments and not yet posted
        to the blog, oldest first."""
        query = (sa.select(editions.c.id, editions.c.finished_at)
                 .where(*_postable(finished_after), editions.c.finished_at <= finished_before)
                 .order_by(editions.c.id))
        with self.engine.connect() as db:
            return [(int(row.id), row.finished_at) for row in db.execute(query)]

    def claim_post(self, edition_id: int, now: datetime, finished_after: datetime) -> bool:
        """Record that the sent edition is being posted to the blog, at `now`; False when it
        was posted (or is being posted) already, is not sent, or finished before
        `finished_after`: only the caller that gets True posts it."""
        with self.engine.begin() as db:
            return db.execute(editions.update().where(editions.c.id == edition_id, *_postable(finished_after))
                              .values(posted_at=now)).rowcount == 1

    def release_post(self, edition_id: int, claimed: datetime) -> None:
        """The post claimed at `claimed` did not go (the relay refused it): it may be tried again."""
        with self.engine.begin() as db:
            db.execute(editions.update().where(editions.c.id == edition_id, editions.c.posted_at == claimed)
                       .values(posted_at=None))

    def history(self, list_name: str | None = None) -> list[dict[str, Any]]:
        counts = (sa.select(deliveries.c.edition_id, deliveries.c.status, sa.func.count().label("n"))
                  .group_by(deliveries.c.edition_id, deliveries.c.status))
        query = sa.select(editions.c.id, editions.c.list_name, editions.c.since, editions.c.until,
                          editions.c.subject, editions.c.status, editions.c.created_at, editions.c.finished_at,
                          editions.c.held_at, editions.c.decided_at, editions.c.decision,
                          editions.c.posted_at).order_by(editions.c.id)
        if list_name:
            query = query.where(editions.c.list_name == list_name)
            counts = counts.join(editions, editions.c.id == deliveries.c.edition_id).where(
                editions.c.list_name == list_name)
        with self.engine.connect() as db:
            tally: dict[int, dict[str, int]] = {}
            for row in db.execute(counts):
                tally.setdefault(row.edition_id, {})[row.status] = row.n
            return [{**dict(r._mapping), "counts": tally.get(r.id, {})} for r in db.execute(query)]

    def signals(self, list_name: str) -> dict[int, dict[str, int]]:
        """Per edition of the list, what came back: bounced, complaints (the provider's last
        word on each message) and unsubscribes (from the list, after the edition went and
        before the next)."""
        kinds = sa.case((deliveries.c.event.in_(["bounce", "dropped"]), "bounced"),
                        (deliveries.c.event == "spamreport", "complaints"), else_="other")
        query = (sa.select(deliveries.c.edition_id, kinds.label("kind"), sa.func.count().label("n"))
                 .join(editions, editions.c.id == deliveries.c.edition_id)
                 .where(editions.c.list_name == list_name, deliveries.c.event.is_not(None))
                 .group_by(deliveries.c.edition_id, kinds))
        sent = (sa.select(editions.c.id, sa.func.coalesce(editions.c.finished_at, editions.c.created_at).label("at"))
                .where(editions.c.list_name == list_name, editions.c.status == EditionStatus.SENT.value)
                .order_by(editions.c.id))
        left = sa.select(suppressions.c.at).where(suppressions.c.reason == "unsubscribed",
                                                  suppressions.c.list_name.in_([list_name, EVERY_LIST]))
        found: dict[int, dict[str, int]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                if row.kind != "other":
                    found.setdefault(row.edition_id, {})[row.kind] = int(row.n)
            starts = [(row.id, UTCDateTime().process_result_value(row.at, None)) for row in db.execute(sent)]
            times = sorted(row.at for row in db.execute(left))
        for (edition_id, start), (_, end) in zip(starts, [*starts[1:], (0, None)][:len(starts)], strict=True):
            if start is not None:
                found.setdefault(edition_id, {})["unsubscribes"] = sum(
                    1 for at in times if at >= start and (end is None or at < end))
        return found

    # ---------------------------------------------------------------- the ledger

    def mark_cut_off(self, edition_id: int, now: datetime) -> int:
        return self.take_back(edition_id, now)[0]

    def take_back(self, edition_id: int, now: datetime) -> tuple[int, int]:
        """(cut off, freed): rows a crashed sender left in flight have an unknown outcome;
        its `pending` ones are freed for the others. A row another sender still holds (its
        lease running, its process alive) is in flight, not cut off; one held by a process
        of this machine that is gone is taken back at once."""
        with self.engine.begin() as db:
            gone = [holder for holder in _holders(db, edition_id, now) if _dead(holder)]
            cut = _free(now, gone)
            marked = db.execute(deliveries.update().where(
                deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.IN_FLIGHT.value, cut)
                .values(status=DeliveryStatus.UNKNOWN.value, updated_at=now, claimed_by=None,
                        claimed_until=None)).rowcount
            freed = db.execute(deliveries.update().where(
                deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.claimed_by.is_not(None), cut).values(claimed_by=None, claimed_until=None)).rowcount
        return marked, freed

    # ---------------------------------------------------------------- senders' batches

    def claim(self, edition_id: int, size: int, holder: str, now: datetime, until: datetime,
              after: int = 0) -> list[Taken]:
        """Take the next pending rows that may go now and that no live sender holds, from
        `after` on, for `holder` until `until`: one statement, so two senders (threads, or
        processes on PostgreSQL, where rows another sender is taking are skipped, not
        waited for) never take the same row. The rows, by id, with what a send needs and
        `suppressed` (the address was suppressed since the ledger was filled)."""
        due = sa.or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now)
        batch = (deliveries.c.edition_id == edition_id, deliveries.c.id > after,
                 deliveries.c.status == DeliveryStatus.PENDING.value, due, _free(now))
        wanted = sa.select(deliveries.c.id).where(*batch).order_by(deliveries.c.id).limit(size)
        taking = deliveries.update().values(claimed_by=holder, claimed_until=until).returning(
            deliveries.c.id, deliveries.c.email, deliveries.c.email_key, deliveries.c.name, deliveries.c.attempts,
            deliveries.c.subscriber_id)
        with self.engine.begin() as db:
            if db.dialect.name == "postgresql":           # one statement; rows others are taking are skipped
                found = db.execute(taking.where(deliveries.c.id.in_(
                    wanted.with_for_update(skip_locked=True).scalar_subquery()))).all()
            else:                                         # the write lock first, then the batch's last id: the
                _write_lock(db)                           # rows up to it are exactly the batch (one cached
                last = db.execute(sa.select(sa.func.max(wanted.subquery().c.id))).scalar()    # statement, no
                found = db.execute(taking.where(*batch, deliveries.c.id <= last)).all() if last else []   # IN list)
            gone = _suppressed_since(db, edition_id) if found else set()
        return sorted((Taken(row_id, email, key, name, attempts, key in gone, subscriber)
                       for row_id, email, key, name, attempts, subscriber in found), key=lambda row: row.id)

    def defer_open(self, edition_id: int, until: datetime) -> None:
        """Every pending row of the edition waits until `until` (the hourly quota)."""
        with self.engine.begin() as db:
            db.execute(deliveries.update().where(
                deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.PENDING.value,
                sa.or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at < until))
                .values(next_attempt_at=until, claimed_by=None, claimed_until=None))

    def sent_since(self, when: datetime) -> int:
        """Messages handed to the mail server since `when`, every edition (the hourly quota)."""
        query = sa.select(sa.func.count()).where(
            deliveries.c.updated_at >= when,
            deliveries.c.status.in_([DeliveryStatus.ACCEPTED.value, DeliveryStatus.REFUSED.value,
                                     DeliveryStatus.UNKNOWN.value, DeliveryStatus.IN_FLIGHT.value]))
        with self.engine.connect() as db:
            return int(db.execute(query).scalar() or 0)

    def renew(self, ids: Sequence[int], holder: str, until: datetime) -> None:
        """A working sender keeps its batch (rows `ids`): their lease runs on to `until`."""
        if ids:
            with self.engine.begin() as db:
                for in_ids in in_chunks(db, deliveries.c.id, list(ids)):
                    db.execute(deliveries.update().where(in_ids, deliveries.c.claimed_by == holder,
                                                         deliveries.c.status.in_(_HELD))
                               .values(claimed_until=until))

    def release(self, ids: Sequence[int], holder: str) -> None:
        """A sender done with a batch gives back its rows still pending (not sent: stopped,
        or the quota reached); the others were recorded with their outcome."""
        if ids:
            with self.engine.begin() as db:
                for in_ids in in_chunks(db, deliveries.c.id, list(ids)):
                    db.execute(deliveries.update().where(in_ids, deliveries.c.claimed_by == holder,
                                                         deliveries.c.status == DeliveryStatus.PENDING.value)
                               .values(claimed_by=None, claimed_until=None))

    def in_flight(self, edition_id: int, now: datetime, besides: str = "") -> datetime | None:
        """The earliest lease of rows other senders (not `besides`) hold and have not finished:
        when they may be free again (None: nobody else is working on the edition)."""
        query = (sa.select(deliveries.c.claimed_by, sa.func.min(deliveries.c.claimed_until).label("until")).where(
            deliveries.c.edition_id == edition_id, deliveries.c.status.in_(_HELD),
            deliveries.c.claimed_by.is_not(None), deliveries.c.claimed_by != besides,
            deliveries.c.claimed_until >= now).group_by(deliveries.c.claimed_by))
        with self.engine.connect() as db:
            held = [row.until for row in db.execute(query) if not _dead(row.claimed_by)]
        times = [UTCDateTime().process_result_value(value, None) for value in held if value is not None]
        return min((t for t in times if t is not None), default=None)

    def retry_unknown(self, edition_id: int, now: datetime) -> int:
        return self._move(edition_id, DeliveryStatus.UNKNOWN, DeliveryStatus.PENDING, now)

    def _move(self, edition_id: int, old: DeliveryStatus, new: DeliveryStatus, now: datetime) -> int:
        with self.engine.begin() as db:
            return db.execute(deliveries.update().where(deliveries.c.edition_id == edition_id,
                                                        deliveries.c.status == old.value)
                              .values(status=new.value, updated_at=now)).rowcount

    def next_retry(self, edition_id: int) -> datetime | None:
        """When the earliest deferred message of the edition may be tried again."""
        query = sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.PENDING.value)
        with self.engine.connect() as db:
            value = db.execute(query).scalar()
        return UTCDateTime().process_result_value(value, None) if value is not None else None

    def mark(self, ids: Iterable[int], status: DeliveryStatus, now: datetime, holder: str | None = None) -> None:
        """Set the rows' status; with holder, only the rows it still holds."""
        values = {"status": status.value, "updated_at": now, "claimed_by": None, "claimed_until": None}
        with self.engine.begin() as db:
            for in_ids in in_chunks(db, deliveries.c.id, list(ids)):
                held = [deliveries.c.claimed_by == holder] if holder is not None else []
                db.execute(deliveries.update().where(in_ids, *held).values(**values))

    def record(self, outcomes: list[Outcome], in_flight: list[int], now: datetime,
               retry_at: dict[int, datetime] | None = None, holder: str | None = None) -> list[int]:
        """In one transaction: the outcomes so far, then the ids about to go out. A
        pending outcome ("try again later") counts an attempt and waits until retry_at.
        Returns the ids marked in flight: with `holder`, only rows still pending and still
        held by it (a sender that stalled past its lease finds another took them: it must
        not send them too)."""
        groups: dict[tuple[DeliveryStatus, str | None, str | None], list[int]] = {}
        for outcome in outcomes:
            groups.setdefault((outcome.status, outcome.message_id, outcome.error), []).append(outcome.delivery_id)
        with self.engine.begin() as db:
            for (status, message_id, error), ids in groups.items():
                if status == DeliveryStatus.PENDING:
                    _defer(db, ids, error, now, retry_at or {})
                else:
                    _update(db, ids, status=status.value, message_id=message_id, error=error, updated_at=now,
                            claimed_by=None, claimed_until=None)
            return _mark_in_flight(db, in_flight, holder, now)

    def unfinished(self, list_name: str) -> Sequence[sa.Row]:
        """Editions of the list still being sent (cut off, deferred or stopped), oldest first."""
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until)
                 .where(editions.c.list_name == list_name, editions.c.status == EditionStatus.RELEASED.value)
                 .order_by(editions.c.id))
        with self.engine.connect() as db:
            return db.execute(query).all()

    def sent_editions(self, list_name: str) -> Sequence[sa.Row]:
        query = (sa.select(editions.c.id, editions.c.since, editions.c.until, editions.c.subject,
                           editions.c.finished_at)
                 .where(editions.c.list_name == list_name, editions.c.status == EditionStatus.SENT.value)
                 .order_by(editions.c.since.desc(), editions.c.id.desc()))
        with self.engine.connect() as db:
            return db.execute(query).all()

    def counts(self, edition_id: int) -> dict[DeliveryStatus, int]:
        query = (sa.select(deliveries.c.status, sa.func.count()).where(deliveries.c.edition_id == edition_id)
                 .group_by(deliveries.c.status))
        with self.engine.connect() as db:
            return {DeliveryStatus(status): n for status, n in db.execute(query)}


def _content(edition: Edition, threads: Sequence[str]) -> dict[str, Any]:
    """An edition's columns that a rebuild replaces."""
    return {"subject": edition.subject, "html": edition.html, "text": edition.text, "web_url": edition.web_url,
            "tokens": json.dumps({"html": edition.tokens, "text": edition.text_tokens}),
            "note": edition.context.get("note_source") or None, "threads": json.dumps(list(threads))}


def _store_links(db: sa.Connection, edition_id: int, tracked: Sequence[Link]) -> None:
    if tracked:
        db.execute(links.insert(), [{"edition_id": edition_id, "n": link.n, "url": link.url, "thread": link.thread,
                                     "post": link.post, "position": link.position} for link in tracked])


def _postable(finished_after: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """A sent edition not posted to the blog yet, finished after `finished_after` (one sent
    long ago, before posting existed, is never posted late)."""
    return (editions.c.status == EditionStatus.SENT.value, editions.c.posted_at.is_(None),
            editions.c.finished_at >= finished_after)


def _take_picks(db: sa.Connection, list_name: str, until: datetime, now: datetime) -> None:
    """The list's picks and draft made up to `until` go with the edition being sent."""
    db.execute(picks.update().where(picks.c.list_name == list_name, picks.c.used_at.is_(None),
                                    picks.c.created_at <= until).values(used_at=now))
    take_draft(db, list_name, until)


_LEDGER_COLUMNS = ["edition_id", "subscriber_id", "email", "email_key", "name", "status", "updated_at"]


def _recipients(edition_id: int, list_name: str, now: datetime) -> sa.Select:
    """The deliveries of a new edition, as a SELECT (filled in one statement, no memory)."""
    return sa.select(sa.literal(edition_id), subscribers.c.id, subscribers.c.email, subscribers.c.email_key,
                     subscribers.c.name, sa.literal(DeliveryStatus.PENDING.value),
                     sa.literal(now, UTCDateTime)).where(
        subscribers.c.list_name == list_name, subscribers.c.active.is_(True), ~suppressed(list_name))


def _defer(db: sa.Connection, ids: list[int], error: str | None, now: datetime,
           retry_at: dict[int, datetime]) -> None:
    statement = (deliveries.update().where(deliveries.c.id == sa.bindparam("b_id"))
                 .values(status=DeliveryStatus.PENDING.value, error=sa.bindparam("b_error"),
                         attempts=deliveries.c.attempts + 1, next_attempt_at=sa.bindparam("b_at"),
                         updated_at=now, claimed_by=None, claimed_until=None))
    db.execute(statement, [{"b_id": i, "b_error": error, "b_at": retry_at.get(i, now)} for i in ids])


_HELD = [DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value]


@dataclass(frozen=True)
class Taken:
    """A delivery taken into a sender's batch: what a send needs of it."""

    id: int
    email: str
    email_key: str
    name: str
    attempts: int
    suppressed: bool                 # the address was suppressed since the ledger was filled
    subscriber_id: int = 0           # its subscribers row (mail mode's unsubscribe token names it)


def _write_lock(db: sa.Connection) -> None:
    """SQLite: take the write lock now (BEGIN IMMEDIATE, waiting as the busy timeout
    allows), so that nothing changes between what this transaction reads and writes."""
    driver = db.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        db.exec_driver_sql("BEGIN IMMEDIATE")


def _suppressed_since(db: sa.Connection, edition_id: int) -> set[str]:
    """The addresses suppressed on the edition's list (or every list) since it was frozen
    (those before were left out of its ledger): a few, read once a batch."""
    edition = sa.select(editions.c.list_name, editions.c.created_at).where(editions.c.id == edition_id).subquery()
    return set(db.execute(sa.select(suppressions.c.email_key).where(
        suppressions.c.at >= sa.select(edition.c.created_at).scalar_subquery(),
        suppressions.c.list_name.in_([sa.select(edition.c.list_name).scalar_subquery(), EVERY_LIST]))).scalars())


def _free(now: datetime, gone: Sequence[str] = ()) -> sa.ColumnElement[bool]:
    """A row no live sender holds: never taken, its lease run out, or its holder gone."""
    return sa.or_(deliveries.c.claimed_by.is_(None), deliveries.c.claimed_until.is_(None),
                  deliveries.c.claimed_until < now, deliveries.c.claimed_by.in_(list(gone)))


def _holders(db: sa.Connection, edition_id: int, now: datetime) -> list[str]:
    query = sa.select(deliveries.c.claimed_by).where(
        deliveries.c.edition_id == edition_id, deliveries.c.status.in_(_HELD),
        deliveries.c.claimed_by.is_not(None), deliveries.c.claimed_until >= now).distinct()
    return [row.claimed_by for row in db.execute(query)]


def _mark_in_flight(db: sa.Connection, ids: list[int], holder: str | None, now: datetime) -> list[int]:
    """Mark ids in flight (the point of no return); with holder, only those still pending
    and held by it. The ids marked."""
    if holder is None:
        _update(db, ids, status=DeliveryStatus.IN_FLIGHT.value, updated_at=now)
        return ids
    marked: list[int] = []
    for in_ids in in_chunks(db, deliveries.c.id, ids):
        statement = (deliveries.update().where(in_ids, deliveries.c.claimed_by == holder,
                                               deliveries.c.status == DeliveryStatus.PENDING.value)
                     .values(status=DeliveryStatus.IN_FLIGHT.value, updated_at=now).returning(deliveries.c.id))
        marked += [row.id for row in db.execute(statement)]
    return marked


def _update(db: sa.Connection, ids: list[int], **values: object) -> None:
    for in_ids in in_chunks(db, deliveries.c.id, ids):
        db.execute(deliveries.update().where(in_ids).values(**values))
