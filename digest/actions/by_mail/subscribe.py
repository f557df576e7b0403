"""Subscribe by mail: a message to `LOCAL+subscribe-LIST@DOMAIN` (or to the plain address
with `subscribe LIST` as its subject) asks for LIST to be sent to its From. Nobody is
subscribed by it: its From gets a confirmation (double opt-in) whose Reply-To is the
request's tokened confirm address (by_mail/confirm.py); a reply to it subscribes.

Anyone can write a From, so the confirmation is all that ever goes to it, at most as
often as the web form's sign-up limits allow (per mailbox, every spelling of it, an hour
and a day), counted in the database: a thousand requests from one sender give at most a
few confirmations, and the rest are read and dropped. To anyone, at most the day's
budget goes (live/mail_checks.confirmations_a_day: a tenth of the relay provider's daily
limit, Gmail's 500 giving 50, and 200 at most), so that a flood from many addresses
cannot spend the mailbox's sending for the day; a request the budget has no room for is
nobody's abuse, and is left unread (not flagged) for a later read to answer, for two
days at most (then kept for the editor). Mail that is automatic (RFC 3834: an
auto-reply, a bounce, a mailing list's) and mail from our own address are never
answered: no mail loops, ever. A request for a list there is not, or from an address
that cannot be used, is kept for the editor.

A request within the limits is recorded first (one row per request mail), then the
confirmation is sent, then the row says so: a crash between the two sends the
confirmation once more when the message is read again (the same token: whichever copy the
asker answers confirms, once). A request over the limits of its mailbox is not stored."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parseaddr

from ...config import MailingList, Settings
from ...db.mail_signups import MailSignup
from ...errors import UsageError
from ...live.mail_checks import confirmations_a_day
from ...models import Reason, email_key
from ...oneline import clean_name
from ...signals.addresses import automatic, sender
from ...signals.bounces import AUTO_SUBJECTS
from ..inbox import Desk, Handled, Inbound
from ..sends import mailer
from ..subscribers import (
    PER_MAILBOX_DAY,
    PER_MAILBOX_HOUR,
    LetterNotTaken,
    mailbox,
    send_mail_confirmation,
    valid_address,
    valid_name,
)

MAX_NAME = 100                  # as the web form cuts a name
WAIT_AT_MOST = timedelta(hours=48)   # a request the day's budget has no room for waits this long, then is kept
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
        said = over or _dry_run(desk, address)
        return Handled(f"dry run: {said}" if desk.dry_run else said, address=address, list_name=listed.name)
    row = desk.db.mail_signups.record(listed.name, address, box, person, inbound.message_id, desk.now)
    if row.confirm_sent_at is not None:                  # read again after a crash: it went
        return Handled("confirmation sent before: nothing more sent", address=address, list_name=listed.name)
    spent = _budget_spent(desk)
    if spent:
        return _wait(desk, row, spent)
    try:
        send_mail_confirmation(desk.settings, mailer(desk.settings), desk.key, listed, address, row.id, desk.now)
    except LetterNotTaken as error:                     # this address's own problem; the relay works
        return Handled(f"the relay did not take the confirmation ({error.status}): nobody subscribed; "
                       "kept for you (flagged, unread)", kept=True, address=address, list_name=listed.name)
    desk.db.mail_signups.confirmation_sent(row.id, desk.now)
    desk.db.signups.asked(listed.name, email_key(address), desk.now)     # the dashboard's "pending"
    return Handled("confirmation sent (a reply confirms)", address=address, list_name=listed.name)


def _wait(desk: Desk, row: MailSignup, spent: str) -> Handled:
    """A request the day's budget has no room for: left unread and unflagged, so that a later
    read answers it; one that waited WAIT_AT_MOST (a flood that lasts) is kept for the editor."""
    if desk.now - row.asked_at < WAIT_AT_MOST:
        return Handled(f"{spent}: nothing answered yet; left unread, a later read answers it", later=True,
                       address=row.email, list_name=row.list_name)
    return Handled(f"{spent}, and it has waited since {row.asked_at:%Y-%m-%d %H:%M} UTC: nothing answered; "
                   "kept for you (flagged, unread)", kept=True, address=row.email, list_name=row.list_name)


def _dry_run(desk: Desk, address: str) -> str:
    spent = _budget_spent(desk)
    return f"{spent}: would leave it unread for a later read" if spent else \
        f"would send a confirmation (reply to confirm) to {address}"


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
    """Why no more confirmations go to this mailbox, or "" (the web form's limits, counted in
    the database): more is abuse, and the request is read and dropped."""
    hour, day = desk.now - timedelta(hours=1), desk.now - timedelta(days=1)
    if desk.db.mail_signups.sent_to(box, hour) >= PER_MAILBOX_HOUR:
        return f"{PER_MAILBOX_HOUR} confirmations went to this mailbox in the last hour: nothing more answered"
    if desk.db.mail_signups.sent_to(box, day) >= PER_MAILBOX_DAY:
        return f"{PER_MAILBOX_DAY} confirmations went to this mailbox in the last day: nothing more answered"
    return ""


def _budget_spent(desk: Desk) -> str:
    """Why no confirmation goes to anyone now, or "": the day's confirmations in all
    (mail_checks.confirmations_a_day: a tenth of the relay provider's daily limit, 200 at
    most) went in the last 24 hours. Not the asker's doing: the request waits."""
    budget = confirmations_a_day(desk.settings)
    if desk.db.mail_signups.sent_in_all(desk.now - timedelta(days=1)) >= budget:
        return f"the day's {budget} confirmations in all went in the last 24 hours"
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
