"""SendGrid's Event Webhook: the raw body and its signature headers handed to the action
that verifies and applies them (`signals.sendgrid`); a forged, stale or unconfigured
request gets its status from the error it raised."""

from __future__ import annotations

from flask import Blueprint, g, request
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from .. import actions
from . import services

pages = Blueprint("webhook", __name__)


@pages.post("/webhooks/sendgrid")
def sendgrid_events() -> tuple[str, int]:
    raw = request.get_data(cache=False, as_text=False)
    applied = actions.provider_events(services().settings, services().db, raw,
                                      request.headers.get(EventWebhookHeader.SIGNATURE, ""),
                                      request.headers.get(EventWebhookHeader.TIMESTAMP, ""), g.now)
    return f"{applied} applied", 200
