"""Subscriber lists: the editor's CSV files and the membership held in the database.

The CSV (email, name, more columns kept) is what the editor edits; the database holds
who is a member, and a suppression table (unsubscribed, bounced, complained) that
always wins over the file. Addresses are checked for syntax only (no DNS).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from .errors import DigestError
from .store import Store, UTCDateTime, metadata

log = logging.getLogger(__name__)

subscribers = sa.Table(
    "subscribers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),    # local part as given, domain lower-cased
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("extra", sa.Text, nullable=False, default="{}"),  # the CSV's other columns, as JSON
    sa.Column("origin", sa.String(10), nullable=False),         # "file" | "cli" | "import" | "web"
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime),
    sa.UniqueConstraint("list_name", "email_key"),
)

suppressions = sa.Table(
    "suppressions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email_key", sa.String(320), nullable=False, index=True),
    sa.Column("list_name", sa.String(100), nullable=False, default="*"),   # "*" = every list
    sa.Column("reason", sa.String(20), nullable=False),    # unsubscribed | bounced | complained | removed
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("email_key", "list_name"),
)


class ListFileError(DigestError):
    """A subscriber file cannot be read at all (encoding, header)."""


@dataclass(frozen=True)
class Member:
    email: str
    name: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return email_key(self.email)


@dataclass
class ReadResult:
    members: list[Member]
    problems: list[str]                 # one line each: file, line, what to do


@dataclass
class SyncResult:
    added: int = 0
    retired: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)


def email_key(address: str) -> str:
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def check_address(address: str) -> str:
    """The normalised address, or ValueError with the reason."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


