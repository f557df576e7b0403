"""Alembic's environment: runs on the connection digest hands it (see digest/db/schema.py).

`alembic -x url=sqlite:///digest.db upgrade head` works too, for developers writing
revisions (`alembic revision --autogenerate -m "..."` with script_location set here).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from digest.db.tables import APSCHEDULER_JOBS, metadata


def _include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """APScheduler owns its job table: autogenerate must not drop it."""
    return not (type_ == "table" and name == APSCHEDULER_JOBS)


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      compare_type=True, include_object=_include)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///digest.db upgrade head")
    engine = sa.create_engine(url)
    with engine.connect() as opened:
        _run(opened)
    engine.dispose()
