"""digest doctor's findings, kept so that the editor's pages show the last run."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .guard import guarded
from .tables import checks

KEEP = 200        # runs kept; older ones go as new ones come


@guarded
class CheckStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, results: list[dict[str, Any]], ran_by: str, now: datetime) -> None:
        failed = sum(1 for result in results if not result.get("ok"))
        with self.engine.begin() as db:
            db.execute(checks.insert().values(ran_at=now, ran_by=ran_by, failed=failed, results=json.dumps(results)))
            newest = db.execute(sa.select(sa.func.max(checks.c.id))).scalar_one()
            db.execute(checks.delete().where(checks.c.id <= newest - KEEP))

    def latest(self) -> tuple[datetime, str, list[dict[str, Any]]] | None:
        """(when, by what, the results) of the last run, or None before the first."""
        query = sa.select(checks.c.ran_at, checks.c.ran_by, checks.c.results).order_by(checks.c.id.desc()).limit(1)
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return (row.ran_at, row.ran_by, json.loads(row.results)) if row else None
