"""`digest bounces`: read the bounce mailbox once. Each new message is classified
(signals.bounces), tied to its recipient, applied once (db.bounces: a hard bounce or a
complaint suppresses at once, soft bounces after [mailbox].soft_limit editions in a
row, an auto-reply changes nothing) and only then marked read in the mailbox, so a crash
anywhere loses nothing and doubles nothing. What cannot be classified stays for the editor.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from .. import crash
from ..config import Settings
from ..db import Database
from ..db.bounces import Applied, Recipient
from ..models import email_key
from ..send.signing import read_return_path_token, read_unsubscribe_token
from ..signals.bounces import UNKNOWN, Bounce, classify
from ..signals.mailbox import Mailbox, MailboxError

log = logging.getLogger(__name__)

SHOWN = {"hard": "hard bounce", "soft": "soft bounce", "complaint": "complaint", "auto-reply": "auto-reply",
         "notice": "notice", "unknown": "unknown", "unverified": "unverified", "subscribe": "subscribe",
         "unsubscribe": "unsubscribe", "confirm": "confirm", "approve": "approve"}


@dataclass(frozen=True)
class Line:
    kind: str
    status: str
    address: str
    edition_id: int | None
    list_name: str | None
    outcome: str


@dataclass
class MailboxReport:
    where: str
    dry_run: bool = False
    lines: list[Line] = field(default_factory=list)
    already: int = 0                     # read before (a crash between recording and marking)

    @property
    def counts(self) -> Counter[str]:
        return Counter(line.kind for line in self.lines)

    def summary(self) -> str:
        counts = ", ".join(f"{SHOWN[kind]} {n}" for kind, n in sorted(self.counts.items())) or "nothing new"
        would = " (dry run: nothing changed)" if self.dry_run else ""
        return f"mailbox {self.where}: {len(self.lines)} new message(s): {counts}{would}"


BounceReport = MailboxReport            # its name when the mailbox was read for bounces only


def read_bounces(settings: Settings, db: Database, now: datetime, dry_run: bool = False,
                 progress: Callable[[int], None] = lambda n: None) -> MailboxReport:
    """The mailbox read once: `actions.inbox.read_mailbox` (its name when it read bounces only)."""
    from .inbox import read_mailbox
    return read_mailbox(settings, db, now, dry_run, progress)


def apply_bounce(settings: Settings, db: Database, box: Mailbox, report: MailboxReport, key: str, handle: str,
                 raw: bytes, now: datetime) -> None:
    bounce = classify(raw, settings.mailbox.return_path, settings.web.base_url)
    recipient = None if bounce.kind == UNKNOWN else find_recipient(db, key, bounce)
    if report.dry_run:
        report.lines.append(_line(bounce, recipient, "dry run: would " + _effect(bounce, recipient)))
        return
    applied = None if db.bounces.seen(bounce.message_id) else db.bounces.apply(
        bounce.message_id, bounce.kind, recipient, bounce.status, bounce.detail, settings.mailbox.soft_limit, now)
    if applied is None or not applied.new:                # read before (or by another process just now)
        report.already += 1
    else:
        crash.point("bounce.recorded")
        report.lines.append(_line(bounce, recipient, _outcome(settings, bounce, recipient, applied)))
    box.done(handle, kept=bounce.kind == UNKNOWN or (applied is not None and applied.kind in KEPT))
    crash.point("bounce.marked")


KEPT = ("unknown", "unverified")      # left flagged and unread in the mailbox, for the editor


def _outcome(settings: Settings, bounce: Bounce, recipient: Recipient | None, applied: Applied) -> str:
    unverified = recipient is not None and not recipient.verified
    if applied.suppressed:
        return "suppressed"
    if applied.kind == "unverified":
        return "not verified (no token of ours, only the address it names): kept for the editor"
    if applied.kind == "soft" and recipient is not None:
        said = " (a hard bounce not verified: counted as soft)" if unverified and bounce.kind == "hard" else ""
        return f"{applied.soft_in_a_row} of {settings.mailbox.soft_limit} in a row{said}"
    return _effect(bounce, recipient)


def find_recipient(db: Database, key: str, bounce: Bounce) -> Recipient | None:
    """The recipient a bounce is about, most trusted evidence first: what only our own mail
    carries (the signed VERP token, the original's Message-ID, its signed unsubscribe
    token), then the address the report names (`verified=False`: anyone can write one)."""
    delivery = read_return_path_token(key, bounce.verp) if bounce.verp else None
    if delivery is not None and (found := db.bounces.by_delivery(delivery)):
        return found
    if bounce.original_id and (found := db.bounces.by_message_id(bounce.original_id)):
        return found
    named = read_unsubscribe_token(key, bounce.unsubscribe) if bounce.unsubscribe else None
    if named is not None:
        return db.bounces.by_address(named[1], named[0]) or Recipient(named[1], list_name=named[0])
    if "@" in bounce.address:
        found = db.bounces.by_address(email_key(bounce.address))
        return replace(found, verified=False) if found else None
    return None


def _effect(bounce: Bounce, recipient: Recipient | None) -> str:
    if bounce.kind == UNKNOWN:
        return "keep it for the editor (flagged, unread, in the mailbox)"
    if recipient is None and bounce.kind in ("hard", "soft", "complaint"):
        return "change nothing: no subscriber of ours matches it"
    return {"hard": "suppress the address", "complaint": "suppress the address",
            "soft": "count it; suppress after [mailbox].soft_limit editions in a row"}.get(bounce.kind,
                                                                                      "change nothing")


def _line(bounce: Bounce, recipient: Recipient | None, outcome: str) -> Line:
    address = recipient.email_key if recipient else bounce.address
    return Line(bounce.kind, bounce.status, address, recipient.edition_id if recipient else None,
                recipient.list_name if recipient else None, outcome)


__all__ = ["BounceReport", "Line", "MailboxError", "MailboxReport", "apply_bounce", "find_recipient", "read_bounces"]
