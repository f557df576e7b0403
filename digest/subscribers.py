"""Subscriber lists: the editor's CSV files and the membership held in the database.

The CSV (email, name, more columns kept) is what the editor edits; the database holds
who is a member, and a suppression table (unsubscribed, bounced, complained) that
always wins over the file. Addresses are checked for syntax only (no DNS).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
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
    sa.Column("synced", sa.Integer, nullable=False, default=0),   # the list-file sync that last saw it
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


list_files = sa.Table(
    "list_files", metadata,
    sa.Column("list_name", sa.String(100), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),      # of the file as last synced
    sa.Column("synced_at", UTCDateTime, nullable=False),
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


CHUNK = 1000


def read_csv(path: Path) -> ReadResult:
    """Read a whole list file: bad rows are reported (file and line) and skipped; a
    file that cannot be read at all (encoding, no email column) raises ListFileError."""
    members: dict[str, Member] = {}
    problems: list[str] = []
    for chunk in read_chunks(path, problems):
        for member in chunk:
            members.setdefault(member.key, member)
    return ReadResult(list(members.values()), problems)


def read_chunks(path: Path, problems: list[str], known: Callable[[list[str]], set[str]] = lambda raw: set(),
                size: int = CHUNK) -> Iterator[list[Member]]:
    """The file's members, CHUNK rows at a time; memory does not grow with the file.
    Addresses `known(raw)` says are already stored as written skip the syntax check."""
    _check_encoding(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = _columns(path, reader.fieldnames)
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            rows.append((reader.line_num, row))
            if len(rows) == size:
                yield _members(path, rows, known, problems)
                rows = []
        if rows:
            yield _members(path, rows, known, problems)


def _columns(path: Path, names: Sequence[str] | None) -> list[str]:
    columns = [c.strip().lower() for c in (names or [])]
    if "email" not in columns:
        raise ListFileError(f"{path} line 1: no 'email' column (found: {', '.join(columns) or 'nothing'}); "
                            "the first line must name the columns, e.g. email,name")
    return columns


def _members(path: Path, rows: list[tuple[int, dict[str, str]]], known: Callable[[list[str]], set[str]],
             problems: list[str]) -> list[Member]:
    stored = known([(row.get("email") or "").strip() for _, row in rows])
    members = []
    for line, row in rows:
        raw = (row.get("email") or "").strip()
        try:
            address = raw if raw in stored else check_address(raw)
        except ValueError as error:
            problems.append(f"{path} line {line}: {row.get('email')!r} is not a valid address ({error}); "
                            "fix or remove the row")
            continue
        members.append(Member(address, (row.get("name") or "").strip(),
                              {k: v for k, v in row.items() if k not in ("email", "name") and k and v}))
    return members


def _file_hash(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _check_encoding(path: Path) -> None:
    """The whole file must be UTF-8 before anything is imported; read in blocks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 16):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as error:
                    line += block[:error.start].count(b"\n")
                    raise ListFileError(f"{path} line {line}: not UTF-8 (byte {block[error.start]:#x}); "
                                        "save the file as UTF-8 and run again; nothing was imported") from None
                line += block.count(b"\n")
                offset += len(block)
            decoder.decode(b"", final=True)
    except FileNotFoundError:
        raise ListFileError(f"{path}: not found; create it with a header line 'email,name' "
                            "or fix [[lists]].file in config.toml") from None
    except UnicodeDecodeError:
        raise ListFileError(f"{path} line {line}: not UTF-8 (the file ends mid-character); "
                            "save the file as UTF-8 and run again; nothing was imported") from None


