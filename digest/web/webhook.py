"""Provider events (bounces, complaints) at POST /webhooks/<backend>, for a mail backend
that declares an event route (SendGrid's Event Webhook at /webhooks/sendgrid): the raw
body and the headers (names in lower case) handed to the action that verifies and applies them; a forged,
stale or unconfigured request gets its status from the error it raised."""

from __future__ import annotations

from flask import Blueprint, g, request

from .. import actions
from . import services

pages = Blueprint("webhook", __name__)


@pages.post("/webhooks/<backend>")
def provider_events(backend: str) -> tuple[str, int]:
    raw = request.get_data(cache=False, as_text=False)
    headers = {name.lower(): value for name, value in request.headers.items()}
    applied = actions.provider_events(services().settings, services().db, backend, raw, headers, g.now)
    return f"{applied} applied", 200
