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

from ..models import EVERY_LIST, Reason, email_key
from . import env, state

log = logging.getLogger(__name__)
pages = Blueprint("webhook", __name__)

SUPPRESS = {"bounce": Reason.BOUNCED, "spamreport": Reason.COMPLAINED, "unsubscribe": Reason.UNSUBSCRIBED,
            "group_unsubscribe": Reason.UNSUBSCRIBED}
DROPPED_REASONS = ("bounced", "invalid", "unsubscribed", "spam")


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
    if not signature or not stamp.isdigit():
        abort(403, "Missing signature.")
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
    db, now = state()["db"], datetime.now(UTC)
    if not db.events.first_time(ident, kind, address, now):
        return False                                    # seen before: harmless
    reason = SUPPRESS.get(kind)
    if kind == "dropped" and any(r in str(event.get("reason", "")).lower() for r in DROPPED_REASONS):
        reason = Reason.BOUNCED
    if reason:
        everywhere = reason in (Reason.BOUNCED, Reason.COMPLAINED)
        list_name = EVERY_LIST if everywhere else str(event.get("list") or EVERY_LIST)
        db.lists.suppress(email_key(address), list_name, reason, f"sendgrid {kind}", now)
    edition = str(event.get("edition", ""))
    if edition.isdigit():
        db.events.on_delivery(int(edition), email_key(address), kind[:20], now)
    return True
