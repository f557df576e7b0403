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
from alembic.script import ScriptDirectory

from ..errors import StoreError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK = 7_305_118_214          # any fixed number: "digest schema upgrade"
VERSION_TABLE = "alembic_version"


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
    """Where the database stands; refuses one made by a newer digest, or whose record
    of its revision is damaged."""
    current = _recorded(connection)
    if current is not None and current not in known_revisions():
        raise StoreError(f"the database was made by a newer digest (revision {current}); upgrade digest")
    legacy = current is None and sa.inspect(connection).has_table("sources")
    return SchemaState(current, head(), legacy)


def _recorded(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = [r[0] for r in connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    if len(rows) > 1 or (rows and not rows[0]):
        raise StoreError(f"the database's {VERSION_TABLE} table is damaged (it holds {rows!r}); it must hold one "
                         "revision: restore a backup, or fix it by hand after `digest db status` on a copy")
    return rows[0] if rows else None


@cache
def known_revisions() -> frozenset[str]:
    """Every revision id this code ships (exact ids: no prefixes or symbolic names)."""
    return frozenset(script.revision for script in scripts().walk_revisions())


def upgrade(engine: sa.Engine, target: str = "head") -> tuple[SchemaState, SchemaState]:
    """Bring the database to the head revision (or to `target`, for tests of a revision);
    (state before, state after)."""
    with _exclusive(engine), engine.begin() as connection:
        before = state(connection)
        if not before.up_to_date:
            _one_transaction(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, target)
        after = state(connection)
    if not before.up_to_date:
        _log_upgrade(before, after)
    return before, after


def _one_transaction(connection: sa.Connection) -> None:
    """SQLite's driver runs each CREATE, DROP or ALTER on its own, committed at once,
    unless a transaction is open: open one, so that an upgrade cut off halfway (a
    crash, Ctrl-C, a failed statement) leaves the database whole at the revision before,
    not half changed under its name (the next upgrade would fail on what is already
    done). PostgreSQL's DDL is transactional already."""
    driver = connection.connection.driver_connection
    if connection.dialect.name == "sqlite" and driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN")


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
    try:
        handle = open(f"{database}.upgrade-lock", "a")  # noqa: SIM115 - closed below
    except OSError as error:
        raise StoreError(f"cannot create {database}.upgrade-lock ({error.strerror}); the folder of the "
                         "database must be writable by digest") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