def read_csv(path: Path) -> ReadResult:
    """Read a list file: bad rows are reported (file and line) and skipped; a file
    that cannot be read at all (encoding, no email column) raises ListFileError."""
    text = _decode(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "email" not in columns:
        raise ListFileError(f"{path} line 1: no 'email' column (found: {', '.join(columns) or 'nothing'}); "
                            "the first line must name the columns, e.g. email,name")
    reader.fieldnames = columns
    members: dict[str, Member] = {}
    problems = []
    for row in reader:
        line = reader.line_num
        try:
            address = check_address(row.get("email") or "")
        except ValueError as error:
            problems.append(f"{path} line {line}: {row.get('email')!r} is not a valid address ({error}); fix or remove the row")
            continue
        member = Member(address, (row.get("name") or "").strip(),
                        {k: v for k, v in row.items() if k not in ("email", "name") and k and v})
        if member.key in members:
            log.info("%s line %d: %s is listed twice; keeping the first", path, line, address)
            continue
        members[member.key] = member
    return ReadResult(list(members.values()), problems)


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ListFileError(f"{path}: not found; create it with a header line 'email,name' "
                            "or fix [[lists]].file in config.toml") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ListFileError(f"{path} line {line}: not UTF-8 (byte {data[error.start]:#x}); "
                            "save the file as UTF-8 and run again; nothing was imported") from None


class Lists:
    """Membership and suppressions in the database."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        metadata.create_all(self.engine, tables=[subscribers, suppressions])

    def sync(self, list_name: str, path: Path, now: datetime) -> SyncResult:
        """Make the list's file members match the file: add new, retire removed."""
        read = read_csv(path)
        result = self.merge(list_name, read.members, "file", now)
        wanted = {m.key for m in read.members}
        with self.engine.begin() as db:
            rows = db.execute(sa.select(subscribers.c.id, subscribers.c.email_key).where(
                subscribers.c.list_name == list_name, subscribers.c.origin == "file",
                subscribers.c.active.is_(True))).all()
            gone = [r.id for r in rows if r.email_key not in wanted]
            for start in range(0, len(gone), 500):
                db.execute(subscribers.update().where(subscribers.c.id.in_(gone[start:start + 500]))
                           .values(active=False, retired_at=now))
        result.retired = len(gone)
        result.problems = read.problems
        return result

    def merge(self, list_name: str, members: list[Member], origin: str, now: datetime) -> SyncResult:
        """Add members that are new, reactivate retired ones, update names."""
        result = SyncResult()
        known = self._known(list_name)
        new, changed = [], []
        for member in members:
            row = known.get(member.key)
            values = {"email": member.email, "name": member.name, "extra": json.dumps(member.extra, sort_keys=True)}
            if row is None:
                new.append({"list_name": list_name, "email_key": member.key, "origin": origin,
                            "active": True, "created_at": now, **values})
            elif not row.active or (row.email, row.name, row.extra) != tuple(values.values()):
                changed.append({"b_id": row.id, "active": True, "retired_at": None, **values})
        with self.engine.begin() as db:
            if new:
                db.execute(subscribers.insert(), new)
            if changed:
                db.execute(subscribers.update().where(subscribers.c.id == sa.bindparam("b_id"))
                           .values({k: sa.bindparam(k) for k in changed[0] if k != "b_id"}), changed)
        result.added, result.updated = len(new), len(changed)
        return result

    def _known(self, list_name: str) -> dict[str, sa.Row]:
        query = sa.select(subscribers).where(subscribers.c.list_name == list_name)
        with self.engine.connect() as db:
            return {r.email_key: r for r in db.execute(query)}

    def remove(self, list_name: str, address: str, now: datetime) -> bool:
        """Take an address off a list for good: it is suppressed for that list."""
        key = email_key(address)
        self.suppress(key, list_name, "removed", "removed by the operator", now)
        with self.engine.begin() as db:
            done = db.execute(subscribers.update().where(subscribers.c.list_name == list_name,
                                                         subscribers.c.email_key == key)
                              .values(active=False, retired_at=now))
        return done.rowcount > 0

    def suppress(self, key: str, list_name: str, reason: str, detail: str, now: datetime) -> None:
        """Record that key must not be mailed (on list_name, or "*" for every list)."""
        with self.engine.begin() as db:
            exists = db.execute(sa.select(suppressions.c.id).where(
                suppressions.c.email_key == key, suppressions.c.list_name == list_name)).first()
            if exists is None:
                db.execute(suppressions.insert().values(email_key=key, list_name=list_name, reason=reason,
                                                        detail=detail, at=now))

    def is_suppressed(self, list_name: str, address: str) -> bool:
        query = sa.select(suppressions.c.id).where(suppressions.c.email_key == email_key(address),
                                                   suppressions.c.list_name.in_([list_name, "*"]))
        with self.engine.connect() as db:
            return db.execute(query).first() is not None

    def members(self, list_name: str, batch: int = 1000) -> Iterator[sa.Row]:
        """Active, unsuppressed members, streamed in batches by id."""
        last = 0
        while True:
            query = (sa.select(subscribers).where(subscribers.c.list_name == list_name,
                                                  subscribers.c.active.is_(True), subscribers.c.id > last,
                                                  ~_suppressed(list_name))
                     .order_by(subscribers.c.id).limit(batch))
            with self.engine.connect() as db:
                rows = db.execute(query).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def count(self, list_name: str) -> int:
        query = sa.select(sa.func.count()).select_from(subscribers).where(
            subscribers.c.list_name == list_name, subscribers.c.active.is_(True), ~_suppressed(list_name))
        with self.engine.connect() as db:
            return db.execute(query).scalar_one()

    def listing(self, list_name: str) -> list[dict]:
        """Every address ever on the list, with its state."""
        sup = suppressions.alias()
        query = (sa.select(subscribers.c.email, subscribers.c.name, subscribers.c.active, subscribers.c.origin,
                           sup.c.reason)
                 .outerjoin(sup, sa.and_(sup.c.email_key == subscribers.c.email_key,
                                         sup.c.list_name.in_([list_name, "*"])))
                 .where(subscribers.c.list_name == list_name).order_by(subscribers.c.id))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]


def _suppressed(list_name: str) -> sa.ColumnElement[bool]:
    return sa.exists().where(suppressions.c.email_key == subscribers.c.email_key,
                             suppressions.c.list_name.in_([list_name, "*"]))
