"""Deliver an edition to a list: never twice, never lost.

`plan` syncs the list file and builds the edition once (or finds the unfinished one to
resume); `send` freezes exactly that edition with its ledger in one transaction and
delivers it, one send per list at a time (a lock row). Each batch is marked in flight
before it goes and `accepted`/`refused` after; a crash leaves at most the batch in
flight of unknown outcome, which is reported and only re-sent on request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import escape as html_escape
from typing import Any
from urllib.parse import quote, urlencode

from .. import crash
from ..config import MailingList, SendSettings
from ..db import Database, holder_id
from ..db.picks import first_words
from ..errors import DigestError, SendError, UsageError
from ..models import DeliveryStatus, Edition, EditionStatus, Link, SyncResult, email_key
from ..write.edition import Built, shown_threads
from ..write.links import links_of, tracked
from . import workers
from .mailers import Mailer, make_mailer
from .message import recipient
from .readiness import check_ready_for_a_test, check_ready_to_send
from .signing import click_token, secret_key
from .subscribers import ListFileError, MassRetireError, check_address, sync

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)     # unknown is reported, not retried unasked


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlreadySent(SendError):
    """The edition of that period went out already (--again sends a new copy)."""


class HeldForApproval(SendError):
    """The edition of that period waits for the editor: approve or skip it, never a second one."""

    exit_code = 2
    http_status = 409


@dataclass
class SendReport:
    list_name: str
    edition_id: int
    subject: str
    resumed: bool = False
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cut_off: int = 0          # rows a crashed run left in flight, now "unknown"
    resumes_at: datetime | None = None     # the hourly quota was reached: the rest goes then
    taken: int = 0            # rows this sender sent (on PostgreSQL others may share the edition)
    joined: bool = False      # it joined an edition another sender was sending

    def summary(self) -> str:
        c = self.counts
        line = (f"{self.list_name}: edition {self.edition_id}: {c.get(DeliveryStatus.ACCEPTED, 0)} accepted, "
                f"{c.get(DeliveryStatus.REFUSED, 0)} failed, {c.get(DeliveryStatus.SUPPRESSED, 0)} suppressed, "
                f"{c.get(DeliveryStatus.PENDING, 0)} not sent yet")
        if c.get(DeliveryStatus.PENDING) and self.resumes_at:
            line += f" (the hourly quota is reached: they go from {self.resumes_at:%Y-%m-%d %H:%M} UTC)"
        elif c.get(DeliveryStatus.PENDING):
            line += " (deferred by the server or stopped early: the next run sends them)"
        if c.get(DeliveryStatus.UNKNOWN):
            line += (f"; {c[DeliveryStatus.UNKNOWN]} of unknown outcome (cut off mid-send): not re-sent, "
                     "run `digest send --retry-unknown` to send them again")
        if self.joined:
            line += f"; this sender joined another and sent {self.taken} of them"
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
    built_at: datetime | None = None      # picks made after this wait for the next edition


def plan(settings: SendSettings, db: Database, mailing_list: MailingList, since: datetime, until: datetime,
         build: Callable[[], Built], again: bool = False, clock: Clock = utc_now,
         retry_unknown: bool = False) -> Plan:
    """Sync the list file, then build the edition with `build` (or find the one to resume:
    with retry_unknown, also a sent one whose messages of unknown outcome go out again)."""
    check_ready_to_send(settings)
    existing = db.ledger.latest(mailing_list.name, since, until)
    counts = db.ledger.counts(existing.id) if existing is not None else {}
    if retry_unknown and existing is not None and counts.get(DeliveryStatus.UNKNOWN):
        return _resume(db, mailing_list, since, until, existing.id, counts[DeliveryStatus.UNKNOWN], again)
    _refuse_sent(existing, mailing_list.name, again)
    if existing is not None and existing.status == EditionStatus.RELEASED:
        return _resume(db, mailing_list, since, until, existing.id, counts.get(DeliveryStatus.PENDING, 0), again)
    problems = _sync(settings, db, mailing_list, clock())
    built_at = clock()
    built = build()
    problems += repeated_threads(db, mailing_list, since, until, built)
    return Plan(mailing_list, since, until, built.edition.subject, db.lists.count(mailing_list.name),
                built.html_bytes, problems, again, built=built, built_at=built_at)


def repeated_threads(db: Database, mailing_list: MailingList, since: datetime, until: datetime,
                     built: Built) -> list[str]:
    """A warning per sent edition whose period overlaps this one and that showed some of the
    same threads, naming them: subscribers would get them twice."""
    shown = shown_threads(built)
    found = []
    for row, threads in db.ledger.sent_threads(mailing_list.name, since, until):
        again = [key for key in shown if key in set(threads)]
        if again:
            briefs = db.picks.briefs(again)
            named = "; ".join(f"{brief.author} on \"{first_words(brief.post_title, 8)}\" ({key})" if brief else key
                              for key in again[:5] for brief in [briefs.get(key)])
            more = f" and {len(again) - 5} more" if len(again) > 5 else ""
            found.append(f"this period overlaps the edition sent {row.finished_at or row.since:%Y-%m-%d} "
                         f"({row.since.astimezone(mailing_list.timezone):%d %b}-"
                         f"{(row.until - timedelta(days=1)).astimezone(mailing_list.timezone):%d %b %Y}): "
                         f"{len(again)} thread(s) would go out again: {named}{more}")
    return found


def _resume(db: Database, mailing_list: MailingList, since: datetime, until: datetime, edition_id: int,
            recipients: int, again: bool) -> Plan:
    """The plan of an edition already frozen: it goes out as it was built."""
    edition = db.ledger.edition(edition_id)
    return Plan(mailing_list, since, until, edition.subject, recipients, len(edition.html.encode()), [], again,
                resume_id=edition_id)


def sync_list(settings: SendSettings, db: Database, mailing_list: MailingList, now: datetime,
              allow_retire: bool = False) -> SyncResult:
    """Read the list file now, under the list's send lock (never beside a send or another sync)."""
    with db.locks.hold(send_lock(mailing_list.name), wait=lock_wait(db)):
        return sync(db.lists, mailing_list.name, settings.path(mailing_list.file), now, allow_retire,
                    settings.smtputf8)


