"""Deliver an edition to a list: never twice, never lost.

`plan` syncs the list file and builds the edition once (or finds the unfinished one to
resume); `send` freezes exactly that edition with its ledger in one transaction and
delivers it, one send per list at a time (a lock row). Each batch is marked `sending`
before it goes and `accepted`/`refused` after; a crash leaves at most the batch in
flight of unknown outcome, which is reported and only re-sent on request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import MailingList, Settings
from .db import Database
from .edition import Built, build
from .errors import DigestError
from .mailers import Mailer, MailerError, make_mailer
from .message import recipient
from .models import DeliveryStatus, EditionStatus, Outcome, email_key
from .render import Renderer
from .signing import secret_key
from .subscribers import check_address, sync

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN)


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlreadySent(DigestError):
    pass


class NothingToSend(DigestError):
    pass


@dataclass
class SendReport:
    list_name: str
    edition_id: int
    subject: str
    resumed: bool = False
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cut_off: int = 0          # rows a crashed run left in flight, now "unknown"

    def summary(self) -> str:
        c = self.counts
        line = (f"{self.list_name}: edition {self.edition_id}: {c.get(DeliveryStatus.ACCEPTED, 0)} accepted, "
                f"{c.get(DeliveryStatus.REFUSED, 0)} failed, {c.get(DeliveryStatus.SUPPRESSED, 0)} suppressed, "
                f"{c.get(DeliveryStatus.PENDING, 0)} skipped")
        if c.get(DeliveryStatus.UNKNOWN):
            line += (f"; {c[DeliveryStatus.UNKNOWN]} of unknown outcome (cut off mid-send): not re-sent, "
                     "run `digest send --retry-unknown` to send them again")
        return line

    @property
    def finished(self) -> bool:
        return not any(self.counts.get(status) for status in OPEN)


@dataclass
class Plan:
    """What a send will do, before it does it: shown for the prompt and --dry-run, then
    sent as it is (the edition is built once, here)."""

    mailing_list: MailingList
    since: datetime
    until: datetime
    subject: str
    recipients: int
    html_bytes: int
    problems: list[str]
    again: bool = False
    resume_id: int | None = None          # an unfinished edition to resume
    built: Built | None = None            # the new edition to freeze (None when resuming)


def plan(settings: Settings, db: Database, mailing_list: MailingList, since: datetime, until: datetime,
         again: bool = False, clock: Clock = utc_now) -> Plan:
    """Sync the list file, then build the edition (or find the one to resume)."""
    existing = db.ledger.latest(mailing_list.name, since, until)
    _refuse_sent(existing, mailing_list.name, again)
    if existing is not None and existing.status == EditionStatus.SENDING:
        counts = db.ledger.counts(existing.id)
        edition = db.ledger.edition(existing.id)
        return Plan(mailing_list, since, until, edition.subject, counts.get(DeliveryStatus.PENDING, 0),
                    len(edition.html.encode()), [], again, resume_id=existing.id)
    synced = sync(db.lists, mailing_list.name, settings.path(mailing_list.file), clock())
    built = build_or_refuse(settings, db, mailing_list, since, until)
    return Plan(mailing_list, since, until, built.edition.subject, db.lists.count(mailing_list.name),
                built.html_bytes, synced.problems, again, built=built)


def build_or_refuse(settings: Settings, db: Database, mailing_list: MailingList, since: datetime,
                    until: datetime) -> Built:
    built = build(settings, db, Renderer(settings), mailing_list, since, until)
    if not built.selection.posts:
        raise NothingToSend(f"no posts or comments between {since:%Y-%m-%d} and {until:%Y-%m-%d}; "
                            "run `digest fetch` first, or check the period")
    return built


def send(settings: Settings, db: Database, planned: Plan, mailer: Mailer | None = None,
         clock: Clock = utc_now, retry_unknown: bool = False,
         progress: Callable[[int, int], None] = lambda done, total: None,
         should_stop: Callable[[], bool] = lambda: False) -> SendReport:
    """Freeze the planned edition (or resume the unfinished one) and deliver it."""
    key = secret_key(settings)
    name = planned.mailing_list.name
    with db.locks.hold(f"send:{name}"):
        report = _start(db, planned, clock)
        if retry_unknown:
            db.ledger.retry_unknown(report.edition_id, clock())
        own = mailer is None
        mailer = mailer or make_mailer(settings)
        try:
            _deliver(settings, db, mailer, report, key, clock, progress, should_stop)
        finally:
            if own:
                mailer.close()
        report.counts = db.ledger.counts(report.edition_id)
        if report.finished:
            db.ledger.finish(report.edition_id, clock())
    log.info("%s", report.summary())
    return report


def _refuse_sent(existing: Any, list_name: str, again: bool) -> None:
    if existing is not None and existing.status == EditionStatus.SENT and not again:
        raise AlreadySent(f"the edition of {list_name} for this period was sent at "
                          f"{existing.finished_at:%Y-%m-%d %H:%M} UTC; pass --again to send a new copy to everyone")


def _start(db: Database, planned: Plan, clock: Clock) -> SendReport:
    """Under the list's send lock: check nothing changed since the plan, then freeze or resume."""
    name = planned.mailing_list.name
    existing = db.ledger.latest(name, planned.since, planned.until)
    if planned.resume_id is None:
        _refuse_sent(existing, name, planned.again)
        if existing is not None and existing.status == EditionStatus.SENDING:
            raise DigestError(f"another send of {name}'s edition started after this one was planned; "
                              "run `digest send` again to resume it")
        assert planned.built is not None
        edition_id, _ = db.ledger.freeze(planned.built.edition, clock())
        return SendReport(name, edition_id, planned.subject, problems=planned.problems)
    if existing is None or existing.id != planned.resume_id or existing.status != EditionStatus.SENDING:
        raise DigestError(f"the edition of {name} being resumed changed meanwhile (another send finished it); "
                          "run `digest editions` to see where it stands")
    report = SendReport(name, existing.id, planned.subject, resumed=True)
    report.cut_off = db.ledger.mark_cut_off(existing.id, clock())
    return report


