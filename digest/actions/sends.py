"""Sends: plan an edition and deliver it (the operator's send, the scheduler's run,
a test copy), resume what a crash or a deferral left, and the signing key and mailer
the fronts hand on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from ..config import MailingList, Settings
from ..db import Database
from ..errors import DigestError
from ..live import mail_checks
from ..send import deliver
from ..send.deliver import AlreadySent, Plan, SendReport, TestCopy, send_lock
from ..send.mailers import Mailer, MailerError, make_mailer
from ..send.readiness import check_ready_to_send
from ..send.signing import INSECURE_KEY, secret_key
from ..write.edition import Built, NothingToSend, build_or_refuse
from . import publish

log = logging.getLogger(__name__)

__all__ = ["INSECURE_KEY", "AlreadySent", "Mailer", "MailerError", "NothingToSend", "Plan", "SendReport"]


def signing_key(settings: Settings) -> str:
    """The key links are signed with (SecretMissing when it is not set)."""
    return secret_key(settings.send_settings())


def mailer(settings: Settings) -> Mailer:
    """The configured mailer, open; the caller closes it."""
    return make_mailer(settings.send_settings())


def check_ready(settings: Settings) -> None:
    """NotReady (one line: the setting, the file, the fix) when a real backend would send
    from a config that is not ready for subscribers."""
    check_ready_to_send(settings.send_settings())


def edition_builder(settings: Settings, db: Database, listed: MailingList, since: datetime,
             until: datetime) -> Callable[[], Built]:
    return lambda: build_or_refuse(settings.write_settings(), db, listed, since, until)


def plan(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
         again: bool = False, clock: deliver.Clock = deliver.utc_now, retry_unknown: bool = False) -> Plan:
    """What a send of the period would do: the list file synced, the edition built (or the
    unfinished one found to resume)."""
    build = edition_builder(settings, db, listed, since, until)
    planned = deliver.plan(settings.send_settings(), db, listed, since, until, build, again, clock, retry_unknown)
    planned.problems.extend(over_the_relays_limit(settings, planned.recipients))
    return planned


def over_the_relays_limit(settings: Settings, recipients: int) -> list[str]:
    """Before a send: a list past the daily limit of the mailbox's provider it is sent
    through (Gmail 500 a day...) would stop part way; said, with the relay to move to."""
    provider = mail_checks.provider_of(settings)
    if provider is None or provider.daily_limit is None or recipients <= provider.daily_limit:
        return []
    return [f"{recipients:,} recipients is more than {provider.limit_line()}: the relay will refuse the rest "
            f"part way; before the next send, move to {provider.move_to}"]


def send(settings: Settings, db: Database, planned: Plan, mailer: Mailer | None = None,
         clock: deliver.Clock = deliver.utc_now, retry_unknown: bool = False,
         progress: Callable[[int, int], None] = lambda done, total: None,
         should_stop: Callable[[], bool] = lambda: False,
         sleep: Callable[[float], None] = time.sleep) -> SendReport:
    """Freeze the planned edition (or resume the unfinished one) and deliver it; once it is
    finished, post it to the blog ([publish].mail_to: actions/publish.py). Every send passes
    here: `digest send`, a scheduled run, an approval's, a desk order."""
    report = deliver.send(settings.send_settings(), db, planned, mailer, clock, retry_unknown, progress, should_stop,
                          sleep)
    if report.finished:
        report.problems += _post(settings, db, clock())
    return report


def _post(settings: Settings, db: Database, now: datetime) -> list[str]:
    """The finished edition posted to the blog (and any other whose post did not go): what
    went wrong, one line each (a post never fails the send that came before it)."""
    try:
        posted = publish.after_send(settings, db, now)
    except DigestError as error:
        return [f"the edition was not posted to the blog ({error}); `digest schedule` tries again within the day"]
    return [p.line(settings.publish.mail_to) for p in posted if p.outcome != publish.POSTED]


def send_test(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
              address: str, mailer: Mailer | None = None) -> TestCopy:
    """A test copy of the period's edition to one address; nothing is recorded for the list."""
    return deliver.send_test(settings.send_settings(), listed, since, until, address,
                             edition_builder(settings, db, listed, since, until), mailer)


def holding_send_lock(db: Database, listed: MailingList) -> AbstractContextManager[None]:
    """Hold the list's send lock around a plan, the operator's prompt and the send (on
    PostgreSQL waiting for it: the send gives it up once its edition is frozen, and this
    one then joins it)."""
    return db.locks.hold(send_lock(listed.name), wait=deliver.lock_wait(db))


def finish_unfinished(settings: Settings, db: Database, listed: MailingList, mailer: Mailer | None = None,
                      should_stop: Callable[[], bool] = lambda: False) -> list[SendReport]:
    """Resume every edition of the list that a crash, a stop or a deferral left unfinished,
    oldest first (the scheduler does this before each run and when it starts)."""
    reports = []
    with holding_send_lock(db, listed):
        for row in db.ledger.unfinished(listed.name):
            if should_stop():
                break
            planned = plan(settings, db, listed, row.since, row.until)
            reports.append(send(settings, db, planned, mailer=mailer, should_stop=should_stop))
    return reports


def send_edition(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
                 mailer: Mailer | None = None, should_stop: Callable[[], bool] = lambda: False) -> SendReport:
    """Plan and send without asking (the scheduler's way)."""
    with holding_send_lock(db, listed):
        return send(settings, db, plan(settings, db, listed, since, until), mailer=mailer, should_stop=should_stop)
