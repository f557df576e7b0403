"""What a person can do, written once and used alike by the CLI, the web app and the
scheduler: fetch, preview, pin, exclude, unpick, add and remove subscribers, build,
send. Each action takes parsed settings, an open Database and resolved objects, and
raises DigestError (UsageError for a wrong request) with one line saying what to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

from .config import MailingList, Settings, Source
from .db import Database
from .db.drafts import Draft
from .db.picks import CommentBrief, first_words
from .errors import DigestError, UsageError
from .models import Member, Origin, PickAction, Reason, SourceReport, SyncResult, email_key
from .names import clean_name, name_problem
from .read.ingest import ingest
from .send.deliver import Plan, SendReport, plan, send, send_lock, send_test, sync_list
from .send.mailers import Mailer
from .send.subscribers import check_address, read_csv
from .write.edition import Built, build
from .write.periods import NEXT, Period, holding
from .write.render import Renderer

log = logging.getLogger(__name__)
FETCH_LOCK = "fetch"

__all__ = ["Plan", "SendReport", "plan", "send", "send_test", "sync_list"]


# ------------------------------------------------------------------ resolving names

def mailing_list(settings: Settings, name: str) -> MailingList:
    found = settings.mailing_list(name)
    if found is None:
        known = ", ".join(item.name for item in settings.lists) or "none: add a [[lists]] table"
        raise UsageError(f"unknown list {name!r}; choose from: {known}")
    return found


def sources(settings: Settings, names: Iterable[str] = ()) -> list[Source]:
    names = list(names)
    if not settings.sources:
        raise UsageError(f"no [[sources]] in {settings.origin}; add one with a name and url")
    unknown = [n for n in names if settings.source(n) is None]
    if unknown:
        known = ", ".join(s.name for s in settings.sources)
        raise UsageError(f"unknown source {unknown[0]!r}; choose from: {known}")
    return [s for s in settings.sources if s.name in names] if names else list(settings.sources)


# ------------------------------------------------------------------ reading the blog

def fetch(settings: Settings, db: Database, chosen: list[Source], now: datetime, full: bool = False,
          progress: Callable[[Source], Callable[[str], None]] = lambda source: lambda text: None,
          wait: timedelta = timedelta(0)) -> list[SourceReport]:
    """Fetch the chosen sources, one fetch at a time per database (waiting up to `wait`
    for another to finish)."""
    with db.locks.hold(FETCH_LOCK, now=now, wait=wait, reentrant=False):   # beats while a long fetch runs
        return [ingest(source, settings.fetch, db, settings.root, now, full=full, progress=progress(source))
                for source in chosen]


# ------------------------------------------------------------------ the edition

def preview(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
            show_why: bool = False) -> Built:
    """The edition listed would get for [since, until), with the editor's picks; nothing recorded."""
    return build(settings, db, Renderer(settings, show_why=show_why), listed, since, until)


COMMENT_ID = re.compile(r"(?:#c|[?&]showComment=\d+#c|^c?)(\d{6,})$")


def comment_key(db: Database, reference: str) -> str:
    """A stored comment's key from what an editor pastes: the id, `c<id>`, `#c<id>`, or
    the blog's comment permalink (…?showComment=…#c<id>)."""
    text = reference.strip()
    match = COMMENT_ID.search(text)
    key = match.group(1) if match else text
    if not key or not db.picks.comment_exists(key):
        raise UsageError(f"no stored comment has id {reference!r}; give its id or permalink "
                         "(ids are in `digest preview LIST --format json`)")
    return key


def pin(db: Database, listed: MailingList, reference: str, now: datetime, within: Period | None = None) -> str:
    """Always show the comment in the list's next edition; the best pin is the comment of the week.
    With `within`, only a comment of that period is taken (a pin elsewhere would do nothing)."""
    if within is not None:
        _check_in_period(db, listed, comment_key(db, reference), within, now)
    return _pick(db, listed, reference, PickAction.PIN, now)


