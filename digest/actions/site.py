"""The web site's own business: the editor's login sessions, provider events arriving
at the webhook, and the database's schema (status and upgrade)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from .. import backends
from ..config import Settings
from ..db import Database, NoDatabase, safe_url
from ..errors import NotFound
from ..signals import webhooks


def start_session(settings: Settings, db: Database, token: str, now: datetime) -> float:
    """An editor logged in: their session lasts [web].session_hours; returns those hours."""
    hours = settings.web.session_hours
    db.sessions.start(token, now, now + timedelta(hours=hours))
    return hours


def session_live(db: Database, token: str, now: datetime) -> bool:
    """The token is of a session not logged out and not expired."""
    return bool(db.sessions.is_live(token, now))


def end_session(db: Database, token: str, now: datetime) -> None:
    db.sessions.end(token, now)


def provider_events(settings: Settings, db: Database, backend: str, raw: bytes, headers: Mapping[str, str],
                    now: datetime) -> int:
    """A mail backend's events, at the route it declares: verified and applied once each;
    the number applied. NotFound for a backend without one; NotConfigured, Forged or
    BadEvents (each with its HTTP status) when the request cannot be taken."""
    found = backends.find(backend)
    if found is None or found.events is None:
        raise NotFound(f"No events are read for {backend[:40]!r}.")
    return webhooks.receive(found.events, settings.web, db, raw, headers, now)


def schema_status(settings: Settings) -> str:
    """Where the database's schema stands, in one line; nothing is created or changed."""
    url = settings.database_url()
    try:
        with Database.open(url, upgrade=False, read_only=True) as db:
            state = db.schema_state().describe()
    except NoDatabase as missing:
        state = str(missing)
    return f"{safe_url(url)}: {state}"


def upgrade(settings: Settings) -> str:
    """Upgrade the database to this digest's schema; one line saying what was done."""
    with Database.open(settings.database_url(), upgrade=False) as db:
        before, after = db.upgrade()
    if before.up_to_date:
        return f"Already up to date (revision {after.current})"
    if before.current is None and not before.legacy:
        return f"Created the schema (revision {after.current})"
    return f"Upgraded from {before.current or 'the schema before versions'} to revision {after.current}"
