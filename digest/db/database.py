"""One Database per command, request or job: the engine and every store behind it."""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ConfigError, StoreError
from . import schema
from .bounces import BounceStore
from .checks import CheckStore
from .content import Content
from .drafts import DraftStore
from .events import EventStore
from .guard import describe, first_line
from .inbox import InboxStore
from .ledger import Ledger
from .lists import ListStore
from .locks import LockStore
from .mail_signups import MailSignupStore
from .orders import OrderStore
from .picks import PickStore
from .runs import RunStore
from .sessions import SessionStore
from .signups import SignupStore
from .subscribers import SubscriberStore
from .welcomes import WelcomeStore

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 10_000        # how long a SQLite connection waits for another's write lock


class NoDatabase(StoreError):
    """Asked to open a SQLite file read-only that does not exist."""


class Database:
    """The only door to the data: `db.content`, `db.picks`, `db.drafts`, `db.lists`,
    `db.ledger`, `db.locks`, `db.runs`, `db.events`. Open it with `Database.open(url)`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.content = Content(engine)
        self.picks = PickStore(engine)
        self.drafts = DraftStore(engine)
        self.lists = ListStore(engine)
        self.ledger = Ledger(engine)
        self.locks = LockStore(engine)
        self.runs = RunStore(engine)
        self.events = EventStore(engine)
        self.sessions = SessionStore(engine)
        self.welcomes = WelcomeStore(engine)
        self.checks = CheckStore(engine)
        self.orders = OrderStore(engine)
        self.signups = SignupStore(engine)
        self.subscribers = SubscriberStore(engine)
        self.bounces = BounceStore(engine)
        self.inbox = InboxStore(engine)
        self.mail_signups = MailSignupStore(engine)

    @property
    def shares_sends(self) -> bool:
        """Whether several senders may work on one edition at once: PostgreSQL skips rows
        another sender is taking; SQLite has one writer, so one send per list at a time."""
        return self.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str, upgrade: bool = True, read_only: bool = False) -> Database:
        """Open the database at url; with upgrade, bring its schema to this code's head
        first (creating it when empty). A database newer than the code is refused.
        read_only (`digest db status`): nothing is created or changed, a SQLite file is
        opened read-only."""
        engine = _engine(url, create=not read_only)
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
        except RuntimeError as error:          # a revision refused the database (e.g. a foreign table)
            raise StoreError(first_line(error)) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _engine(url: str, create: bool = True) -> sa.Engine:
    parsed = _parse(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and not create:
        parsed = _read_only(parsed)
    try:
        if sqlite and create:
            _make_sqlite_folder(parsed)
        engine = sa.create_engine(parsed)
        if sqlite and create:
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        lowered = first_line(error).lower()
        reason = describe(error) if ("locked" in lowered or "readonly" in lowered) else first_line(error)
        raise StoreError(f"cannot open database {safe_url(url)} ({_scrub(reason, url)}); "
                         f"check [database].url{_at_hint(url)} and that the server is running") from None
    except (ImportError, OSError) as error:
        raise StoreError(f"cannot open database {safe_url(url)} ({first_line(error)}); "
                         "check [database].url") from None
    return engine


def _parse(url: str) -> sa.URL:
    try:
        return sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as error:
        raise ConfigError([f"[database].url: cannot read {safe_url(url)} ({first_line(error)}); use "
                           "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB (percent-encode @ : / in a "
                           "password)"]) from None


def _read_only(parsed: sa.URL) -> sa.URL:
    """An existing SQLite file opened read-only (nothing created, its journal mode kept)."""
    path = parsed.database or ""
    if path in ("", ":memory:"):
        return parsed
    if not Path(path).is_file():
        raise NoDatabase(f"no database at {path} yet; any other digest command creates it")
    return parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL: readers (web, preview) never block the writer; NORMAL sync is crash-safe in
    WAL. The busy timeout comes first, so that switching to WAL waits for a lock too."""
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:        # another connection holds it (switching it too, likely)
            log.info("could not switch the SQLite database to WAL yet; the next connection will")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _make_sqlite_folder(parsed: sa.URL) -> None:
    if parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


_SECRET = re.compile(r"^(?P<head>[\w+.-]+://[^:/@]*:)(?P<password>.*)@")


def _secret(url: str) -> str:
    match = _SECRET.match(url)
    return match.group("password") if match else ""


def _scrub(text: str, url: str) -> str:
    """A driver's message with every piece of the URL's password taken out (a password
    with an unencoded @ is split by the driver, and a piece may turn up as a host)."""
    for piece in sorted({p for p in re.split(r"[@:/]", _secret(url)) if len(p) > 1}, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def _at_hint(url: str) -> str:
    return " (percent-encode @ : / in the password: %40 %3A %2F)" if re.search(r"[@:/]", _secret(url)) else ""


def safe_url(url: str) -> str:
    """A database URL without its password (everything up to the last @), for messages."""
    return _SECRET.sub(lambda m: m.group("head") + "***@", url, count=1)
