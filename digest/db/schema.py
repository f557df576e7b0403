"""Schema versions with Alembic: where a database stands, and bringing it to the head.

digest upgrades a database on first use (`Database.open`); `digest db status` and
`digest db upgrade` do it by hand. A database whose revision this code does not know
was made by a newer digest and is refused. Two processes opening an old database at
once upgrade it once: PostgreSQL takes an advisory lock, SQLite a lock on a file
beside the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from ..errors import StoreError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK = 7_305_118_214          # any fixed number: "digest schema upgrade"


@dataclass(frozen=True)
class SchemaState:
    current: str | None          # None: no alembic_version (empty, or made before migrations)
    head: str
    legacy: bool                 # digest's tables exist but no version is recorded

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.up_to_date:
            return f"revision {self.current} (the newest this digest knows): up to date"
        if self.current is None:
            what = "made before schema versions" if self.legacy else "empty"
            return f"{what}: needs upgrade to {self.head}"
        return f"revision {self.current}: needs upgrade to {self.head}"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    found = scripts().get_current_head()
    assert found is not None, "no Alembic revisions are bundled"
    return found


def state(connection: sa.Connection) -> SchemaState:
    """Where the database stands; refuses one made by a newer digest."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None:
        _check_known(current)
    legacy = current is None and sa.inspect(connection).has_table("sources")
    return SchemaState(current, head(), legacy)


def _check_known(revision: str) -> None:
    try:
        known = scripts().get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise StoreError(f"the database was made by a newer digest (revision {revision}); upgrade digest")


def upgrade(engine: sa.Engine) -> tuple[SchemaState, SchemaState]:
    """Bring the database to the head revision; (state before, state after)."""
    with _exclusive(engine), engine.begin() as connection:
        before = state(connection)
        if not before.up_to_date:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        after = state(connection)
    if not before.up_to_date:
        _log_upgrade(before, after)
    return before, after


def _log_upgrade(before: SchemaState, after: SchemaState) -> None:
    if before.current is None and not before.legacy:
        log.info("created the database schema (revision %s)", after.current)
    else:
        log.warning("upgraded the database from %s to revision %s",
                    before.current or "the schema before versions", after.current)


@contextmanager
def _exclusive(engine: sa.Engine) -> Iterator[None]:
    """One upgrade at a time across processes."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as guard:
            guard.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK})
            try:
                yield
            finally:
                guard.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK})
                guard.commit()
        return
    with _file_lock(engine.url.database):
        yield


@contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":
        yield
        return
    import fcntl
    with open(f"{database}.upgrade-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
