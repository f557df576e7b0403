"""INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike: a row that two
processes add at once is added once, and neither of them fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(db: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]] | dict[str, Any]) -> int:
    """Insert the rows that do not clash with a unique key. For one row: 1 if it was
    inserted, 0 if it clashed (for many rows drivers may not count reliably)."""
    if not rows:
        return 0
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing()
    if isinstance(rows, dict):          # RETURNING: rowcount is not reliable for this on every driver
        return len(db.execute(statement.returning(*table.primary_key.columns), rows).all())
    return db.execute(statement, list(rows)).rowcount or 0


def insert_counted(db: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> int:
    """insert_ignore for many rows, counting exactly the rows inserted (RETURNING, batched)."""
    if not rows:
        return 0
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return len(db.execute(statement, list(rows)).all())
