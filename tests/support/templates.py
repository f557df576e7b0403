"""Databases made once per test process and copied, or emptied, for each test.

Migrating a database runs every Alembic revision (about 0.75 s on PostgreSQL, 0.15 s on
SQLite) and storing the sample blog reads and threads every feed. Instead:
- SQLite: two template files, `migrated` (the schema at head, no rows) and `sampled` (the
  On Probation sample stored, as `World` needs it), copied for each test (milliseconds).
- PostgreSQL: one database per test process, migrated once and emptied before each test
  (`REUSE.reset`: other sessions ended, every row deleted, sequences restarted: about
  30 ms, where `CREATE DATABASE ... TEMPLATE` takes 350 ms here); its shape (tables,
  columns, indexes, revision) is checked each time, and a database a test changed is
  rebuilt. The sample is written into it from rows read once (`REUSE.fill`).
The migration and upgrade tests still run every revision, on an empty database each
(`empty_db_url`), and a test that needs a database never written to has one of its own
(`fresh_pg_url`: a copy of the migrated template).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from digest.db import Database
from digest.db.tables import metadata

Builder = Callable[[str], None]            # fills the database at a URL
PG_URL = os.environ.get("DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Templates:
    """The templates of one test process, made on first use and removed by `close`."""

    def __init__(self) -> None:
        self.owner = os.getpid()                         # a forked child must not remove its parent's
        self._folder: Path | None = None
        self.made: dict[tuple[str, str], str] = {}      # (kind, server or "sqlite") -> file or database name
        self.copies: set[tuple[str, str]] = set()        # (server, database) made from a template

    @property
    def folder(self) -> Path:
        """Made on first use (a process that imports this and copies nothing leaves nothing)."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="digest-templates-"))
        return self._folder

    def sqlite(self, kind: str, build: Builder) -> Path:
        key = (kind, "sqlite")
        if key not in self.made:
            path = self.folder / f"{kind}.db"
            build(f"sqlite:///{path}")
            assert not path.with_name(path.name + "-wal").exists(), "a template was left open"
            self.made[key] = str(path)
        return Path(self.made[key])

    def postgres(self, kind: str, server: str, build: Builder) -> str:
        key = (kind, server)
        if key not in self.made:
            name = f"digest_tpl_{kind}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            admin(server, f'CREATE DATABASE "{name}"', *unsynced(name))
            build(with_database(server, name))
            self.made[key] = name
        return self.made[key]

    def copy_sqlite(self, kind: str, build: Builder, to: Path) -> None:
        to.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            to.with_name(to.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(self.sqlite(kind, build), to)

    def copy_postgres(self, kind: str, server: str, build: Builder) -> str:
        """A new database copied from the template; its URL."""
        template = self.postgres(kind, server, build)
        name = f"digest_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"', *unsynced(name))
        self.copies.add((server, name))
        return with_database(server, name)

    def drop(self, server: str, name: str) -> None:
        self.copies.discard((server, name))
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if os.getpid() != self.owner:
            return
        for (_kind, server), name in self.made.items():
            if server != "sqlite":
                admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for server, name in list(self.copies):
            self.drop(server, name)
        self.made.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


class Reuse:
    """The PostgreSQL databases reused test after test, emptied in between."""

    def __init__(self) -> None:
        self.shapes: dict[str, str] = {}                 # URL -> its shape at the head revision
        self.sample: dict[str, list[dict[str, Any]]] = {}  # table -> the sample's rows

    def reset(self, url: str) -> None:
        """Make the database at url as a migrated one is: no rows, sequences at 1."""
        with _engine(url).begin() as db:
            db.execute(sa.text("SET LOCAL lock_timeout = '20s'"))       # a session that will not let go: an error
            _end_other_sessions(db)
            db.execute(sa.text("DROP TABLE IF EXISTS apscheduler_jobs"))     # APScheduler's own table
            if self.shapes.get(url) == _shape(db):
                _empty(db)
                return
            db.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            name = db.execute(sa.text("SELECT current_database()")).scalar_one()
            db.execute(sa.text(f'ALTER DATABASE "{name}" RESET ALL'))
            for statement in unsynced(name):
                db.execute(sa.text(statement))
        migrate(url)
        with _engine(url).begin() as db:
            self.shapes[url] = _shape(db)

    def fill(self, url: str, build: Builder) -> None:
        """Reset it, then store the sample: built once (`build`), then written from its rows."""
        self.reset(url)
        if not self.sample:
            build(url)
            with _engine(url).begin() as db:
                self.sample = {t.name: [dict(r) for r in db.execute(t.select()).mappings()] for t in _tables()}
            return
        with _engine(url).begin() as db:
            for table in _tables():
                if self.sample[table.name]:
                    db.execute(table.insert(), self.sample[table.name])
                    _advance_sequence(db, table)


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.name != "alembic_version"]