def _sync(settings: SendSettings, db: Database, mailing_list: MailingList, now: datetime) -> list[str]:
    """A file that cannot be applied (broken, or retiring too many) leaves the stored
    subscribers as they are: the send goes to them, and the problem is reported."""
    try:
        return sync_list(settings, db, mailing_list, now).problems
    except (ListFileError, MassRetireError) as error:
        return [f"{error}; the list was not synced, so this edition goes to the "
                f"{db.lists.count(mailing_list.name)} subscribers stored"]


def send_lock(list_name: str) -> str:
    """The lock every send and list sync of a list holds: one at a time per list."""
    return f"send:{list_name}"


def send(settings: SendSettings, db: Database, planned: Plan, mailer: Mailer | None = None,
         clock: Clock = utc_now, retry_unknown: bool = False,
         progress: Callable[[int, int], None] = lambda done, total: None,
         should_stop: Callable[[], bool] = lambda: False,
         sleep: Callable[[float], None] = time.sleep) -> SendReport:
    """Freeze the planned edition (or resume the unfinished one) and deliver it. On
    SQLite one send per list at a time holds the list's lock throughout; on PostgreSQL
    the lock guards the freeze only, and a second sender joins the edition being sent
    (workers.py: each takes the batches nobody holds)."""
    check_ready_to_send(settings)
    key = secret_key(settings)
    name, shared = planned.mailing_list.name, db.shares_sends
    own = mailer is None
    mailer = mailer or make_mailer(settings)              # a mailer that cannot start stops us before the freeze
    try:
        with db.locks.hold(send_lock(name), wait=lock_wait(db)):
            report = _start(settings, db, planned, clock)
            if retry_unknown:
                db.ledger.retry_unknown(report.edition_id, clock())
            if shared:                                    # frozen: another sender may join it now
                db.locks.release(send_lock(name), holder_id())
            _deliver(settings, db, mailer, report, key, clock, sleep, should_stop, own, progress)
    finally:
        if own:
            mailer.close()
    report.counts = db.ledger.counts(report.edition_id)
    if report.finished and db.ledger.finish(report.edition_id, clock()):
        crash.point("send.finished")
    log.info("%s", report.summary())
    return report


