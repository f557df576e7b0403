"""Unsubscribe by mail: a message to `LOCAL+unsubscribe-TOKEN@DOMAIN` (every reader mail's
List-Unsubscribe mailto, and the footer's link in mail mode), or to the plain address with
`unsubscribe TOKEN` in its subject (a provider without plus addressing), takes that reader
off that list. The token (send/signing.py's address token for MAIL_UNSUBSCRIBE) names the
subscribers row; only our own mail carries it, so its From and its body are never read:
Gmail's unsubscribe button sends exactly such a mail, from whatever address. It is the
suppression the one-click link writes (actions.subscribers.unsubscribe), so applying it
twice changes nothing; no reply is ever sent.

A mail without a valid token (forged, cut, another digest's, or a plain "unsubscribe" to
the plain address) unsubscribes nobody: it stays flagged for the editor, its outcome
naming the command that applies it when its From is on a list (anyone can write a From:
the editor decides)."""

from __future__ import annotations

import re
import shlex
from email.message import EmailMessage

from ...config import Mailbox
from ...models import Reason
from ...send.signing import MAIL_UNSUBSCRIBE, read_address_token
from ...signals.addresses import MAX_SUBJECT, UNSUBSCRIBE, Route, automatic, sender
from ..inbox import Desk, Handled, Inbound

DETAIL = "by mail"          # the suppression's detail (the one-click link writes "one-click")
PLAIN = "plain"             # Route.via of a plain "unsubscribe" to the plain address: no token at all
_PLAIN_SUBJECT = re.compile(r"^\s*(?:(?:re|fwd?|aw|sv|tr)\s*:\s*)*unsubscribe\b", re.IGNORECASE)


def handle(desk: Desk, inbound: Inbound) -> Handled:
    """Take the reader the token names off their list (once: again, nothing changes)."""
    number = read_address_token(desk.key, MAIL_UNSUBSCRIBE, inbound.route.value) if inbound.route.value else None
    if number is None:
        return _kept(desk, inbound)
    row = desk.db.lists.subscriber(number)
    if row is None:
        return Handled("its address names no subscriber (a test copy's): nothing to do")
    found = desk.db.lists.suppression(row.list_name, row.email)
    if found is not None:
        return Handled(f"already off the list ({found.reason}): nothing changed", address=row.email,
                       list_name=row.list_name)
    if desk.dry_run:
        return Handled("dry run: would unsubscribe", address=row.email, list_name=row.list_name)
    desk.db.lists.suppress(row.email_key, row.list_name, Reason.UNSUBSCRIBED, DETAIL, desk.now)
    return Handled("unsubscribed", address=row.email, list_name=row.list_name)


def plain_request(message: EmailMessage, mailbox: Mailbox) -> Route | None:
    """A person's plain "unsubscribe" (its subject says so; no token of ours routed it):
    handled here, to be kept for the editor with the command that applies it. Automatic
    mail (a bounce, an auto-reply quoting a subject) is never one."""
    if not mailbox.address or not _PLAIN_SUBJECT.match(_said(message, "Subject")[:MAX_SUBJECT]):
        return None
    try:
        robot = automatic(message)
    except Exception:  # noqa: BLE001 - headers the email package cannot take apart: left to the bounce reader
        return None
    return None if robot else Route(UNSUBSCRIBE, "", PLAIN)


def _said(message: EmailMessage, name: str) -> str:
    """A stranger's header as text, "" when the email package cannot take it apart."""
    try:
        return str(message.get(name, "") or "")
    except Exception:  # noqa: BLE001 - a stranger's header: whatever breaks, it says nothing
        return ""


def _from(message: EmailMessage) -> str:
    try:
        return sender(message)[1].strip()
    except Exception:  # noqa: BLE001 - as _said
        return ""


def _kept(desk: Desk, inbound: Inbound) -> Handled:
    """No valid token: nobody is unsubscribed; the editor gets the command that would."""
    why = ("a plain unsubscribe with no token of ours" if inbound.route.via == PLAIN or not inbound.route.value
           else "its token is not one of ours (forged, cut, or another digest's)")
    would = "dry run: would keep it for you" if desk.dry_run else "kept for you (flagged, unread)"
    found = _on_lists(desk, _from(inbound.message))
    if not found:
        return Handled(f"{why}: nobody unsubscribed; {would}; its From is on no list", kept=True)
    address = found[0][1]
    commands = " or ".join(f"`digest subscribers remove {shlex.quote(name)} {shlex.quote(email)}`"
                           for name, email in found)
    return Handled(f"{why}: nobody unsubscribed; {would}; anyone can write its From; if {address} asked, run "
                   f"{commands}", kept=True, address=address, list_name=found[0][0] if len(found) == 1 else None)


def _on_lists(desk: Desk, address: str) -> list[tuple[str, str]]:
    """(list, the address as stored) for each list the From's address is on: the command
    names what the editor's list holds, never a stranger's spelling of it."""
    if "@" not in address or len(address) > 320:
        return []
    found = []
    for listed in desk.settings.lists:
        number = desk.db.lists.subscriber_id(listed.name, address)
        row = desk.db.lists.subscriber(number) if number is not None else None
        if row is not None and desk.db.lists.is_active(listed.name, row.email):
            found.append((listed.name, row.email))
    return found
