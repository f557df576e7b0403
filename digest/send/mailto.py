"""Mail mode's addresses as digest writes them: plus addresses on `[mailbox] address`
(`LOCAL+unsubscribe-TOKEN@DOMAIN`) and the mailto: links that open a mail to one. Written
once, here in the send phase (every reader mail's List-Unsubscribe carries one); the
mailbox reads them back with signals/addresses.py's `route`."""

from __future__ import annotations

from urllib.parse import quote

from ..config import Mailbox

SUBSCRIBE, UNSUBSCRIBE, CONFIRM, APPROVE = "subscribe", "unsubscribe", "confirm", "approve"


def plus_address(mailbox: Mailbox, kind: str, value: str) -> str:
    """LOCAL+kind-value@DOMAIN on the mailbox's address."""
    local, _, domain = mailbox.address.rpartition("@")
    return f"{local}+{kind}-{value}@{domain}"


def reply_to(mailbox: Mailbox, kind: str, value: str) -> str:
    """Where a reply acting as kind goes: the plus address, or the plain one when the
    provider has no plus addressing (then the subject carries the words: `subject_for`)."""
    return plus_address(mailbox, kind, value) if mailbox.plus_addresses else mailbox.address


def subject_for(kind: str, value: str) -> str:
    """The words a mail to the plain address says what it is for with."""
    return f"{kind} {value}"


def mailto(mailbox: Mailbox, kind: str, value: str) -> str:
    """A mailto: URL that does kind when the mail it opens is sent, as is."""
    if mailbox.plus_addresses:
        return f"mailto:{plus_address(mailbox, kind, value)}?subject={kind}"
    return f"mailto:{mailbox.address}?subject={quote(subject_for(kind, value))}"