def _deliver(settings: Settings, db: Database, mailer: Mailer, report: SendReport, key: str,
             clock: Clock, progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> None:
    ledger = db.ledger
    edition = ledger.edition(report.edition_id)
    folder = f"{report.list_name}-{report.edition_id}"
    total, done = sum(ledger.counts(report.edition_id).values()), 0
    while not should_stop() and (rows := ledger.pending(report.edition_id, mailer.batch_size)):
        blocked = ledger.suppressed_now(report.list_name, [r.email_key for r in rows])
        ledger.mark([r.id for r in rows if r.email_key in blocked], DeliveryStatus.SUPPRESSED, clock())
        batch = [recipient(settings, key, report.list_name, r.id, r.email, r.email_key, r.name, report.edition_id)
                 for r in rows if r.email_key not in blocked]
        flight = _InFlight(db, clock)
        try:
            for outcome in mailer.send(edition, batch, flight.commit, folder):
                flight.outcomes.append(outcome)
                if mailer.record_each:
                    flight.commit([])
        except MailerError as error:
            flight.commit([])
            ledger.mark(error.unsent, DeliveryStatus.PENDING, clock())
            raise
        flight.commit([])
        done += len(rows)
        progress(done, total)


class _InFlight:
    """The outcomes of a batch so far; `commit(ids)` records them together with the next
    ids about to go out (the mailer calls it just before its point of no return)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock
        self.outcomes: list[Outcome] = []

    def commit(self, ids: list[int]) -> None:
        self.db.ledger.record(self.outcomes, ids, self.clock())
        self.outcomes = []


def send_test(settings: Settings, db: Database, mailing_list: MailingList, since: datetime, until: datetime,
              address: str, mailer: Mailer | None = None) -> str:
    """A test copy of the edition to one address; nothing is recorded for the list."""
    try:
        address = check_address(address)
    except ValueError as error:
        raise DigestError(f"--to {address!r} is not a valid address ({error}); give one like you@example.org") from None
    built = build_or_refuse(settings, db, mailing_list, since, until)
    to = recipient(settings, secret_key(settings), mailing_list.name, 0, address, email_key(address), "", None)
    own = mailer is None
    mailer = mailer or make_mailer(settings)
    try:
        folder = f"{mailing_list.name}-test-{utc_now():%Y%m%d-%H%M%S-%f}"
        outcomes = list(mailer.send(built.edition, [to], lambda ids: None, folder))
    finally:
        if own:
            mailer.close()
    outcome = outcomes[0]
    if outcome.status != DeliveryStatus.ACCEPTED:
        raise DigestError(f"the test copy to {address} was {outcome.status}: {outcome.error}")
    return built.edition.subject
