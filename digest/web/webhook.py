"""SendGrid's Event Webhook: signature checked on the raw body, stale timestamps refused,
each event applied once (by sg_event_id)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from flask import Blueprint, abort, request
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from .. import crash
from ..db.events import Effect
from ..models import EVERY_LIST, Reason, email_key
from . import env, state

log = logging.getLogger(__name__)
pages = Blueprint("webhook", __name__)

SUPPRESS = {"bounce": Reason.BOUNCED, "spamreport": Reason.COMPLAINED, "unsubscribe": Reason.UNSUBSCRIBED,
            "group_unsubscribe": Reason.UNSUBSCRIBED}
# SendGrid's reasons for a `dropped` event (it did not even try), and what they mean here.
DROPPED = (("unsubscribed address", Reason.UNSUBSCRIBED), ("spam reporting address", Reason.COMPLAINED),
           ("bounced address", Reason.BOUNCED), ("invalid address", Reason.BOUNCED))
MAX_EDITION_ID = 2**31 - 1


@pages.post("/webhooks/sendgrid")
def sendgrid_events() -> tuple[str, int]:
    settings = state()["settings"]
    key = env(settings.web.webhook_public_key_env)
    if not key:
        abort(503, f"Webhook not configured: set {settings.web.webhook_public_key_env}.")
    raw = request.get_data(cache=False, as_text=False)
    _verify(key, raw, settings.web.webhook_max_age_seconds)
    try:
        events = json.loads(raw)
        if not isinstance(events, list):
            raise ValueError("not a list")
    except ValueError:
        abort(400, "The body must be a JSON list of events.")
    applied = sum(_apply(event) for event in events if isinstance(event, dict))
    return f"{applied} applied", 200


def _verify(key: str, raw: bytes, max_age: int) -> None:
    signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
    stamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    if not signature:
        abort(403, "Missing signature.")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        abort(403, "Bad timestamp.")
    if abs(time.time() - int(stamp)) > max_age:
        abort(403, "Stale timestamp.")
    try:
        valid = EventWebhook(key).verify_signature(raw.decode("utf-8"), signature, stamp)
    except (ValueError, UnicodeDecodeError):
        valid = False
    if not valid:
        abort(403, "Bad signature.")


def _apply(event: dict) -> bool:
    ident, kind, address = str(event.get("sg_event_id", "")), str(event.get("event", "")), str(event.get("email", ""))
    if not ident or "@" not in address:
        return False
    applied = state()["db"].events.apply(ident, kind, address, effect(event), datetime.now(UTC))
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
