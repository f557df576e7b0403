"""Deliver an edition to a list: never twice, never lost.

One send per list at a time (a lock row). A new edition is built, frozen and given a
ledger row per member; an unfinished one is resumed from its ledger. Each batch is
marked `sending` before it goes and `accepted`/`refused` after; a crash leaves at most
the batch in flight of unknown outcome, which is reported and only re-sent on request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .config import Settings
from .edition import Built, build, picks_for
from .errors import DigestError
from .ledger import Ledger
from .lock import hold
from .mailers import Mailer, MailerError, Outcome, make_mailer
from .message import recipient
from .render import Renderer
from .signing import secret_key
from .store import Store
from .subscribers import Lists

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


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
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cut_off: int = 0          # rows a crashed run left in flight, now "unknown"

    def summary(self) -> str:
        c = self.counts
        line = (f"{self.list_name}: edition {self.edition_id}: {c.get('accepted', 0)} accepted, "
                f"{c.get('refused', 0)} failed, {c.get('suppressed', 0)} suppressed, "
                f"{c.get('pending', 0)} skipped")
        if c.get("unknown"):
            line += (f"; {c['unknown']} of unknown outcome (cut off mid-send): not re-sent, "
                     "run `digest send --retry-unknown` to send them again")
        return line


@dataclass
class Plan:
    """What a send will do, before it does it (for the prompt and --dry-run)."""

    list_name: str
    subject: str
    recipients: int
    resume_id: int | None
    html_bytes: int
    problems: list[str]


def plan(settings: Settings, store: Store, list_name: str, since: datetime, until: datetime,
         again: bool = False) -> Plan:
    """Check what would be sent, writing nothing but the list sync."""
    ledger, lists = Ledger(store), Lists(store)
    existing = ledger.latest(list_name, since, until)
    _refuse_sent(existing, list_name, again)
    if existing is not None and existing.status == "sending":
        counts = ledger.counts(existing.id)
        edition = ledger.edition(existing.id)
        return Plan(list_name, edition.subject, counts.get("pending", 0), existing.id, len(edition.html.encode()), [])
    mailing_list = settings.mailing_list(list_name)
    synced = lists.sync(list_name, settings.path(mailing_list.file), datetime.now(UTC))
    built = _build(settings, store, list_name, since, until)
    return Plan(list_name, built.edition.subject, lists.count(list_name), None, built.html_bytes, synced.problems)


def send(settings: Settings, store: Store, list_name: str, since: datetime, until: datetime,
         mailer: Mailer | None = None, clock: Clock = lambda: datetime.now(UTC), again: bool = False,
         retry_unknown: bool = False, progress: Callable[[int, int], None] = lambda done, total: None,
         should_stop: Callable[[], bool] = lambda: False) -> SendReport:
    """Build (or resume) the edition of list_name for [since, until) and deliver it."""
    key = secret_key(settings)
    with hold(store, f"send:{list_name}"):
        ledger = Ledger(store)
        report = _prepare(settings, store, ledger, list_name, since, until, clock, again)
        if retry_unknown:
            ledger.retry_unknown(report.edition_id, clock())
        own = mailer is None
        mailer = mailer or make_mailer(settings)
        try:
            _deliver(settings, ledger, mailer, report, key, clock, progress, should_stop)
        finally:
            if own:
                mailer.close()
        report.counts = ledger.counts(report.edition_id)
        if not any(report.counts.get(s) for s in ("pending", "sending", "unknown")):
            ledger.finish(report.edition_id, clock())
    log.info("%s", report.summary())
    return report


def _refuse_sent(existing: object, list_name: str, again: bool) -> None:
    if existing is not None and existing.status == "sent" and not again:
        raise AlreadySent(f"the edition of {list_name} for this period was sent at "
                          f"{existing.finished_at:%Y-%m-%d %H:%M} UTC; pass --again to send a new copy to everyone")


def _prepare(settings: Settings, store: Store, ledger: Ledger, list_name: str, since: datetime,
             until: datetime, clock: Clock, again: bool) -> SendReport:
    existing = ledger.latest(list_name, since, until)
    _refuse_sent(existing, list_name, again)
    if existing is not None and existing.status == "sending":
        report = SendReport(list_name, existing.id, ledger.edition(existing.id).subject, resumed=True)
        report.cut_off = ledger.mark_cut_off(existing.id, clock())
        return report
    mailing_list = settings.mailing_list(list_name)
    synced = Lists(store).sync(list_name, settings.path(mailing_list.file), clock())
    built = _build(settings, store, list_name, since, until)
    edition_id = ledger.freeze(built.edition, clock())
    ledger.fill(edition_id, list_name, clock())
    store.use_picks(list_name, clock())
    return SendReport(list_name, edition_id, built.edition.subject, problems=synced.problems)


def _build(settings: Settings, store: Store, list_name: str, since: datetime, until: datetime) -> Built:
    mailing_list = settings.mailing_list(list_name)
    built = build(settings, store, Renderer(settings), mailing_list, since, until, picks_for(store, list_name))
    if not built.selection.posts:
        raise NothingToSend(f"no posts or comments between {since:%Y-%m-%d} and {until:%Y-%m-%d}; "
                            "run `digest fetch` first, or check the period")
    return built


def _deliver(settings: Settings, ledger: Ledger, mailer: Mailer, report: SendReport, key: str,
             clock: Clock, progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> None:
    edition = ledger.edition(report.edition_id)
    folder = f"{report.list_name}-{report.edition_id}"
    total, done = sum(ledger.counts(report.edition_id).values()), 0
    while not should_stop() and (rows := ledger.pending(report.edition_id, mailer.batch_size)):
        blocked = ledger.suppressed_now(report.list_name, [r.email_key for r in rows])
        ledger.mark([r.id for r in rows if r.email_key in blocked], "suppressed", clock())
        batch = [recipient(settings, key, report.list_name, r.id, r.email, r.email_key, r.name, report.edition_id)
                 for r in rows if r.email_key not in blocked]
        done_so_far: list[Outcome] = []

        def mark_sending(ids: list[int]) -> None:
            """Outcomes so far and the next ids in flight, committed together."""
            ledger.record(done_so_far, ids, clock())
            done_so_far.clear()

        try:
            for outcome in mailer.send(edition, batch, mark_sending, folder):
                done_so_far.append(outcome)
                if mailer.record_each:
                    mark_sending([])
        except MailerError as error:
            ledger.record(done_so_far, [], clock())
            ledger.mark(error.unsent, "pending", clock())
            raise
        ledger.record(done_so_far, [], clock())
        done += len(rows)
        progress(done, total)


def send_test(settings: Settings, store: Store, list_name: str, since: datetime, until: datetime,
              address: str, mailer: Mailer | None = None) -> str:
    """A test copy of the edition to one address; nothing is recorded for the list."""
    from .subscribers import check_address, email_key
    try:
        address = check_address(address)
    except ValueError as error:
        raise DigestError(f"--to {address!r} is not a valid address ({error}); give one like you@example.org") from None
    built = _build(settings, store, list_name, since, until)
    to = recipient(settings, secret_key(settings), list_name, 0, address, email_key(address), "", None)
    own = mailer is None
    mailer = mailer or make_mailer(settings)
    try:
        folder = f"{list_name}-test-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
        outcomes = list(mailer.send(built.edition, [to], lambda ids: None, folder))
    finally:
        if own:
            mailer.close()
    outcome = outcomes[0]
    if outcome.status != "accepted":
        raise DigestError(f"the test copy to {address} was {outcome.status}: {outcome.error}")
    return built.edition.subject
