"""The scheduler's record: one row per run of a list's job, and APScheduler's stored jobs."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from .guard import guarded
from .tables import APSCHEDULER_JOBS, runs


@guarded
class RunStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, list_name: str, scheduled_for: datetime | None, outcome: str, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(runs.insert().values(list_name=list_name, scheduled_for=scheduled_for,
                                            started_at=now, finished_at=now, outcome=outcome))

    def last(self) -> dict[str, dict[str, Any]]:
        """Each list's latest run."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(runs).order_by(runs.c.id)).all()
        return {r.list_name: dict(r._mapping) for r in rows}

    def stored_jobs(self) -> dict[str, tuple[str, datetime | None]]:
        """{job id: (its trigger as text, its next run time)} from APScheduler's job table."""
        table = self._jobs_table()
        if table is None:
            return {}
        with self.engine.connect() as db:
            rows = db.execute(sa.select(table.c.id, table.c.next_run_time, table.c.job_state)).all()
        found = {}
        for row in rows:
            state = pickle.loads(row.job_state)  # noqa: S301 - our own job store, written by APScheduler
            when = datetime.fromtimestamp(row.next_run_time, UTC) if row.next_run_time is not None else None
            found[row.id] = (str(state.get("trigger")), when)
        return found

    def delete_jobs(self, ids: list[str]) -> None:
        table = self._jobs_table()
        if table is None or not ids:
            return
        with self.engine.begin() as db:
            db.execute(table.delete().where(table.c.id.in_(ids)))

    def _jobs_table(self) -> sa.Table | None:
        if not sa.inspect(self.engine).has_table(APSCHEDULER_JOBS):
            return None
        return sa.Table(APSCHEDULER_JOBS, sa.MetaData(), autoload_with=self.engine)