def lock_wait(db: Database) -> timedelta:
    """How long a send waits for the list's lock: on PostgreSQL, senders starting together
    queue for the freeze and then share the edition; on SQLite the second one is refused."""
    return JOIN_WAIT if db.shares_sends else timedelta(0)


JOIN_WAIT = timedelta(minutes=10)     # PostgreSQL: a second sender waits this long for the first one's freeze


def hold(settings: SendSettings, db: Database, planned: Plan, clock: Clock = utc_now) -> int:
    """Freeze the planned edition held for the editor's approval: its ledger filled, nobody
    sent anything, its picks and draft still the editor's to change. The edition's id."""
    check_ready_to_send(settings)
    name = planned.mailing_list.name
    with db.locks.hold(send_lock(name)):
        existing = db.ledger.latest(name, planned.since, planned.until)
        edition_id, _ = _freeze(settings, db, planned, existing, clock, held=True)
    return edition_id


BUSY = {True: "the edition of {name} for this period is being sent already; `digest editions` shows where it stands",
        False: "another send of {name}'s edition started after this one was planned; run `digest send` again to "
               "resume it"}     # what a freeze meets when the period's edition is being sent: a hold, a send


def _freeze(settings: SendSettings, db: Database, planned: Plan, existing: Any, clock: Clock,
            held: bool = False) -> tuple[int, int]:
    """Under the list's send lock: freeze the planned edition with its ledger, in one
    transaction (held: for the editor's approval, nothing sent); (its id, recipients).
    Refused when the period's edition was sent, is held, or is being sent."""
    name = planned.mailing_list.name
    _refuse_sent(existing, name, planned.again)
    if existing is not None and existing.status == EditionStatus.RELEASED:
        raise DigestError(BUSY[held].format(name=name))
    assert planned.built is not None
    frozen = db.ledger.freeze(planned.built.edition, clock(), planned.built_at, shown_threads(planned.built),
                              hold=held, tracked=counted_links(settings, planned.built.edition))
    crash.point("hold.frozen" if held else "send.frozen")
    return frozen


def _refuse_sent(existing: Any, list_name: str, again: bool) -> None:
    if existing is not None and existing.status == EditionStatus.HELD:
        raise HeldForApproval(f"the edition of {list_name} for this period is held for approval (since "
                              f"{existing.created_at:%Y-%m-%d %H:%M} UTC); approve it with `digest approve "
                              f"{list_name}` (or in the web editor), or skip it there")
    if existing is not None and existing.status == EditionStatus.SENT and not again:
        raise AlreadySent(f"the edition of {list_name} for this period was sent at "
                          f"{existing.finished_at:%Y-%m-%d %H:%M} UTC; pass --again to send a new copy to everyone")


def counted_links(settings: SendSettings, edition: Edition) -> list[Link]:
    """The links of the edition whose clicks are counted ([tracking].clicks), stored with it."""
    return links_of(edition, settings.base_url) if settings.tracking.clicks == "edition" else []


def as_sent(settings: SendSettings, db: Database, edition_id: int, key: str) -> Edition:
    """The frozen edition as it goes out: its links through digest's click address when
    [tracking].clicks counts them (the stored copy keeps the direct links)."""
    edition = db.ledger.edition(edition_id)
    found = db.ledger.links(edition_id) if settings.tracking.clicks == "edition" else []
    if not found:
        return edition
    address = lambda link: f"{settings.base_url}/c/{click_token(key, edition_id, link.n)}"  # noqa: E731
    return replace(edition, html=tracked(edition.html, found, address))


