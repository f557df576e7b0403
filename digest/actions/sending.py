"""Sending: plan an edition and deliver it (the operator's send, the scheduler's run,
a test copy), resume what a crash or a deferral left, and the signing key and mailer
the fronts hand on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import MailingList, Settings
from ..db import Database
from ..errors import DigestError
from ..models import DeliveryStatus
from ..send import deliver
from ..send.deliver import AlreadySent, Plan, SendReport, TestCopy, send_lock
from ..send.mailers import Mailer, MailerError, make_mailer
from ..send.readiness import check_ready_to_send
from ..send.signing import INSECURE_KEY, secret_key
from ..write import periods
from ..write.edition import Built, NothingToSend, build_or_refuse
from .blog import fetch

log = logging.getLogger(__name__)
FETCH_WAIT = timedelta(minutes=10)     # another run fetching: wait for it rather than skip

__all__ = ["INSECURE_KEY", "AlreadySent", "Mailer", "MailerError", "NothingToSend", "Plan", "SendReport"]


def signing_key(settings: Settings) -> str:
    """The key links are signed with (SecretMissing when it is not set)."""
    return secret_key(settings.send_settings())


def mailer(settings: Settings) -> Mailer:
    """The configured mailer, open; the caller closes it."""
    return make_mailer(settings.send_settings())


def check_ready(settings: Settings) -> None:
    """NotReady (one line: the setting, the file, the fix) when a real backend would send
    from a config that is not ready for readers."""
    check_ready_to_send(settings.send_settings())


def _builder(settings: Settings, db: Database, listed: MailingList, since: datetime,
             until: datetime) -> Callable[[], Built]:
    return lambda: build_or_refuse(settings.write_settings(), db, listed, since, until)


def plan(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
         again: bool = False, clock: deliver.Clock = deliver.utc_now, retry_unknown: bool = False) -> Plan:
    """What a send of the period would do: the list file synced, the edition built (or the
    unfinished one found to resume)."""
    build = _builder(settings, db, listed, since, until)
    return deliver.plan(settings.send_settings(), db, listed, since, until, build, again, clock, retry_unknown)


def send(settings: Settings, db: Database, planned: Plan, mailer: Mailer | None = None,
         clock: deliver.Clock = deliver.utc_now, retry_unknown: bool = False,
         progress: Callable[[int, int], None] = lambda done, total: None,
         should_stop: Callable[[], bool] = lambda: False,
         sleep: Callable[[float], None] = time.sleep) -> SendReport:
    """Freeze the planned edition (or resume the unfinished one) and deliver it."""
    return deliver.send(settings.send_settings(), db, planned, mailer, clock, retry_unknown, progress, should_stop,
                        sleep)


def send_test(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
              address: str, mailer: Mailer | None = None) -> TestCopy:
    """A test copy of the period's edition to one address; nothing is recorded for the list."""
    return deliver.send_test(settings.send_settings(), listed, since, until, address,
                             _builder(settings, db, listed, since, until), mailer)


def sending(db: Database, listed: MailingList) -> AbstractContextManager[None]:
    """Hold the list's send lock around a plan, the operator's prompt and the send."""
    return db.locks.hold(send_lock(listed.name))


def finish_unfinished(settings: Settings, db: Database, listed: MailingList, mailer: Mailer | None = None,
                      should_stop: Callable[[], bool] = lambda: False) -> list[SendReport]:
    """Resume every edition of the list that a crash, a stop or a deferral left unfinished,
    oldest first (the scheduler does this before each run and when it starts)."""
    reports = []
    with sending(db, listed):
        for row in db.ledger.unfinished(listed.name):
            if should_stop():
                break
            planned = plan(settings, db, listed, row.since, row.until)
            reports.append(send(settings, db, planned, mailer=mailer, should_stop=should_stop))
    return reports


def send_edition(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
                 mailer: Mailer | None = None, should_stop: Callable[[], bool] = lambda: False) -> SendReport:
    """Plan and send without asking (the scheduler's way)."""
    with sending(db, listed):
        return send(settings, db, plan(settings, db, listed, since, until), mailer=mailer, should_stop=should_stop)


# ------------------------------------------------------------------ the scheduled run

@dataclass(frozen=True)
class RunOutcome:
    """What a scheduled run did, in one line, with its period and how long it took."""

    outcome: str
    period: str             # 2017-10-25 to 2017-10-31
    seconds: float


def scheduled_run(settings: Settings, db: Database, list_name: str, now: datetime,
                  should_stop: Callable[[], bool] = lambda: False) -> RunOutcome:
    """One scheduled run of a list: fetch every source, finish any edition of the list left
    unfinished, then send the period just ended. A source that fails is reported; the
    editions still go out."""
    listed = settings.mailing_list(list_name)
    if listed is None:
        raise DigestError(f"list {list_name!r} is no longer in the config; restart the scheduler")
    check_ready(settings)
    started = time.monotonic()
    failed = [r for r in fetch(settings, db, list(settings.sources), now, wait=FETCH_WAIT) if r.failed]
    for report in failed:
        log.warning("%s", report.summary())
    resumed = finish_unfinished(settings, db, listed, should_stop=should_stop)
    since, until = periods.ending(listed, now).bounds
    try:
        outcome = counts_line(send_edition(settings, db, listed, since, until, should_stop=should_stop))
    except (AlreadySent, NothingToSend) as skipped:
        outcome = f"nothing sent: {skipped}"
    if resumed:
        outcome = (f"resumed {len(resumed)} unfinished edition(s) ({'; '.join(counts_line(r) for r in resumed)}); "
                   f"{outcome}")
    if failed:
        outcome += f"; sources failed: {', '.join(r.source for r in failed)}"
    return RunOutcome(outcome, _days(listed, since, until), time.monotonic() - started)


def _days(listed: MailingList, since: datetime, until: datetime) -> str:
    """The period as the list's local days, both included: 2017-10-25 to 2017-10-31."""
    zone = listed.timezone
    return f"{since.astimezone(zone):%Y-%m-%d} to {(until.astimezone(zone) - timedelta(days=1)):%Y-%m-%d}"


def counts_line(report: SendReport) -> str:
    counts = report.counts
    line = (f"recipients {sum(counts.values())}, accepted {counts.get(DeliveryStatus.ACCEPTED, 0)}, "
            f"failed {counts.get(DeliveryStatus.REFUSED, 0)}, unknown {counts.get(DeliveryStatus.UNKNOWN, 0)}")
    if counts.get(DeliveryStatus.PENDING):
        line += f", not sent yet {counts[DeliveryStatus.PENDING]}"
    return line
