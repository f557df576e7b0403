"""Subscribe by mail: a message to `LOCAL+subscribe-LIST@DOMAIN` (or to the plain address
with `subscribe LIST` as its subject) asks for LIST to be sent to its From. Nobody is
subscribed by it: its From gets a confirmation (double opt-in) whose Reply-To is the
request's tokened confirm address (by_mail/confirm.py); a reply to it subscribes.

Anyone can write a From, so the confirmation is all that ever goes to it, at most as
often as the web form's sign-up limits allow (per mailbox, every spelling of it, an hour
and a day; to anyone an hour), counted in the database: a thousand requests from one
sender give at most a few confirmations. Mail that is automatic (RFC 3834: an
auto-reply, a bounce, a mailing list's) and mail from our own address are never
answered: no mail loops, ever. A request for a list there is not, or from an address
that cannot be used, is kept for the editor.

A request within the limits is recorded first (one row per request mail), then the
confirmation is sent, then the row says so: a crash between the two sends the
confirmation once more when the message is read again (the same token: whichever copy the
asker answers confirms, once). A request over the limits is not stored."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parseaddr

from ...config import MailingList, Settings
from ...errors import UsageError
from ...models import Reason, email_key
from ...oneline import clean_name
from ...signals.addresses import automatic, sender
from ...signals.bounces import AUTO_SUBJECTS
from ..inbox import Desk, Handled, Inbound
from ..sends import mailer
from ..subscribers import (
    PER_MAILBOX_DAY,
    PER_MAILBOX_HOUR,
    SIGNUPS_AN_HOUR,
    LetterNotTaken,
    mailbox,
    send_mail_confirmation,
    valid_address,
    valid_name,
)

MAX_NAME = 100                  # as the web form cuts a name
BLOCKED = (Reason.BOUNCED, Reason.COMPLAINED, Reason.REMOVED)
_FAILED = re.compile(r"^\s*(undeliver|undelivered|delivery (status notification|failure|has failed)|"
                     r"mail delivery (failed|subsystem)|returned mail|failure notice|non[- ]?delivery)",
                     re.IGNORECASE)


def subscribe(desk: Desk, inbound: Inbound) -> Handled:
    """Send the From a confirmation for the list (once per request mail, within the limits)."""
    robot = why_automatic(inbound.message)
    if robot:
        return Handled(f"automatic mail ({robot}): nobody subscribed, nothing answered")
    name, written = _sender(inbound.message)
    listed = _list(desk.settings, inbound.route.value)
    if listed is None:
        would = "would keep it for you" if desk.dry_run else "kept for you (flagged, unread)"
        return Handled(f"asks for a list there is not ({inbound.route.value}): nothing answered; {would}",
                       kept=True, address=_shown(written))
    try:
        address, person = valid_address(desk.settings, written), valid_name(clean_name(name)[:MAX_NAME])
    except UsageError:
        would = "would keep it for you" if desk.dry_run else "kept for you (flagged, unread)"
        return Handled(f"its From is not an address that can be used ({_shown(written)!r}): nothing answered; "
                       f"{would}", kept=True, list_name=listed.name)
    return _refused(desk, listed, address) or _confirm(desk, inbound, listed, address, person)


def _confirm(desk: Desk, inbound: Inbound, listed: MailingList, address: str, person: str) -> Handled:
    box = mailbox(address)
    over = _over_limit(desk, box)                        # a refused request is not stored: a flood costs no rows
    if over or desk.dry_run:
        said = over or f"would send a confirmation (reply to confirm) to {address}"
        return Handled(f"dry run: {said}" if desk.dry_run else said, address=address, list_name=listed.name)
    row = desk.db.mail_signups.record(listed.name, address, box, person, inbound.message_id, desk.now)
    if row.confirm_sent_at is not None:                  # read again after a crash: it went
        return Handled("confirmation sent before: nothing more sent", address=address, list_name=listed.name)
    try:
        send_mail_confirmation(desk.settings, mailer(desk.settings), desk.key, listed, address, row.id, desk.now)
    except LetterNotTaken as error:                     # this address's own problem; the relay works
        return Handled(f"the relay did not take the confirmation ({error.status}): nobody subscribed; "
                       "kept for you (flagged, unread)", kept=True, address=address, list_name=listed.name)
    desk.db.mail_signups.confirmation_sent(row.id, desk.now)
    desk.db.signups.asked(listed.name, email_key(address), desk.now)     # the dashboard's "pending"
    return Handled("confirmation sent (a reply confirms)", address=address, list_name=listed.name)


def _refused(desk: Desk, listed: MailingList, address: str) -> Handled | None:
    """Why this address gets no confirmation (None when it may): it is our own (a loop, even
    as a plus address of ours), or one the list must not mail (kept for the editor)."""
    own = {mailbox(a) for a in (desk.settings.mailbox.address, desk.settings.mailbox.return_path,
                                parseaddr(desk.settings.sending.from_)[1]) if "@" in a}
    if mailbox(address) in own:
        return Handled("from our own address (a mail loop): nothing answered", address=address)
    found = desk.db.lists.suppression(listed.name, address)
    if found is None or found.reason not in BLOCKED:
        return None
    would = "would keep it for you" if desk.dry_run else "kept for you (flagged, unread)"
    return Handled(f"the address is {found.reason} on this list: nothing answered; {would}", kept=True,
                   address=address, list_name=listed.name)


def _over_limit(desk: Desk, box: str) -> str:
    """Why no more confirmations go now, or "" (the web form's limits, counted in the database)."""
    hour, day = desk.now - timedelta(hours=1), desk.now - timedelta(days=1)
    if desk.db.mail_signups.sent_to(box, hour) >= PER_MAILBOX_HOUR:
        return f"{PER_MAILBOX_HOUR} confirmations went to this mailbox in the last hour: nothing more answered"
    if desk.db.mail_signups.sent_to(box, day) >= PER_MAILBOX_DAY:
        return f"{PER_MAILBOX_DAY} confirmations went to this mailbox in the last day: nothing more answered"
    if desk.db.mail_signups.sent_in_all(hour) >= SIGNUPS_AN_HOUR:
        return f"{SIGNUPS_AN_HOUR} confirmations went out in the last hour: nothing more answered for now"
    return ""


def why_automatic(message: EmailMessage) -> str:
    """Why a message must never be answered nor confirm anything (RFC 3834's automatic mail,
    a delivery report, an out-of-office reply), or "" for a person's message."""
    try:
        robot = automatic(message)
        subject = str(message.get("Subject", "") or "")
        kind = message.get_content_type()
    except Exception:  # noqa: BLE001 - headers the email package cannot take apart: no person's request
        return "headers that cannot be read"
    if robot:
        return robot
    if kind in ("multipart/report", "message/delivery-status"):
        return f"a delivery report ({kind})"
    if AUTO_SUBJECTS.match(subject) or _FAILED.match(subject):
        return "an automatic reply's subject"
    return ""


def _sender(message: EmailMessage) -> tuple[str, str]:
    """(name, address) of the From as written, ("", "") when it cannot be read."""
    try:
        name, address = sender(message)
    except Exception:  # noqa: BLE001 - a stranger's From the email package cannot take apart
        return "", ""
    return name, address.strip()


def _list(settings: Settings, name: str) -> MailingList | None:
    return next((listed for listed in settings.lists if listed.name == name.lower()), None)


def _shown(address: str) -> str:
    """A stranger's address for the report: one line, bounded."""
    return clean_name(address)[:100]
