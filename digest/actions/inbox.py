"""`digest mailbox`: read the mailbox ([mailbox]) once and act on each new message once.

A message is routed by the plus address it was delivered to (signals/addresses.py): a
sign-up, a confirmation, an unsubscribe or an approval goes to its handler (actions/by_mail),
and so does a person's plain "unsubscribe" with no token (kept for the editor, with the
command that applies it); anything else is a bounce, a complaint or an auto-reply
(actions/bounces.py), or, when it is none of those, stays flagged and unread for the
editor. A handler applies its effect (each may be applied twice and changes nothing the
second time), the message is recorded by its Message-ID, and only then marked read in the
mailbox: a crash at any point loses nothing and doubles nothing. `--dry-run` says what
each would do and changes nothing.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from .. import crash
from ..config import Mailbox as MailboxSettings
from ..config import Settings
from ..db import Database
from ..errors import DigestError, UsageError
from ..signals.addresses import Route, route
from ..signals.bounces import message_key
from ..signals.mailbox import MAX_MESSAGE, Mailbox, open_mailbox
from .bounces import Line, MailboxReport, apply_bounce
from .sends import signing_key

log = logging.getLogger(__name__)
MAILBOX_LOCK = "mailbox"          # one read of the mailbox at a time


@dataclass(frozen=True)
class Inbound:
    """One message that arrived, as a handler sees it."""

    raw: bytes                  # at most MAX_MESSAGE bytes
    message: EmailMessage
    message_id: str             # its own Message-ID (a hash when absent or long): the key it is applied once by
    route: Route


@dataclass(frozen=True)
class Handled:
    """What a handler did (with dry_run: would do), one line, and to whom."""

    outcome: str
    kept: bool = False          # left flagged and unread in the mailbox, for the editor
    later: bool = False         # nothing applied: left unread and unflagged, not recorded; the next read tries again
    address: str = ""           # the reader (or the editor) it was about
    list_name: str | None = None
    edition_id: int | None = None


@dataclass(frozen=True)
class Desk:
    """What a handler works with."""

    settings: Settings
    db: Database
    key: str                    # the signing secret: tokens are read and made with it
    now: datetime
    dry_run: bool = False


Handler = Callable[[Desk, Inbound], Handled]


def read_mailbox(settings: Settings, db: Database, now: datetime, dry_run: bool = False,
                 progress: Callable[[int], None] = lambda n: None) -> MailboxReport:
    """Read every new message of the mailbox once (with dry_run: say what each would do,
    change nothing, mark nothing). One read at a time per database (the scheduler's and
    a `digest mailbox` by hand): another is refused with LockedError, changing nothing."""
    if not settings.mailbox.kind:
        raise UsageError("no mailbox is set; set [mailbox] maildir (a local Maildir) or imap_host and "
                         "imap_user in the config file")
    with nullcontext() if dry_run else db.locks.hold(MAILBOX_LOCK, now=now, reentrant=False):
        box = open_mailbox(settings.mailbox, settings.root, os.environ.get(settings.mailbox.imap_password_env, ""))
        report, desk = MailboxReport(box.where, dry_run), Desk(settings, db, signing_key(settings), now, dry_run)
        try:
            for number, (handle, raw) in enumerate(box.messages(), 1):
                _one(desk, box, report, handle, raw)
                progress(number)
        finally:
            box.close()
    log.info("%s", report.summary())
    return report


def _one(desk: Desk, box: Mailbox, report: MailboxReport, handle: str, raw: bytes) -> None:
    message = parse(raw)
    found = route(message, desk.settings.mailbox) if message is not None else None
    if found is None and message is not None:
        found = plain_request(message, desk.settings.mailbox)
    if found is None or message is None:
        apply_bounce(desk.settings, desk.db, box, report, desk.key, handle, raw, desk.now)
        return
    inbound = Inbound(raw[:MAX_MESSAGE], message, message_key(message, raw), found)
    try:
        _by_mail(desk, box, report, handle, inbound)
    except DigestError:                       # the database, the relay: the read stops, the message waits
        raise
    except Exception as error:  # noqa: BLE001 - a stranger's message the email package cannot take apart
        log.warning("mailbox: message %s could not be read (%s: %s); kept for the editor", inbound.message_id,
                    error.__class__.__name__, error)
        _unreadable(desk, box, report, handle, inbound, error)


def _unreadable(desk: Desk, box: Mailbox, report: MailboxReport, handle: str, inbound: Inbound,
                error: Exception) -> None:
    """One message that broke its reading: kept for the editor (flagged, unread), recorded so
    that it is not tried again; the rest of the mailbox is read."""
    would = "dry run: would keep it for you" if desk.dry_run else "kept for you (flagged, unread)"
    outcome = f"could not be read ({error.__class__.__name__}); {would}"
    report.lines.append(Line(inbound.route.kind, "", "", None, None, outcome))
    if not desk.dry_run:
        desk.db.inbox.record(inbound.message_id, inbound.route.kind, outcome, True, desk.now)
        box.done(handle, kept=True)


def _by_mail(desk: Desk, box: Mailbox, report: MailboxReport, handle: str, inbound: Inbound) -> None:
    kept = desk.db.inbox.seen(inbound.message_id)
    if kept is not None:                                  # applied before a crash, or by another reader just now
        if not desk.dry_run:
            report.already += 1
            box.done(handle, kept=kept)
        return
    handled = handler(inbound.route.kind)(desk, inbound)
    report.lines.append(Line(inbound.route.kind, "", handled.address, handled.edition_id, handled.list_name,
                             handled.outcome))
    if desk.dry_run or handled.later:
        return
    crash.point("mail.applied")
    desk.db.inbox.record(inbound.message_id, inbound.route.kind, handled.outcome, handled.kept, desk.now,
                         handled.address, handled.list_name)
    box.done(handle, kept=handled.kept)
    crash.point("mail.marked")


def handler(kind: str) -> Handler:
    from .by_mail import HANDLERS
    return HANDLERS[kind]


def plain_request(message: EmailMessage, mailbox: MailboxSettings) -> Route | None:
    """A plain "unsubscribe" to the plain address (no token): kept for the editor by its
    handler, with the command that applies it (by_mail/unsubscribe.py)."""
    from .by_mail.unsubscribe import plain_request as plain
    return plain(message, mailbox)


def parse(raw: bytes) -> EmailMessage | None:
    """The message (at most MAX_MESSAGE bytes of it), or None when the email package
    cannot take it apart (it is then read as a bounce: unknown, kept for the editor)."""
    try:
        parsed = email.message_from_bytes(raw[:MAX_MESSAGE], policy=email.policy.default)
    except Exception:  # noqa: BLE001 - a stranger's message: whatever breaks, it is one message for the editor
        return None
    return parsed if isinstance(parsed, EmailMessage) else None


__all__ = ["Desk", "Handled", "Handler", "Inbound", "parse", "read_mailbox"]
