"""Confirm by mail: a reply to a sign-up's confirmation (its Reply-To is
`LOCAL+confirm-TOKEN@DOMAIN`; without plus addressing the plain address, the token in the
subject the reply keeps), or the mail its button opens, subscribes whoever asked: the
token (send/signing.py's address token for MAIL_CONFIRM) names the request's
mail_signups row, and only the confirmation carried it, so the reply's From and body are
never read. It is the web link's confirmation (actions.subscribers.confirm_subscription):
it works once, for [web].confirm_max_age_hours after the confirmation went, never lifts an unsubscribe made after the
request, and the welcome goes once (db.welcomes).

Automatic mail (an auto-responder answering the confirmation, a bounce of it) confirms
nobody. A token that does not read (forged, cut, another digest's) confirms nobody and
is kept for the editor, as is a reply that comes too late."""

from __future__ import annotations

import shlex
from datetime import timedelta

from ...db.mail_signups import MailSignup
from ...send.signing import MAIL_CONFIRM, read_address_token
from ..inbox import Desk, Handled, Inbound
from ..sends import mailer
from ..subscribers import LetterNotTaken, SubscribeRefused, confirm_subscription, send_welcome
from .subscribe import why_automatic

KEPT = "kept for you (flagged, unread)"


def confirm(desk: Desk, inbound: Inbound) -> Handled:
    """Subscribe the asker the token names to their list, and welcome them (once)."""
    robot = why_automatic(inbound.message)
    if robot:
        return Handled(f"automatic mail ({robot}): confirms nobody")
    number = read_address_token(desk.key, MAIL_CONFIRM, inbound.route.value)
    row = desk.db.mail_signups.find(number) if number is not None else None
    kept = "would keep it for you" if desk.dry_run else KEPT
    if row is None:
        return Handled(f"its token is not one of ours (forged, cut, or another digest's): confirms nobody; {kept}",
                       kept=True)
    if desk.settings.mailing_list(row.list_name) is None:
        return Handled(f"its list {row.list_name} is no longer in the config: confirms nobody; {kept}", kept=True,
                       address=row.email, list_name=row.list_name)
    if row.confirmed_at is not None:
        return _again(desk, row)
    hours, sent = desk.settings.web.confirm_max_age_hours, row.confirm_sent_at or row.asked_at
    if desk.now - sent > timedelta(hours=hours):          # from when the confirmation went (a request may wait)
        command = f"digest subscribers add {shlex.quote(row.list_name)} {shlex.quote(row.email)}"
        return Handled(f"too late: the confirmation went {sent:%Y-%m-%d %H:%M} UTC, a reply works for {hours} hours; "
                       f"nobody subscribed; {kept}; if {row.email} is to get it, run `{command}`", kept=True,
                       address=row.email, list_name=row.list_name)
    if desk.dry_run:
        return Handled("dry run: would subscribe and welcome", address=row.email, list_name=row.list_name)
    return _subscribe(desk, row)


def _subscribe(desk: Desk, row: MailSignup) -> Handled:
    listed = desk.settings.mailing_list(row.list_name)
    assert listed is not None
    try:
        confirm_subscription(desk.settings, desk.db, listed, row.email, row.name, row.asked_at,
                             f"mail-signup:{row.id}", desk.now)
    except SubscribeRefused as refused:
        return Handled(f"not subscribed: {refused}", address=row.email, list_name=row.list_name)
    desk.db.mail_signups.confirmed(row.id, desk.now)
    return Handled(f"subscribed; {_welcome(desk, row)}", address=row.email, list_name=row.list_name)


def _again(desk: Desk, row: MailSignup) -> Handled:
    """A second reply: nothing changes (a welcome that could not go before goes now)."""
    if desk.dry_run or not desk.db.lists.is_active(row.list_name, row.email):
        return Handled("confirmed before: nothing changed", address=row.email, list_name=row.list_name)
    said = _welcome(desk, row)
    outcome = "confirmed before: nothing changed" if said == ALREADY else f"confirmed before; {said}"
    return Handled(outcome, address=row.email, list_name=row.list_name)


ALREADY = "welcomed before"


def _welcome(desk: Desk, row: MailSignup) -> str:
    """The welcome, once per list and address. A relay that does not work raises (the
    message stays unread and the next read tries again); one that does not take this
    letter is said, and a later reply tries again."""
    listed = desk.settings.mailing_list(row.list_name)
    assert listed is not None
    try:
        sent = send_welcome(desk.settings, desk.db, mailer(desk.settings), desk.key, listed, row.email, row.name,
                            desk.now)
    except LetterNotTaken as error:
        return f"the relay did not take the welcome ({error.status}); a later reply tries again"
    return "welcome sent" if sent else ALREADY
