"""`column IN (values)` for many values, cut into the chunks a statement can take (on
PostgreSQL one `= ANY(array)`): as few statements as the database allows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

CHUNK = 500         # well within SQLite's bound on parameters per statement (999 before 3.32)


def in_chunks(db: sa.Connection, column: sa.ColumnElement[Any],
              values: Sequence[Any]) -> Iterator[sa.ColumnElement[bool]]:
    """The conditions that together pick the rows whose column is one of the values: on
    PostgreSQL one `= ANY(array)` (one parameter: nothing to expand or re-plan per size),
    elsewhere one IN per chunk of 500."""
    if not values:
        return
    if db.dialect.name == "postgresql":
        yield column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
        return
    for start in range(0, len(values), CHUNK):
        yield column.in_(values[start:start + CHUNK])
