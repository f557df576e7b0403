"""What the scheduler does, written as actions: a list's scheduled run (fetch, resume what
was left, then send the period just ended, or hold it for the editor's approval), and the
desk's errands every few seconds (the web's orders, approvals that timed out, reviews not
yet mailed). After each, the editor gets a notice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import crash
from ..config import MailingList, Settings
from ..db import Database
from ..errors import DigestError, LockedError
from ..models import DeliveryStatus, EditionStatus
from ..send.deliver import AlreadySent, HeldForApproval, SendReport
from ..write import periods
from ..write.edition import NothingToSend
from . import approval, publish
from .blog import fetch
from .notices import Notice, notify
from .sends import check_ready, finish_unfinished, send_edition
from .subscribers import list_title

log = logging.getLogger(__name__)
FETCH_WAIT = timedelta(minutes=10)     # another run fetching: wait for it rather than skip
MAX_ORDERS = 20                        # orders carried out in one errand (a busy list's waits for the next)


@dataclass(frozen=True)
class RunOutcome:
    """What a scheduled run did, in one line, with its period and how long it took."""

    outcome: str
    period: str             # 2017-10-25 to 2017-10-31
    seconds: float


def scheduled_run(settings: Settings, db: Database, list_name: str, now: datetime,
                  should_stop: Callable[[], bool] = lambda: False) -> RunOutcome:
    """One scheduled run of a list: fetch every source, finish any edition of the list left
    unfinished, then send the period just ended (with approval required: hold it and mail
    the editor the review). A source that fails is reported; the editions still go out.
    The editor gets a notice of what happened."""
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
    outcome, notice = _send_or_hold(settings, db, listed, since, until, now, should_stop)
    if resumed:
        outcome = (f"resumed {len(resumed)} unfinished edition(s) ({'; '.join(counts_line(r) for r in resumed)}); "
                   f"{outcome}")
    if failed:
        outcome += f"; sources failed: {', '.join(r.source for r in failed)}"
        notice = _with_line(notice, f"Sources that could not be read: {', '.join(r.source for r in failed)}.")
    if notice is not None:
        notify(settings, listed, notice, now)
    return RunOutcome(outcome, _days(listed, since, until), time.monotonic() - started)


def _send_or_hold(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
                  now: datetime, should_stop: Callable[[], bool]) -> tuple[str, Notice | None]:
    title, days = list_title(settings, listed), periods.of_edition(listed, since, until).label()
    try:
        if listed.approval == "required":
            held = approval.hold_edition(settings, db, listed, since, until, now)
            approval.send_review(settings, db, listed, held.edition_id, now)
            return (f"held for approval: edition {held.edition_id}, {held.recipients} recipients "
                    f"(review mailed to {settings.editor.email})"), None
        report = send_edition(settings, db, listed, since, until, should_stop=should_stop)
    except (AlreadySent, NothingToSend, HeldForApproval) as skipped:
        return f"nothing sent: {skipped}", Notice("nothing", listed.name, f"{title}: nothing sent for {days}",
                                                  [str(skipped)[0].upper() + str(skipped)[1:] + "."],
                                                  link=dashboard(settings))
    return counts_line(report), sent_notice(settings, db, listed, report)


def sent_notice(settings: Settings, db: Database, listed: MailingList, report: SendReport) -> Notice:
    counts, title = report.counts, list_title(settings, listed)
    row = db.ledger.info(report.edition_id)
    since, until = (row.since, row.until) if row is not None else (None, None)
    days = periods.of_edition(listed, since, until).label() if since and until else f"edition {report.edition_id}"
    lines = [f"\"{report.subject}\" went to {sum(counts.values()):,} reader(s): "
             f"{counts.get(DeliveryStatus.ACCEPTED, 0):,} accepted, {counts.get(DeliveryStatus.REFUSED, 0):,} failed, "
             f"{counts.get(DeliveryStatus.SUPPRESSED, 0):,} suppressed."]
    command = ""
    lines += _post_lines(settings, report, row.posted_at if row is not None else None)
    if not report.finished:
        lines.append(f"{counts.get(DeliveryStatus.PENDING, 0):,} are not sent yet (deferred by the server or "
                     "stopped early): the scheduler sends them on its next try.")
        command = _resume_command(listed, since, until) if since and until else f"digest send {listed.name}"
    return Notice("sent", listed.name, f"{title}: the edition of {days} went out", lines, command,
                  dashboard(settings), "Open the dashboard")


def _post_lines(settings: Settings, report: SendReport, posted_at: datetime | None) -> list[str]:
    """What became of the edition's post to the blog ([publish].mail_to), for the notice."""
    mail_to = settings.publish.mail_to
    if not mail_to or not report.finished:
        return []
    said = [line for line in report.problems if f"to the blog ({mail_to})" in line]
    if said:
        return [said[0][0].upper() + said[0][1:] + "."]
    return [f"It was posted to the blog ({mail_to}): where the blog keeps mailed posts as drafts, "
            "publish it there."] if posted_at else []