def _check_in_period(db: Database, listed: MailingList, key: str, within: Period, now: datetime) -> None:
    """UsageError naming the comment, the period and the way out, unless the comment is of it."""
    if db.picks.in_period(key, within.since, within.until):
        return
    brief = db.picks.briefs([key]).get(key)
    named, hint = key, "pin a comment of that period"
    if brief is not None:
        written = brief.published.astimezone(listed.timezone)
        named = (f"{key} ({first_words(brief.author, 8)} on \"{first_words(brief.post_title, 12)}\", "
                 f"{written.day} {written:%b %Y})")
        home = holding(listed, written, now)
        hint = ("it was removed from the blog; pin another" if brief.removed else
                f"it is of {home.label()}: choose that period (--since {home.since.date()} --until "
                f"{home.until.date()}, or the editor's period picker)")
    what = "next edition" if within.kind == NEXT else "edition"
    raise UsageError(f"comment {named} is not in the period {within.label()} of {listed.name}'s {what}; {hint}")


def exclude(db: Database, listed: MailingList, reference: str, now: datetime) -> str:
    """Never show the comment in the list's next edition."""
    return _pick(db, listed, reference, PickAction.EXCLUDE, now)


def _pick(db: Database, listed: MailingList, reference: str, action: PickAction, now: datetime) -> str:
    key = comment_key(db, reference)
    db.picks.set(listed.name, key, action, now)
    return key


def unpick(db: Database, listed: MailingList, reference: str | None = None) -> int:
    """Forget the pick of one comment (or of every one) for the list's next edition."""
    key = None if reference is None else comment_key(db, reference)
    return db.picks.clear(listed.name, key)


def picks(db: Database, listed: MailingList) -> dict[str, PickAction]:
    return db.picks.waiting(listed.name)


def picked(db: Database, listed: MailingList) -> list[tuple[str, PickAction, CommentBrief | None]]:
    """The waiting picks with what an editor recognises them by (None: no longer stored)."""
    waiting = db.picks.waiting(listed.name)
    found = db.picks.briefs(waiting)
    return [(key, action, found.get(key)) for key, action in waiting.items()]


def find_comments(db: Database, within: Period, words: str) -> list[CommentBrief]:
    """Comments of the period whose author or text holds every word given (for pinning)."""
    return db.picks.search(within.since, within.until, words) if words.strip() else []


# ------------------------------------------------------------------ the editor's voice

MAX_NOTE = 5000          # characters of Markdown
MAX_SUBJECT = 200


def draft(db: Database, listed: MailingList) -> Draft:
    """The note and subject waiting for the list's next edition."""
    return db.drafts.get(listed.name)


def set_note(db: Database, listed: MailingList, note: str | None, now: datetime) -> None:
    """The editor's note (Markdown) for the list's next edition; None or blank clears it."""
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > MAX_NOTE:
        raise UsageError(f"the note is {len(note)} characters; keep it under {MAX_NOTE}")
    db.drafts.set_note(listed.name, note or None, now)


def set_subject(db: Database, listed: MailingList, subject: str | None, now: datetime) -> None:
    """The subject of the list's next edition instead of subject.txt's; None or blank clears it."""
    subject = " ".join((subject or "").split())
    if len(subject) > MAX_SUBJECT:
        raise UsageError(f"the subject is {len(subject)} characters; keep it under {MAX_SUBJECT}")
    db.drafts.set_subject(listed.name, subject or None, now)


# ------------------------------------------------------------------ subscribers

@dataclass(frozen=True)
class Added:
    address: str
    suppressed: bool            # on the list, but suppressed: it will not be mailed


class SubscribeRefused(DigestError):
    """A reader's confirmation cannot (or can no longer) subscribe them; says why."""


WHY_BLOCKED = {
    Reason.BOUNCED: "mail to this address bounced, so nothing more is sent to it",
    Reason.COMPLAINED: "this address reported our mail as spam, so nothing more is sent to it",
    Reason.REMOVED: "the editor took this address off the list",
    Reason.UNSUBSCRIBED: "this address unsubscribed from all our lists",
}


def valid_address(settings: Settings, email: str) -> str:
    """The address, normalised, or UsageError saying why it cannot be used."""
    try:
        return check_address(email, settings.sending.smtputf8)
    except ValueError as error:
        raise UsageError(f"{email!r} is not a valid address ({error}); give one like you@example.org") from None


def valid_name(name: str) -> str:
    problem = name_problem(name.strip())
    if problem:
        raise UsageError(f"--name: {problem}; give the name on one line")
    return name.strip()


