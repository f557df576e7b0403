"""Mail mode's addresses: the plus addresses on `[mailbox] address` that readers and the
editor write to, and how a message that arrives is routed by them.

`LOCAL+subscribe-LIST@DOMAIN` asks to join a list; `LOCAL+unsubscribe-TOKEN@`,
`+confirm-TOKEN@` and `+approve-TOKEN@` carry a signed token (send/signing.py's address
tokens) that names a subscriber, a sign-up or a held edition. A provider without plus
addressing gets the same words in the subject of a mail to the plain address
(`unsubscribe TOKEN`, `subscribe LIST`), which replies and Gmail's unsubscribe button keep.
A message is routed by the address it was delivered to, never by its From: anyone can
write a From, only our own mail carries a token. Nothing here touches a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from ..config import Mailbox
from ..send.mailto import APPROVE, CONFIRM, SUBSCRIBE, UNSUBSCRIBE, mailto, plus_address, reply_to, subject_for

KINDS = (SUBSCRIBE, UNSUBSCRIBE, CONFIRM, APPROVE)
DELIVERED = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Delivered-To")
ADDRESSED = ("To", "Cc")
MAX_ADDRESSES = 50              # addresses of one header looked at
TOKEN = r"[0-9a-z]{1,7}-[a-z2-7]{12}"
LIST = r"[a-z0-9][a-z0-9_-]{0,99}"
SUBJECT = re.compile(rf"(?:^|[\s:\[(])(unsubscribe|confirm|approve)\s+({TOKEN})\b|"
                     rf"^\s*(?:\w{{1,3}}\s*:\s*)*(subscribe)\s+({LIST})\s*$", re.IGNORECASE)
MAX_SUBJECT = 500


@dataclass(frozen=True)
class Route:
    kind: str           # subscribe, unsubscribe, confirm or approve
    value: str          # the list (subscribe) or the token (the others), lower-case
    via: str            # "address" (a plus address) or "subject" (the plain address, words in the subject)


def route(message: EmailMessage, mailbox: Mailbox) -> Route | None:
    """What a message is for, from the plus address it was delivered to (the receiving
    server's Delivered-To first, then To and Cc), else from the words of its subject; None:
    a bounce, a complaint, or mail for the editor."""
    if not mailbox.address:
        return None
    for header in (*DELIVERED, *ADDRESSED):
        for address in _addresses(message, header):
            found = _by_address(address, mailbox.address)
            if found is not None:
                return found
    return _by_subject(_header(message, "Subject")[:MAX_SUBJECT])


def _addresses(message: EmailMessage, header: str) -> list[str]:
    """The addresses of a header as written (raw: the email package's parser is never asked
    to take a stranger's address header apart, and an encoded word cannot hide one)."""
    wanted = header.lower()
    values = [str(value) for name, value in message.raw_items() if name.lower() == wanted][:MAX_ADDRESSES]
    return [address for _, address in getaddresses(values)[:MAX_ADDRESSES] if "@" in address]


def _by_address(address: str, own: str) -> Route | None:
    local, _, domain = address.lower().rpartition("@")
    base, _, own_domain = own.rpartition("@")
    head, plus, tag = local.partition("+")
    if not plus or head != base or domain != own_domain:
        return None
    kind, _, value = tag.partition("-")
    if kind not in KINDS or not value:
        return None
    pattern = LIST if kind == SUBSCRIBE else TOKEN
    return Route(kind, value, "address") if re.fullmatch(pattern, value) else None


def _by_subject(subject: str) -> Route | None:
    found = SUBJECT.search(subject)
    if found is None:
        return None
    kind, value = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    return Route(kind.lower(), value.lower(), "subject")


def automatic(message: EmailMessage) -> str:
    """Why a message must never be answered nor acted on as a person's request (RFC 3834:
    no mail loops, ever), or "" for a message a person sent. Values are read as robots
    write them: a comment, a parameter or spaces around the word change nothing."""
    auto = _word(_header(message, "Auto-Submitted"))
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:40]}"
    precedence = _word(_header(message, "Precedence"))
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for header in ROBOTS_HEADERS:
        if _has(message, header):
            return f"{header} present"
    path = re.sub(r"\([^)]*\)|\s", "", _header(message, "Return-Path")).lower()
    if _has(message, "Return-Path") and (path in ("<>", "") or path.strip("<>").partition("@")[0] in DAEMONS):
        return "an empty or daemon's Return-Path (a bounce, or a robot's message)"
    sender = parseaddr(_header(message, "From"))[1].lower()
    if sender.partition("@")[0] in DAEMONS:
        return f"from {sender}"
    subject = _header(message, "Subject")[:MAX_SUBJECT]
    return f"an automatic reply's subject ({subject[:40]})" if AUTO_SUBJECT.search(subject) else ""


ROBOTS_HEADERS = ("List-Id", "List-Post", "X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Loop")
DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "noreply", "no-reply")
AUTO_SUBJECT = re.compile(r"^\s*\[?\s*(auto[- ]?repl(y|ied)|automatic reply|out of (the )?office|abwesend|"
                          r"abwesenheitsnotiz|absence|r[ée]ponse automatique|on vacation|undeliver)", re.IGNORECASE)


def _word(value: str) -> str:
    """The first word of a header's value, lower-case: `bulk` of ` Bulk; x (y)`."""
    found = re.match(r"[\s(]*([^\s;()]*)", value)
    return found.group(1).lower() if found else ""


def sender(message: EmailMessage) -> tuple[str, str]:
    """(name, address) of the From."""
    return parseaddr(_header(message, "From"))


def _has(message: EmailMessage, name: str) -> bool:
    wanted = name.lower()
    return any(key.lower() == wanted for key, _ in message.raw_items())


def _header(message: EmailMessage, name: str) -> str:
    """A header as text (its first), whatever the email package makes of it: never an exception."""
    try:
        value = message.get(name)
        return str(value) if value is not None else ""
    except Exception:  # noqa: BLE001 - a stranger's header the email package cannot take apart
        wanted = name.lower()
        return next((str(raw) for key, raw in message.raw_items() if key.lower() == wanted), "")


__all__ = ["APPROVE", "CONFIRM", "KINDS", "SUBSCRIBE", "UNSUBSCRIBE", "Route", "automatic", "mailto", "plus_address",
           "reply_to", "route", "sender", "subject_for"]
