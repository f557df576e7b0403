"""Going live: the checks a real send depends on (`digest doctor`, the scheduler at its
start, the editor's home page), and the id `/health` answers with."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Settings
from ..db import Database
from ..errors import DigestError
from ..live import doctor as checks
from ..live.doctor import Check
from ..send.signing import instance_id

__all__ = ["Check"]


def doctor(config_path: Path, ran_by: str = "doctor", environ: Mapping[str, str] | None = None,
           now: datetime | None = None) -> list[Check]:
    """Every check, in order; kept in the database (when it is reachable) for the editor."""
    moment = now or datetime.now(UTC)
    settings, found = checks.examine(config_path, environ, moment)
    if settings is not None:
        keep_checks(settings, found, ran_by, moment)
    return found


def doctor_of(settings: Settings, ran_by: str, environ: Mapping[str, str] | None = None) -> list[Check]:
    """The checks of settings already loaded (the scheduler's, at its start), kept as above;
    the mailbox is opened but mails itself nothing (each start of the scheduler would cost a
    message of the provider's daily limit)."""
    moment = datetime.now(UTC)
    found = checks.run(settings, environ, moment, probe=False)
    keep_checks(settings, found, ran_by, moment)
    return found


def keep_checks(settings: Settings, found: list[Check], ran_by: str, now: datetime) -> None:
    """Record a run of the checks; a database that is not ready is one of the findings, not a crash."""
    if not next((c.ok for c in found if c.check == "database"), False):
        return
    try:
        with Database.open(settings.database_url(), upgrade=False) as db:
            db.checks.record([c.as_json() for c in found], ran_by, now)
    except DigestError:
        return


def last_checks(db: Database) -> tuple[datetime, str, list[dict[str, Any]]] | None:
    """(when, by what, the results) of the latest run of the checks."""
    return db.checks.latest()


def instance(settings: Settings, key: str) -> str:
    """What `/health` answers: only an instance with this secret and database knows it."""
    return instance_id(key, settings.database_url())
