"""SendGrid's Event Webhook: signature checked on the raw body, stale timestamps refused,
each event applied once (by sg_event_id)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, abort, request
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from ..ledger import Ledger
from ..store import UTCDateTime, metadata
from ..subscribers import Lists, email_key
from . import env, state

log = logging.getLogger(__name__)
pages = Blueprint("webhook", __name__)

provider_events = sa.Table(
    "provider_events", metadata,
    sa.Column("sg_event_id", sa.String(200), primary_key=True),
    sa.Column("event", sa.String(30), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

SUPPRESS = {"bounce": "bounced", "spamreport": "complained", "unsubscribe": "unsubscribed",
            "group_unsubscribe": "unsubscribed"}
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
    store, now = state()["store"], datetime.now(UTC)
    metadata.create_all(store.engine, tables=[provider_events])
    try:
        with store.engine.begin() as db:
            db.execute(provider_events.insert().values(sg_event_id=ident[:200], event=kind[:30], email=address,
                                                       received_at=now))
    except sa.exc.IntegrityError:
        return False                                    # seen before: harmless
    reason = SUPPRESS.get(kind)
    if kind == "dropped" and any(r in str(event.get("reason", "")).lower() for r in DROPPED_REASONS):
        reason = "bounced"
    if reason:
        list_name = "*" if reason in ("bounced", "complained") else str(event.get("list") or "*")
        Lists(store).suppress(email_key(address), list_name, reason, f"sendgrid {kind}", now)
    edition = str(event.get("edition", ""))
    if edition.isdigit():
        Ledger(store).provider_event(int(edition), email_key(address), kind[:20], now)
    return True
