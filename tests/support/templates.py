"""Databases made once per test run and copied for each test.

Migrating a database runs every Alembic revision (about 0.75 s on PostgreSQL, 0.15 s on
SQLite) and storing the sample blog reads and threads every feed; a copy costs a few
milliseconds: a SQLite file copied, or `CREATE DATABASE ... TEMPLATE` on PostgreSQL.
Two templates of each kind: `migrated` (the schema at head, no rows) and `sampled` (the
On Probation sample stored, as `World` needs it). The migration and upgrade tests keep
running every revision on an empty database (the `empty_db_url` fixture).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from digest.db import Database

Builder = Callable[[str], None]            # fills the database at a URL
PG_URL = os.environ.get("DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Templates:
    """The templates of one test process, made on first use and removed by `close`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="digest-templates-"))
        self.made: dict[tuple[str, str], str] = {}      # (kind, server or "sqlite") -> file or database name
        self.copies: set[tuple[str, str]] = set()        # (server, database) made from a template

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
            _admin(server, f'CREATE DATABASE "{name}"')
            build(with_database(server, name))
            self.made[key] = name
        return self.made[key]

    def copy_sqlite(self, kind: str, build: Builder, to: Path) -> None:
        to.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            to.with_name(to.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(self.sqlite(kind, build), to)

    def copy_postgres(self, kind: str, server: str, build: Builder, name: str | None = None) -> str:
        """A new database (or `name`, replaced) copied from the template; its URL."""
        template = self.postgres(kind, server, build)
        name = name or f"digest_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
               f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.copies.add((server, name))
        return with_database(server, name)

    def drop(self, server: str, name: str) -> None:
        self.copies.discard((server, name))
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for (_kind, server), name in self.made.items():
            if server != "sqlite":
                _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for server, name in list(self.copies):
            self.drop(server, name)
        self.made.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(server: str, *statements: str) -> None:
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
