"""Subscribers: adding and removing them, a subscriber's own sign-up (by the web form, or
by mail in mail mode: the mailto link and the blog's snippet for it), confirmation and
unsubscribe, list files (import, export, sync), and the few mails one subscriber gets
outside an edition (confirmation, welcome)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

from markupsafe import Markup

from ..config import MailingList, Settings
from ..db import Database
from ..errors import DigestError, UsageError
from ..models import DeliveryStatus, Letter, Origin, Reason, Subscriber, SyncResult, email_key
from ..oneline import clean_name, name_problem
from ..send import deliver, readiness
from ..send.mailers import Mailer, MailerError
from ..send.message import recipient
from ..send.signing import (
    MAIL_CONFIRM,
    address_token,
    confirmation_token,
    read_confirmation_token,
    read_unsubscribe_token,
)
from ..send.subscribers import check_address, check_file, mailbox, read_csv, spreadsheet_safe
from ..signals import addresses
from ..write import listing as presented
from ..write.letters import Letters

__all__ = ["mailbox"]

# The sign-up limits, the web form's and mail's alike (web/public.py counts the form's in
# memory, by_mail/subscribe.py counts mail's confirmations in the database): confirmation
# mails to one mailbox (every spelling of it: `mailbox()`) an hour and a day, and to anyone
# an hour.
PER_MAILBOX_HOUR, PER_MAILBOX_DAY, SIGNUPS_AN_HOUR = 3, 5, 200


@dataclass(frozen=True)
class Added:
    address: str
    suppressed: bool            # on the list, but suppressed: it will not be mailed


class LetterNotTaken(MailerError):
    """The relay did not take a letter for its one recipient (refused it, deferred it, or
    left it unknown); the relay itself works (a MailerError of its own says it does not)."""

    def __init__(self, message: str, status: DeliveryStatus) -> None:
        super().__init__(message)
        self.status = status


class SubscribeRefused(DigestError):
    """A subscriber's confirmation cannot (or can no longer) subscribe them; says why."""

    http_status = 409


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
    operator's add never lifts a subscriber's unsubscribe; only the subscriber can (`subscribe`)."""
    address = valid_address(settings, email)
    db.lists.merge(listed.name, [Subscriber(address, valid_name(name))], origin, now)
    return Added(address, db.lists.is_suppressed(listed.name, address))


def subscribe(settings: Settings, db: Database, listed: MailingList, email: str, name: str,
              now: datetime) -> Added:
    """A subscriber confirmed their own subscription: it lifts their earlier unsubscribe
    from this list (never a bounce, a complaint or an operator's removal)."""
    address = valid_address(settings, email)
    db.lists.unsuppress(email_key(address), listed.name, Reason.UNSUBSCRIBED)
    db.lists.merge(listed.name, [Subscriber(address, clean_name(name))], Origin.WEB, now)
    return Added(address, db.lists.is_suppressed(listed.name, address))


def confirm_subscription(settings: Settings, db: Database, listed: MailingList, email: str, name: str,
                         asked_at: datetime, link: str, now: datetime) -> Added:
    """The subscriber clicked their confirmation link (asked for at asked_at). Each link works
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
    db.signups.confirmed(listed.name, email_key(email))
    if added.suppressed:
        found = db.lists.suppression(listed.name, email)
        why = WHY_BLOCKED.get(Reason(found.reason), "this address is blocked") if found else "this address is blocked"
        raise SubscribeRefused(f"{email} cannot be subscribed: {why}. Write to the editor if that is a mistake.")
    return added


def unsubscribe(db: Database, listed: MailingList, address: str, detail: str, now: datetime) -> None:
    db.lists.suppress(email_key(address), listed.name, Reason.UNSUBSCRIBED, detail, now)


def remove_subscriber(db: Database, listed: MailingList, email: str, now: datetime) -> bool:
    """Take an address off a list for good; False when it was not subscribed (suppressed anyway).
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
    """Add the subscribers of a CSV file; bad rows are reported in problems and skipped."""
    if not path.exists():
        raise UsageError(f"{path}: no such file; give the CSV file to import (columns email, name)")
    check_file(path, "the file given to import")      # a folder, a pipe, a device: one line each
    read = read_csv(path, settings.sending.smtputf8)
    result = db.lists.merge(listed.name, read.subscribers, Origin.IMPORT, now)
    result.problems = read.problems
    return result


def export_subscribers(db: Database, listed: MailingList) -> str:
    """The subscribers who will get the next edition as CSV (email, name), safe to open in a
    spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "name"])
    for row in db.lists.active(listed.name):
        writer.writerow([spreadsheet_safe(row.email), spreadsheet_safe(row.name)])
    return buffer.getvalue()


def listing(db: Database, listed: MailingList) -> Iterator[str]:
    """Every address ever on the list, one line each: email, name, state (active, retired
    or why suppressed) and origin, tab-separated; streamed."""
    for email, name, active, origin, reason in db.lists.rows(listed.name):
        yield f"{email}\t{name}\t{reason or ('active' if active else 'retired')}\t{origin}\n"


def sync_list(settings: Settings, db: Database, listed: MailingList, now: datetime,
              allow_retire: bool = False) -> SyncResult:
    """Read the list file now, under the list's send lock (never beside a send or another sync)."""
    return deliver.sync_list(settings.send_settings(), db, listed, now, allow_retire)


def signup_address(settings: Settings, address: str) -> str:
    """An address from a sign-up form, normalised, or ValueError saying what is wrong."""
    return check_address(address, settings.sending.smtputf8)


def confirmation_link(settings: Settings, key: str, listed: MailingList, address: str, person: str,
                      now: datetime) -> str:
    """The link that confirms a sign-up: opaque, it carries the list, the address and the
    name typed (stored only once the mailbox's owner clicks)."""
    return f"{settings.web.base_url}/confirm/{confirmation_token(key, listed.name, address, person, now)}"


def read_confirmation(settings: Settings, key: str, token: str, now: datetime) -> tuple[str, str, str, datetime]:
    """(list, address, name, asked at) of a confirmation link; BadLink or ExpiredLink (400)."""
    return read_confirmation_token(key, token, timedelta(hours=settings.web.confirm_max_age_hours), now)


def read_unsubscribe(key: str, token: str) -> tuple[str, str] | None:
    """(list, address) from an unsubscribe link's token, or None if it was not signed with key."""
    return read_unsubscribe_token(key, token)


# ------------------------------------------------------------------ one subscriber, one mail

def list_title(settings: Settings, listed: MailingList) -> str:
    """What subscribers see as the list's name."""
    return presented.title(listed, settings.site.title)


def list_description(settings: Settings, listed: MailingList) -> str:
    return presented.description(listed, settings.site.title)


def latest_edition_url(settings: Settings, db: Database, listed: MailingList) -> str | None:
    """The newest edition of the list in the archive (None before the first goes out)."""
    rows = db.ledger.sent_editions(listed.name)
    if not rows:
        return None
    return f"{settings.web.base_url}/archive/{listed.name}/{rows[0].since.astimezone(listed.timezone).date()}"


def send_confirmation(settings: Settings, db: Database, mailer: Mailer, key: str, listed: MailingList,
                      address: str, person: str, now: datetime) -> None:
    """The mail that asks the mailbox's owner to confirm a sign-up. No List-Unsubscribe:
    nobody is subscribed yet. No name: whoever filled the form chose it, unchecked, and it
    would be text of theirs in a mail from us (To: "URGENT: verify your bank at ..."
    <victim@...>); it travels sealed in the link and is stored once the owner confirms."""
    title, link = list_title(settings, listed), confirmation_link(settings, key, listed, address, person, now)
    letter = Letters(settings.write_settings()).write(
        "confirm", listed.name, f"Confirm your subscription to {title}", f"One click and {title} starts coming to you.",
        list_title=title, address=address, link=link, hours=settings.web.confirm_max_age_hours)
    mail_one(settings, mailer, key, listed, address, "", letter, "confirm", now, unsubscribe=False)
    db.signups.asked(listed.name, email_key(address), now)


def send_welcome(settings: Settings, db: Database, mailer: Mailer, key: str, listed: MailingList, address: str,
                 person: str, now: datetime) -> bool:
    """The welcome, once per list and address: when editions arrive, the latest one, and the
    subscriber's own unsubscribe link. False when it went before (or could not go now: MailerError
    lets a later click of the confirmation link try again)."""
    if not db.welcomes.claim(listed.name, email_key(address), now):
        return False
    title, latest = list_title(settings, listed), latest_edition_url(settings, db, listed)
    row = db.lists.subscriber_id(listed.name, address)
    to = recipient(settings.send_settings(), key=key, list_name=listed.name, delivery_id=0, email=address,
                   email_key=email_key(address), name=person, subscriber_id=row)
    letter = Letters(settings.write_settings()).write(
        "welcome", listed.name, f"Welcome to {title}", f"Your first edition arrives {presented.arrives(listed, now)}.",
        list_title=title, description=list_description(settings, listed), arrives=presented.arrives(listed, now),
        latest=latest, archive=f"{settings.web.base_url}/archive/{listed.name}/", address=address,
        unsubscribe_url=to.values["unsubscribe_url"])
    try:
        mail_one(settings, mailer, key, listed, address, person, letter, "welcome", now, subscriber_id=row)
    except (MailerError, readiness.NotReady):
        db.welcomes.release(listed.name, email_key(address))
        raise
    return True


def mail_one(settings: Settings, mailer: Mailer, key: str, listed: MailingList, address: str, person: str,
             letter: Letter, kind: str, now: datetime, unsubscribe: bool = True, reply_to: str = "",
             subscriber_id: int | None = None, folder: str = "") -> None:
    """One message (a confirmation, a welcome) to one subscriber through the configured mailer;
    MailerError unless it was accepted. The mailer is closed after. With unsubscribe, it
    carries List-Unsubscribe (RFC 8058; with [mailbox] address, also the mailto naming the
    subscribers row subscriber_id) for the subscriber's list; with reply_to, a Reply-To
    (mail mode: a tokened plus address, so that a reply acts); always `Auto-Submitted:
    auto-generated`, so that no robot answers it (no loops). A real backend refuses
    (NotReady) to send links anyone could forge ([web].insecure_dev_mode, a weak secret).
    folder names the letter for the mailer (the outbox's folder): by default its kind, the
    moment and its list and recipient, so that the letters of one mailbox read (one moment)
    are each their own."""
    try:
        readiness.check_signed_links(settings.send_settings())
    except readiness.NotReady:
        mailer.close()
        raise
    to = recipient(settings.send_settings(), key=key, list_name=listed.name, delivery_id=0, email=address,
                   email_key=email_key(address), name=person, subscriber_id=subscriber_id)
    if not unsubscribe:
        to.headers = {}
    if reply_to:
        to.headers["Reply-To"] = reply_to
    to.headers["Auto-Submitted"] = "auto-generated"       # RFC 3834: no auto-responder answers a letter of ours
    try:
        for outcome in mailer.send(letter, [to], lambda ids: ids, folder or _folder(kind, listed, address, now)):
            if outcome.status != DeliveryStatus.ACCEPTED:
                raise LetterNotTaken(f"{kind} to {address}: {outcome.status} {outcome.error}", outcome.status)
    finally:
        mailer.close()


def _folder(kind: str, listed: MailingList, address: str, now: datetime) -> str:
    mark = hashlib.sha256(f"{listed.name} {email_key(address)}".encode()).hexdigest()[:10]
    return f"{kind}-{now:%Y%m%d-%H%M%S-%f}-{mark}"


# ------------------------------------------------------------------ sign-up by mail (mail mode)

def signup_mailto(settings: Settings, listed: MailingList) -> str:
    """The mailto: link that asks to join the list by mail: `LOCAL+subscribe-LIST@DOMAIN`
    (or, without plus addressing, the plain address with `subscribe LIST` as its subject)."""
    if not settings.mailbox.address:
        raise UsageError("no mailbox address to subscribe by mail; set [mailbox] address in the config file")
    return addresses.mailto(settings.mailbox, addresses.SUBSCRIBE, listed.name)


def signup_snippet(settings: Settings, listed: MailingList) -> str:
    """HTML for the blog (a Blogger HTML/JavaScript gadget, a WordPress Custom HTML block):
    the list's title and description and a button that opens the sign-up mail. Every value
    is escaped; nothing in it runs or posts anywhere."""
    link = signup_mailto(settings, listed)
    shown = addresses.reply_to(settings.mailbox, addresses.SUBSCRIBE, listed.name)
    if not settings.mailbox.plus_addresses:
        shown = f"{shown} (subject: {addresses.subject_for(addresses.SUBSCRIBE, listed.name)})"
    return str(Markup(SNIPPET).format(title=list_title(settings, listed),
                                      description=list_description(settings, listed), link=link, address=shown))


SNIPPET = """<div style="max-width:360px;font-family:Arial,sans-serif">
<p style="margin:0 0 8px;font-size:16px;font-weight:bold">{title}</p>
<p style="margin:0 0 12px;font-size:14px">{description}</p>
<p style="margin:0"><a href="{link}" style="display:inline-block;min-height:24px;padding:10px 20px;\
font-size:16px;line-height:24px;background:#0b5394;color:#ffffff;text-decoration:none;border-radius:4px">\
Subscribe by email</a></p>
<p style="margin:8px 0 0;font-size:13px">The button opens a message to {address}: send it, then \
reply to the message that comes back.</p>
</div>
"""


def send_mail_confirmation(settings: Settings, mailer: Mailer, key: str, listed: MailingList, address: str,
                           signup_id: int, now: datetime) -> None:
    """The mail that asks whoever asked by mail to confirm: its Reply-To is the sign-up's
    tokened confirm address (without plus addressing the plain address, and the token in
    the subject a reply keeps), and it offers the same as a mailto. No name (whoever wrote
    the request's From chose it) and no List-Unsubscribe (nobody is subscribed yet)."""
    token, box = address_token(key, MAIL_CONFIRM, signup_id), settings.mailbox
    title = list_title(settings, listed)
    subject = f"Confirm your subscription to {title}"
    if not box.plus_addresses:
        subject += f" ({addresses.subject_for(addresses.CONFIRM, token)})"
    confirm_to = addresses.reply_to(box, addresses.CONFIRM, token)
    letter = Letters(settings.write_settings()).write(
        "confirm_by_mail", listed.name, subject, f"Reply to this message and {title} starts coming to you.",
        list_title=title, address=address, mailto=addresses.mailto(box, addresses.CONFIRM, token),
        confirm_to=confirm_to, confirm_subject="" if box.plus_addresses else addresses.subject_for(
            addresses.CONFIRM, token), hours=settings.web.confirm_max_age_hours)
    mail_one(settings, mailer, key, listed, address, "", letter, "confirm", now, unsubscribe=False,
             reply_to=confirm_to, folder=f"confirm-{now:%Y%m%d-%H%M%S-%f}-mail-{signup_id}")
