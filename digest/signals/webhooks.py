"""Provider events arriving at POST /webhooks/<backend>: the backend's declared route
(`backends.Events`) names the module that verifies and reads them; each event is then
applied once. The errors a request can meet carry their HTTP status."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Mapping
from datetime import datetime

from ..backends import Events
from ..config import Web
from ..db import Database
from ..errors import DigestError, UsageError


class NotConfigured(DigestError):
    """The webhook's verification key is not set: nothing is read."""

    http_status = 503


class Forged(DigestError):
    """The request is not the provider's: no signature, a stale or bad timestamp, a bad signature."""

    http_status = 403


class BadEvents(UsageError):
    """Signed, but not the events the provider sends."""


def receive(route: Events, web: Web, db: Database, raw: bytes, headers: Mapping[str, str], now: datetime) -> int:
    """Verify the request with the route's key, apply each event once; the number applied."""
    reader = importlib.import_module(route.reader)
    name = route.key_env(web)
    key = os.environ.get(name, "")
    if not key:
        raise NotConfigured(f"Webhook not configured: set {name}.")
    found = reader.read(key, raw, headers, web.webhook_max_age_seconds, time.time())
    return sum(reader.apply(db, event, now) for event in found)
