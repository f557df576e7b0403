"""One Database per command, request or job: the engine and every store behind it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError
from . import schema
from .content import Content
from .events import EventStore
from .guard import describe, first_line
from .ledger import Ledger
from .lists import ListStore
from .locks import LockStore
from .picks import PickStore
from .runs import RunStore

log = logging.getLogger(__name__)


class Database:
    """The only door to the data: `db.content`, `db.picks`, `db.lists`, `db.ledger`,
    `db.locks`, `db.runs`, `db.events`. Open it with `Database.open(url)`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.content = Content(engine)
        self.picks = PickStore(engine)
        self.lists = ListStore(engine)
        self.ledger = Ledger(engine)
        self.locks = LockStore(engine)
        self.runs = RunStore(engine)
        self.events = EventStore(engine)

    @classmethod
    def open(cls, url: str, upgrade: bool = True) -> Database:
        """Open the database at url; with upgrade, bring its schema to this code's head
        first (creating it when empty). A database newer than the code is refused."""
        engine = _engine(url)
        database = cls(engine)
        if upgrade:
            database.upgrade()
        return database

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def schema_state(self) -> schema.SchemaState:
        try:
            with self.engine.connect() as connection:
                return schema.state(connection)
        except SQLAlchemyError as error:
            raise StoreError(describe(error)) from None

    def upgrade(self) -> tuple[schema.SchemaState, schema.SchemaState]:
        """(before, after); a no-op when up to date."""
        current = self.schema_state()
        if current.up_to_date:
            return current, current
        try:
            return schema.upgrade(self.engine)
        except SQLAlchemyError as error:
            raise StoreError(f"cannot upgrade the database: {describe(error)}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _engine(url: str) -> sa.Engine:
    try:
        _make_sqlite_folder(url)
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect():
            pass
    except (SQLAlchemyError, ImportError, OSError) as error:
        raise StoreError(f"cannot open database {safe_url(url)} ({first_line(error)}); "
                         "check [database].url and that the server is running") from None
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL: readers (web, preview) never block the writer; NORMAL sync is crash-safe in WAL."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _make_sqlite_folder(url: str) -> None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as is, minus nothing secret
        return url.split("@")[-1]