def _end_other_sessions(db: sa.Connection) -> None:
    """A previous test's processes and pools may still hold the database: end them."""
    db.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()"))


SHAPE = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT 'column ' || table_name || '.' || column_name || ':' || data_type || ':' ||
         coalesce(character_maximum_length::text, '') || ':' || is_nullable || ':' || coalesce(column_default, '') AS x
    FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typtype <> 'c'
    AND typname NOT LIKE '\\_%'
  UNION ALL SELECT 'options ' || relname || ' ' || array_to_string(reloptions, ',') FROM pg_class
    WHERE relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL
  UNION ALL SELECT 'setting ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL SELECT 'revision ' || version_num FROM alembic_version
) AS parts
"""


def _shape(db: sa.Connection) -> str:
    """Everything a test could change of the schema, as one hash: tables and columns,
    indexes, constraints, triggers, functions and types, storage options, the database's
    own settings, the revision recorded."""
    return db.execute(sa.text(SHAPE)).scalar_one() if sa.inspect(db).has_table("alembic_version") else ""


def _empty(db: sa.Connection) -> None:
    tables = [t.name for t in reversed(_tables())]
    sequences = db.execute(sa.text("SELECT sequence_name FROM information_schema.sequences "
                                   "WHERE sequence_schema = 'public'")).scalars().all()
    db.execute(sa.text("; ".join([f'DELETE FROM "{name}"' for name in tables] +
                                 [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences])))


def _advance_sequence(db: sa.Connection, table: sa.Table) -> None:
    if "id" in table.c and table.c.id.autoincrement in (True, "auto") and table.c.id.primary_key:
        db.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                           f'(SELECT max(id) FROM "{table.name}"))'))


def sweep(server: str) -> list[str]:
    """Drop the test databases of test processes that are gone (a run interrupted before
    it could drop its own): their names carry the process id."""
    engine = _engine(server)
    with engine.connect() as db:
        names = db.execute(sa.text("SELECT datname FROM pg_database WHERE datname ~ '^digest_t(est|pl)_'")).scalars()
        gone = [name for name in names if not _alive(_pid_in(name))]
    for name in gone:
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return gone


def _pid_in(name: str) -> int:
    found = re.search(r"_(\d+)_[0-9a-f]+$", name)
    return int(found.group(1)) if found else 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True                   # not one of ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unsynced(name: str) -> list[str]:
    """A test database's commits do not wait for the disk (`synchronous_commit = off`:
    only a crash of the server itself could lose one, and no test crashes the server; the
    processes tests kill are its clients). Set on that database alone, never the server."""
    return [f'ALTER DATABASE "{name}" SET synchronous_commit TO off']


def with_database(url: str, name: str) -> str:
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


def admin(server: str, *statements: str) -> None:
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as db:
            for statement in statements:
                db.execute(sa.text(statement))
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    Database.open(url).close()


TEMPLATES = Templates()
atexit.register(TEMPLATES.close)          # the benches use it too; pytest closes it at the session's end
REUSE = Reuse()