def add_subscriber(settings: Settings, db: Database, listed: MailingList, email: str, name: str, origin: Origin,
                   now: datetime) -> Added:
    """Put an address on a list (kept even if the list file does not name it). An
    operator's add never lifts a reader's unsubscribe; only the reader can (`subscribe`)."""
    address = valid_address(settings, email)
    db.lists.merge(listed.name, [Member(address, valid_name(name))], origin, now)
    return Added(address, db.lists.is_suppressed(listed.name, address))


def subscribe(settings: Settings, db: Database, listed: MailingList, email: str, name: str,
              now: datetime) -> Added:
    """A reader confirmed their own subscription: it lifts their earlier unsubscribe
    from this list (never a bounce, a complaint or an operator's removal)."""
    address = valid_address(settings, email)
    db.lists.unsuppress(email_key(address), listed.name, Reason.UNSUBSCRIBED)
    db.lists.merge(listed.name, [Member(address, clean_name(name))], Origin.WEB, now)
    return Added(address, db.lists.is_suppressed(listed.name, address))


def confirm_subscription(settings: Settings, db: Database, listed: MailingList, email: str, name: str,
                         asked_at: datetime, link: str, now: datetime) -> Added:
    """The reader clicked their confirmation link (asked for at asked_at). Each link works
    once; an unsubscribe made after the link was asked for is never lifted by it; an
    address blocked for another reason is told so."""
    key, token = email_key(email), hashlib.sha256(link.encode()).hexdigest()
    if not db.lists.use_confirmation(token, listed.name, key, now):
        if db.lists.is_active(listed.name, email):        # a second click: nothing changes, all is well
            return Added(email, False)
        raise SubscribeRefused("This confirmation link was used already, and this address is not subscribed now; "
                               "subscribe again to get a new link.")
    blocked = db.lists.suppression(listed.name, email)
    if blocked is not None and blocked.reason == Reason.UNSUBSCRIBED and blocked.at > asked_at:
        raise SubscribeRefused("You unsubscribed after asking for this link, so it no longer works; "
                               "subscribe again if you want the digest back.")
    try:
        added = subscribe(settings, db, listed, email, name, now)
    except DigestError:                       # not subscribed (a busy database): the link works again
        db.lists.release_confirmation(token, listed.name)
        raise
    if added.suppressed:
        found = db.lists.suppression(listed.name, email)
        why = WHY_BLOCKED.get(Reason(found.reason), "this address is blocked") if found else "this address is blocked"
        raise SubscribeRefused(f"{email} cannot be subscribed: {why}. Write to the editor if that is a mistake.")
    return added


def unsubscribe(db: Database, listed: MailingList, address: str, detail: str, now: datetime) -> None:
    db.lists.suppress(email_key(address), listed.name, Reason.UNSUBSCRIBED, detail, now)


def remove_subscriber(db: Database, listed: MailingList, email: str, now: datetime) -> bool:
    """Take an address off a list for good; False when it was not a member (suppressed anyway).
    The address may be pasted as a mail client shows it ("Bob <bob@x>", "mailto:bob@x"): it is
    read out and checked, so the suppression is of the mailbox meant, or the command refuses."""
    return db.lists.remove(listed.name, _pasted_address(email), now)


def _pasted_address(text: str) -> str:
    found = parseaddr(text.strip())[1] or text.strip()
    found = found[len("mailto:"):] if found.lower().startswith("mailto:") else found
    try:
        return check_address(found.rstrip("."))
    except ValueError as error:
        raise UsageError(f"{text!r} is not an address ({error}); give it like bob@example.org") from None


def import_subscribers(settings: Settings, db: Database, listed: MailingList, path: Path,
                       now: datetime) -> SyncResult:
    """Add the members of a CSV file; bad rows are reported in problems and skipped."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give the CSV file to import (columns email, name)")
    read = read_csv(path, settings.sending.smtputf8)
    result = db.lists.merge(listed.name, read.members, Origin.IMPORT, now)
    result.problems = read.problems
    return result


def sending(db: Database, listed: MailingList) -> AbstractContextManager[None]:
    """Hold the list's send lock around a plan, the operator's prompt and the send."""
    return db.locks.hold(send_lock(listed.name))


# ------------------------------------------------------------------ sending

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
