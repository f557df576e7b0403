"""SendGrid's Event Webhook (the reader its backend's event route names): the request
checked (signature on the raw body, a fresh timestamp), then each event read for what it
means here (a bounce, a spam report, an unsubscribe) and applied once (by sg_event_id)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from .. import crash
from ..db import Database
from ..db.events import Effect
from ..models import EVERY_LIST, Reason, email_key
from .webhooks import BadEvents, Forged

log = logging.getLogger(__name__)

SUPPRESS = {"bounce": Reason.BOUNCED, "spamreport": Reason.COMPLAINED, "unsubscribe": Reason.UNSUBSCRIBED,
            "group_unsubscribe": Reason.UNSUBSCRIBED}
# SendGrid's reasons for a `dropped` event (it did not even try), and what they mean here.
DROPPED = (("unsubscribed address", Reason.UNSUBSCRIBED), ("spam reporting address", Reason.COMPLAINED),
           ("bounced address", Reason.BOUNCED), ("invalid address", Reason.BOUNCED))
MAX_EDITION_ID = 2**31 - 1


def read(key: str, raw: bytes, headers: Mapping[str, str], max_age: int, now: float) -> list[dict]:
    """The events of a request signed with key (its signature headers, names in lower case)
    within max_age seconds of now; Forged or BadEvents when it cannot be taken."""
    verify(key, raw, headers.get(EventWebhookHeader.SIGNATURE.lower(), ""),
           headers.get(EventWebhookHeader.TIMESTAMP.lower(), ""), max_age, now)
    return events(raw)


def verify(key: str, raw: bytes, signature: str, stamp: str, max_age: int, now: float) -> None:
    """Forged unless raw was signed with key at a time within max_age seconds of now."""
    if not signature:
        raise Forged("Missing signature.")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise Forged("Bad timestamp.")
    if abs(now - int(stamp)) > max_age:
        raise Forged("Stale timestamp.")
    try:
        valid = EventWebhook(key).verify_signature(raw.decode("utf-8"), signature, stamp)
    except (ValueError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise Forged("Bad signature.")


def events(raw: bytes) -> list[dict]:
    """The events of a verified body (BadEvents unless it is a JSON list)."""
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadEvents("The body must be a JSON list of events.") from None
    if not isinstance(found, list):
        raise BadEvents("The body must be a JSON list of events.")
    return [event for event in found if isinstance(event, dict)]


def apply(db: Database, event: dict, now: datetime) -> bool:
    """Apply one event once; False for one already applied or without an id or address."""
    ident, kind, address = str(event.get("sg_event_id", "")), str(event.get("event", "")), str(event.get("email", ""))
    if not ident or "@" not in address:
        return False
    applied = db.events.apply(ident, kind, address, effect(event), now)
    crash.point("webhook.applied")
    return applied


def effect(event: dict) -> Effect:
    """What a SendGrid event means for digest: bounces and spam reports suppress the
    address everywhere, an unsubscribe on its list (or everywhere when no list is named)."""
    kind, key = str(event.get("event", "")), email_key(str(event.get("email", "")))
    reason = SUPPRESS.get(kind)
    if kind == "dropped":
        said = str(event.get("reason", "")).lower()
        reason = next((meaning for words, meaning in DROPPED if words in said), None)
    edition = str(event.get("edition", ""))
    if kind == "bounce" and str(event.get("type", "")).lower() == "blocked":   # a block is temporary
        reason = None
    plain = edition.isascii() and edition.isdigit() and len(edition) < 11
    edition_id = int(edition) if plain and int(edition) <= MAX_EDITION_ID else None
    if reason is None:
        return Effect(key, edition_id=edition_id, event=kind)
    everywhere = reason in (Reason.BOUNCED, Reason.COMPLAINED)
    where = EVERY_LIST if everywhere else str(event.get("list") or EVERY_LIST)[:100]
    return Effect(key, where, reason, f"sendgrid {kind} {event.get('reason', '')}".strip(), edition_id, kind)