def _start(settings: SendSettings, db: Database, planned: Plan, clock: Clock) -> SendReport:
    """Under the list's send lock: check nothing changed since the plan, then freeze or
    resume (on PostgreSQL, joining another sender that is still at it)."""
    name = planned.mailing_list.name
    existing = db.ledger.latest(name, planned.since, planned.until)
    if planned.resume_id is None:
        edition_id, recipients = _freeze(settings, db, planned, existing, clock)
        problems = list(planned.problems)
        if recipients != planned.recipients:
            problems.append(f"the list changed after the prompt: sending to {recipients} subscribers, "
                            f"not the {planned.recipients} shown")
        return SendReport(name, edition_id, planned.subject, problems=problems)
    if existing is not None and existing.id == planned.resume_id and existing.status == EditionStatus.SENT:
        db.ledger.reopen(existing.id)                 # --retry-unknown on an edition reported sent
    elif existing is None or existing.id != planned.resume_id or existing.status != EditionStatus.RELEASED:
        raise DigestError(f"the edition of {name} being resumed changed meanwhile (another send finished it); "
                          "run `digest editions` to see where it stands")
    joining = db.ledger.in_flight(existing.id, clock()) is not None       # another sender is at it: share
    report = SendReport(name, existing.id, planned.subject, resumed=not joining, joined=joining)
    report.cut_off = db.ledger.mark_cut_off(existing.id, clock())
    crash.point("send.resumed")
    return report


def _deliver(settings: SendSettings, db: Database, mailer: Mailer, report: SendReport, key: str, clock: Clock,
             sleep: Callable[[float], None], should_stop: Callable[[], bool], own: bool,
             progress: Callable[[int, int], None]) -> None:
    run = workers.Run(settings, db, mailer, report.edition_id, report.list_name, key, clock, sleep, should_stop,
                      own_mailers=own, gate=workers.gate_for(settings, db, clock()),
                      writes=nullcontext() if db.shares_sends else threading.Lock())
    found = workers.deliver(run, as_sent(settings, db, report.edition_id, key), progress)
    report.cut_off += found.cut_off
    report.taken += found.taken
    if found.quota is not None:
        report.problems.append(str(found.quota))
        report.resumes_at = found.quota.resume_at


def editor_url(base_url: str, mailing_list: MailingList, since: datetime, until: datetime) -> str:
    """The web editor's preview of this period (a test copy's "View on the web": the
    archive has no page for an edition that has not gone out)."""
    zone = mailing_list.timezone
    query = urlencode({"since": since.astimezone(zone).date().isoformat(),
                       "until": until.astimezone(zone).date().isoformat()})
    return f"{base_url}/editor/{quote(mailing_list.name)}?{query}"


def _for_editor(edition: Edition, url: str) -> Edition:
    """The edition with its archive links turned into the editor's preview."""
    html = edition.html.replace(f'href="{html_escape(edition.web_url)}"', f'href="{html_escape(url)}"')
    return replace(edition, html=html, text=edition.text.replace(edition.web_url, url), web_url=url)


@dataclass(frozen=True)
class TestCopy:
    subject: str
    warnings: list[str]          # e.g. its links point at a local address


def send_test(settings: SendSettings, mailing_list: MailingList, since: datetime, until: datetime,
              address: str, build: Callable[[], Built], mailer: Mailer | None = None) -> TestCopy:
    """A test copy of the edition to one address; nothing is recorded for the list. It may
    go through the real relay before the public address exists (its links then say so)."""
    try:
        address = check_address(address)
    except ValueError as error:
        raise UsageError(f"--to {address!r} is not a valid address ({error}); give one like you@example.org") from None
    warnings = check_ready_for_a_test(settings)
    built = build()
    to = recipient(settings, key=secret_key(settings), list_name=mailing_list.name, delivery_id=0, email=address,
                   email_key=email_key(address))
    own = mailer is None
    mailer = mailer or make_mailer(settings)
    try:
        folder = f"{mailing_list.name}-test-{utc_now():%Y%m%d-%H%M%S-%f}"
        copy = _for_editor(built.edition, editor_url(settings.base_url, mailing_list, since, until))
        outcomes = list(mailer.send(copy, [to], lambda ids: ids, folder))
    finally:
        if own:
            mailer.close()
    outcome = outcomes[0]
    if outcome.status != DeliveryStatus.ACCEPTED:
        raise DigestError(f"the test copy to {address} was {outcome.status}: {outcome.error}")
    return TestCopy(built.edition.subject, warnings)