def failed_notice(settings: Settings, listed: MailingList, scheduled: datetime, error: str, retry: str) -> Notice:
    """A run that failed: the error, what the scheduler does next, and the command that resumes it."""
    since, until = periods.ending(listed, scheduled).bounds
    zone = listed.timezone
    command = _resume_command(listed, since, until)
    return Notice("failed", listed.name, f"{list_title(settings, listed)}: the run of "
                                         f"{scheduled.astimezone(zone):%a %d %b %H:%M %Z} failed",
                  [f"{error}", f"{retry[0].upper()}{retry[1:]}."], command, dashboard(settings), "Open the dashboard")


def dashboard(settings: Settings) -> str:
    return f"{settings.web.base_url}/editor/"


def _with_line(notice: Notice | None, line: str) -> Notice | None:
    if notice is None:
        return None
    return Notice(notice.kind, notice.list_name, notice.headline, [*notice.lines, line], notice.command, notice.link,
                  notice.link_text)


def _resume_command(listed: MailingList, since: datetime, until: datetime) -> str:
    """The command that sends (or resumes) the period's edition by hand."""
    zone = listed.timezone
    return (f"digest send {listed.name} --since {since.astimezone(zone).date()} "
            f"--until {until.astimezone(zone).date()}")


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


# ------------------------------------------------------------------ the desk's errands

def tend(settings: Settings, db: Database, now: datetime, should_stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Every few seconds in the scheduler: mail reviews not yet mailed, post to the blog the
    editions whose post did not go, decide approvals that timed out, and carry out the web's
    orders. What was done, one line each."""
    done = [f"review of edition {n} mailed" for n in approval.send_reviews_due(settings, db, now)]
    done += [posted.line(settings.publish.mail_to) for posted in publish.retry_refused(settings, db, now)]
    for listed, edition_id, decision in approval.decide_timeouts(settings, db, now):
        done.append(f"{listed.name}: edition {edition_id} {decision.decision}")
        _timed_out(settings, db, listed, edition_id, decision, now, should_stop)
    for _ in range(MAX_ORDERS):
        order = None if should_stop() else db.orders.claim(now)
        if order is None:
            break
        crash.point("order.claimed")
        done.append(_carry_out(settings, db, order, now, should_stop))
    return done


def _timed_out(settings: Settings, db: Database, listed: MailingList, edition_id: int,
               decision: approval.Decision, now: datetime, should_stop: Callable[[], bool]) -> None:
    title = list_title(settings, listed)
    if decision.status != EditionStatus.RELEASED:
        notify(settings, listed, Notice("skipped", listed.name, f"{title}: the held edition was skipped",
                                        [f"Nobody approved edition {edition_id} within {listed.approve_within}, so "
                                         "it was skipped (on_timeout = \"skip\"); its picks wait for the next one."],
                                        link=dashboard(settings)), now)
        return
    for report in finish_unfinished(settings, db, listed, should_stop=should_stop):
        notify(settings, listed, sent_notice(settings, db, listed, report), now)


def _carry_out(settings: Settings, db: Database, row: Any, now: datetime, should_stop: Callable[[], bool]) -> str:
    """One order from the web, done; its outcome stored with it, the editor told."""
    listed, order_id = settings.mailing_list(row.list_name), row.id
    if listed is None:
        db.orders.finish(order_id, True, "the list is no longer in the config", now)
        return f"order {order_id}: the list is gone"
    try:
        reports = _order_reports(settings, db, listed, row, should_stop)
    except LockedError:                        # another send of the list is running: try again in a moment
        db.orders.release(order_id)
        return f"order {order_id}: the list is busy; waiting"
    except (AlreadySent, NothingToSend, HeldForApproval) as refused:
        db.orders.finish(order_id, True, f"nothing sent: {refused}", datetime.now(now.tzinfo))
        return f"order {order_id}: nothing sent"
    except DigestError as error:
        db.orders.finish(order_id, True, str(error), datetime.now(now.tzinfo))
        notify(settings, listed, Notice("failed", listed.name, f"{list_title(settings, listed)}: send now failed",
                                        [str(error)], f"digest send {listed.name}", dashboard(settings)), now)
        return f"order {order_id}: failed: {error}"
    outcome = "; ".join(counts_line(r) for r in reports) or "nothing left to send"
    db.orders.finish(order_id, False, outcome, datetime.now(now.tzinfo))
    for report in reports:
        notify(settings, listed, sent_notice(settings, db, listed, report), now)
    return f"order {order_id}: {outcome}"


def _order_reports(settings: Settings, db: Database, listed: MailingList, row: Any,
                   should_stop: Callable[[], bool]) -> list[SendReport]:
    if row.kind == "deliver":
        return finish_unfinished(settings, db, listed, should_stop=should_stop)
    return [send_edition(settings, db, listed, row.since, row.until, should_stop=should_stop)]