class Lists:
    """Membership and suppressions in the database."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        metadata.create_all(self.engine, tables=[subscribers, suppressions, list_files])

    def sync(self, list_name: str, path: Path, now: datetime) -> SyncResult:
        """Make the list's file members match the file: add new, retire removed.

        Streams the file in chunks; the generation number marks who the file still
        names, so memory does not grow with the list."""
        result = SyncResult()
        digest = _file_hash(path)
        if digest is not None and digest == self._last_hash(list_name):
            return result          # unchanged since the last sync: nothing to do
        generation = self._next_generation(list_name)
        known = lambda raw: self._stored_as_written(list_name, raw)  # noqa: E731
        for chunk in read_chunks(path, result.problems, known):
            done = self.merge(list_name, chunk, "file", now, generation)
            result.added += done.added
            result.updated += done.updated
        with self.engine.begin() as db:
            result.retired = db.execute(subscribers.update().where(
                subscribers.c.list_name == list_name, subscribers.c.origin == "file",
                subscribers.c.active.is_(True), subscribers.c.synced != generation)
                .values(active=False, retired_at=now)).rowcount
            if not result.problems:     # a file with bad rows is read again next time, to report them
                db.execute(list_files.delete().where(list_files.c.list_name == list_name))
                db.execute(list_files.insert().values(list_name=list_name, sha256=digest, synced_at=now))
        return result

    def _last_hash(self, list_name: str) -> str | None:
        with self.engine.connect() as db:
            return db.execute(sa.select(list_files.c.sha256).where(list_files.c.list_name == list_name)).scalar()

    def _next_generation(self, list_name: str) -> int:
        query = sa.select(sa.func.max(subscribers.c.synced)).where(subscribers.c.list_name == list_name)
        with self.engine.connect() as db:
            return (db.execute(query).scalar() or 0) + 1

    def _stored_as_written(self, list_name: str, raw: list[str]) -> set[str]:
        query = sa.select(subscribers.c.email).where(subscribers.c.list_name == list_name,
                                                     subscribers.c.email.in_(set(raw)))
        with self.engine.connect() as db:
            return {r.email for r in db.execute(query)}

    def merge(self, list_name: str, members: list[Member], origin: str, now: datetime,
              generation: int = 0) -> SyncResult:
        """Add members that are new, reactivate retired ones, update names."""
        result = SyncResult()
        unique: dict[str, Member] = {}
        for member in members:
            unique.setdefault(member.key, member)
        known = self._known(list_name, list(unique))
        new, changed, seen = [], [], []
        for key, member in unique.items():
            row = known.get(key)
            values = {"email": member.email, "name": member.name, "extra": json.dumps(member.extra, sort_keys=True)}
            if row is None:
                new.append({"list_name": list_name, "email_key": key, "origin": origin, "synced": generation,
                            "active": True, "created_at": now, **values})
            elif not row.active or (row.email, row.name, row.extra) != tuple(values.values()):
                changed.append({"b_id": row.id, "active": True, "retired_at": None, "synced": generation, **values})
            else:
                seen.append(row.id)
        with self.engine.begin() as db:
            if new:
                db.execute(subscribers.insert(), new)
            if changed:
                db.execute(subscribers.update().where(subscribers.c.id == sa.bindparam("b_id"))
                           .values({k: sa.bindparam(k) for k in changed[0] if k != "b_id"}), changed)
            if seen and generation:
                db.execute(subscribers.update().where(subscribers.c.id.in_(seen)).values(synced=generation))
        result.added, result.updated = len(new), len(changed)
        return result

    def _known(self, list_name: str, keys: list[str]) -> dict[str, sa.Row]:
        query = sa.select(subscribers).where(subscribers.c.list_name == list_name, subscribers.c.email_key.in_(keys))
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

    def unsuppress(self, key: str, list_name: str, reason: str) -> int:
        """Lift a suppression of this reason on this list (a confirmed re-subscription);
        bounces and complaints are never lifted this way."""
        with self.engine.begin() as db:
            return db.execute(suppressions.delete().where(suppressions.c.email_key == key,
                                                          suppressions.c.list_name == list_name,
                                                          suppressions.c.reason == reason)).rowcount

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
