"""Who is on each list (the subscribers, as the list files, the CLI and sign-ups add
them), and suppressions. Suppressions (unsubscribed, bounced, complained,
removed) always win over a list file; "*" suppresses on every list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..models import EVERY_LIST, FileStamp, Origin, Reason, Subscriber, SyncResult, email_key
from .guard import guarded
from .tables import confirmations, list_files, subscribers, suppressions
from .upsert import insert_counted, insert_ignore


@guarded
class ListStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # ---------------------------------------------------------------- list files

    def last_file(self, list_name: str) -> FileStamp | None:
        """The list file as the last whole sync read it, or None (never, or to be read again)."""
        query = sa.select(list_files.c.sha256, list_files.c.size).where(list_files.c.list_name == list_name)
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return FileStamp(row.sha256, row.size) if row is not None else None

    def remember_size(self, list_name: str, stamp: FileStamp) -> None:
        """The size of a file synced before sizes were kept (its hash unchanged)."""
        with self.engine.begin() as db:
            db.execute(list_files.update().where(list_files.c.list_name == list_name,
                                                 list_files.c.sha256 == stamp.sha256).values(size=stamp.size))

    @contextmanager
    def syncing(self, list_name: str) -> Iterator[ListSync]:
        """One list-file sync as ONE transaction: whatever stops it (a refusal, a crash)
        leaves the list as it was."""
        with self.engine.begin() as db:
            yield ListSync(db, list_name)

    # ---------------------------------------------------------------- subscribers

    def merge(self, list_name: str, incoming: list[Subscriber], origin: Origin, now: datetime,
              generation: int = 0) -> SyncResult:
        """Add subscribers that are new, reactivate retired ones, update names."""
        with self.engine.begin() as db:
            return _merge(db, list_name, incoming, origin, now, generation)

    def remove(self, list_name: str, address: str, now: datetime) -> bool:
        """Take an address off a list for good: it is suppressed for that list."""
        key = email_key(address)
        self.suppress(key, list_name, Reason.REMOVED, "removed by the operator", now)
        with self.engine.begin() as db:
            done = db.execute(subscribers.update().where(subscribers.c.list_name == list_name,
                                                         subscribers.c.email_key == key)
                              .values(active=False, retired_at=now))
        return done.rowcount > 0

    # ---------------------------------------------------------------- suppressions

    def suppress(self, key: str, list_name: str, reason: Reason, detail: str, now: datetime) -> None:
        """Record that key must not be mailed (on list_name, or EVERY_LIST). Idempotent,
        also when many requests say it at once; the first reason stays."""
        with self.engine.begin() as db:
            suppress_in(db, key, list_name, reason, detail, now)

    def suppression(self, list_name: str, address: str) -> sa.Row | None:
        """The suppression that keeps address off list_name (the list's own first), or None."""
        query = (sa.select(suppressions).where(suppressions.c.email_key == email_key(address),
                                               suppressions.c.list_name.in_([list_name, EVERY_LIST]))
                 .order_by(suppressions.c.list_name.desc()))
        with self.engine.connect() as db:
            return db.execute(query).first()

    def use_confirmation(self, token_hash: str, list_name: str, key: str, now: datetime) -> bool:
        """Mark a subscription link used; False when it was used before."""
        with self.engine.begin() as db:
            return insert_ignore(db, confirmations, {"token_hash": token_hash, "list_name": list_name,
                                                     "email_key": key, "used_at": now}) == 1

    def release_confirmation(self, token_hash: str, list_name: str) -> None:
        """A link marked used whose subscription then failed (a busy database): usable again."""
        with self.engine.begin() as db:
            db.execute(confirmations.delete().where(confirmations.c.token_hash == token_hash,
                                                    confirmations.c.list_name == list_name))

    def unsuppress(self, key: str, list_name: str, reason: Reason) -> int:
        """Lift a suppression of this reason on this list (a confirmed re-subscription);
        bounces and complaints are never lifted this way."""
        with self.engine.begin() as db:
            return db.execute(suppressions.delete().where(suppressions.c.email_key == key,
                                                          suppressions.c.list_name == list_name,
                                                          suppressions.c.reason == reason.value)).rowcount

    def is_active(self, list_name: str, address: str) -> bool:
        """On the list, not retired, not suppressed: gets the next edition."""
        query = sa.select(subscribers.c.id).where(subscribers.c.list_name == list_name,
                                                  subscribers.c.email_key == email_key(address),
                                                  subscribers.c.active.is_(True), ~suppressed(list_name))
        with self.engine.connect() as db:
            return db.execute(query).first() is not None

    def subscriber(self, subscriber_id: int) -> sa.Row | None:
        """The subscribers row (list_name, email_key, email) of that id, or None (mail mode's
        unsubscribe tokens name a row by its id)."""
        query = sa.select(subscribers.c.list_name, subscribers.c.email_key, subscribers.c.email).where(
            subscribers.c.id == subscriber_id)
        with self.engine.connect() as db:
            return db.execute(query).first()

    def subscriber_id(self, list_name: str, address: str) -> int | None:
        """The id of the address's row on the list, or None when it was never on it."""
        query = sa.select(subscribers.c.id).where(subscribers.c.list_name == list_name,
                                                  subscribers.c.email_key == email_key(address))
        with self.engine.connect() as db:
            return db.execute(query).scalar()

    def is_suppressed(self, list_name: str, address: str) -> bool:
        query = sa.select(suppressions.c.id).where(suppressions.c.email_key == email_key(address),
                                                   suppressions.c.list_name.in_([list_name, EVERY_LIST]))
        with self.engine.connect() as db:
            return db.execute(query).first() is not None

    # ---------------------------------------------------------------- reading

    def active(self, list_name: str, batch: int = 1000) -> Iterator[sa.Row]:
        """Active, unsuppressed subscribers (whom the next edition goes to), streamed in
        batches by id."""
        last = 0
        while True:
            query = (sa.select(subscribers).where(subscribers.c.list_name == list_name,
                                                  subscribers.c.active.is_(True), subscribers.c.id > last,
                                                  ~suppressed(list_name))
                     .order_by(subscribers.c.id).limit(batch))
            with self.engine.connect() as db:
                rows = db.execute(query).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def count(self, list_name: str) -> int:
        query = sa.select(sa.func.count()).select_from(subscribers).where(
            subscribers.c.list_name == list_name, subscribers.c.active.is_(True), ~suppressed(list_name))
        with self.engine.connect() as db:
            return db.execute(query).scalar_one()

    def listing(self, list_name: str) -> list[dict[str, Any]]:
        """Every address ever on the list, with its state (a dict per row: email, name,
        active, origin, reason); `rows` streams the same for a list of any size."""
        return [dict(zip(LISTED, row, strict=True)) for row in self.rows(list_name)]

    def rows(self, list_name: str) -> Iterator[tuple[str, str, bool, str, str | None]]:
        """Every address ever on the list, in the order it came: (email, name, active,
        origin, the reason it is suppressed or None), streamed (a million rows are never
        held at once). Read it to the end: it holds a connection until then."""
        sup = suppressions.alias()
        query = (sa.select(subscribers.c.email, subscribers.c.name, subscribers.c.active, subscribers.c.origin,
                           sup.c.reason)
                 .outerjoin(sup, sa.and_(sup.c.email_key == subscribers.c.email_key,
                                         sup.c.list_name.in_([list_name, EVERY_LIST])))
                 .where(subscribers.c.list_name == list_name).order_by(subscribers.c.id))
        with self.engine.connect() as db:
            for row in db.execute(query.execution_options(yield_per=10_000)):
                yield tuple(row)                                                   # type: ignore[misc]


LISTED = ("email", "name", "active", "origin", "reason")
ANALYZE_FROM = 20_000      # rows a sync adds before PostgreSQL's statistics are taken again


class ListSync:
    """A list-file sync inside its transaction (see ListStore.syncing)."""

    def __init__(self, db: sa.Connection, list_name: str) -> None:
        self.db, self.list_name = db, list_name
        self.added = self.analysed = 0
        self.empty = db.execute(sa.select(subscribers.c.id).where(subscribers.c.list_name == list_name)
                                .limit(1)).first() is None          # a first import: nothing to look up
        self.generation = (db.execute(sa.select(sa.func.max(subscribers.c.synced))
                                      .where(subscribers.c.list_name == list_name)).scalar() or 0) + 1

    def merge(self, incoming: list[Subscriber], now: datetime) -> SyncResult:
        done = _merge(self.db, self.list_name, incoming, Origin.FILE, now, self.generation, lookup=not self.empty)
        self._grown(done.added)
        return done

    def _grown(self, added: int) -> None:
        """PostgreSQL plans each look-up by statistics that do not know the rows this
        transaction wrote: as the list doubles, they are taken again (ANALYZE sees them),
        or a first import of a million rows would scan the growing table for every chunk."""
        self.added += added
        if self.db.dialect.name == "postgresql" and self.added >= max(ANALYZE_FROM, 2 * self.analysed):
            self.db.execute(sa.text("ANALYZE subscribers"))
            self.analysed = self.added

    def from_file(self) -> int:
        """Active subscribers from the file, as this sync has them so far."""
        return self._count(_from_file(self.list_name))

    def has_from_file(self, keys: list[str]) -> bool:
        """One of these addresses is already a subscriber from the file."""
        query = sa.select(subscribers.c.id).where(_from_file(self.list_name),
                                                  subscribers.c.email_key.in_(keys)).limit(1)
        return bool(keys) and self.db.execute(query).first() is not None

    def stored_hashes(self) -> set[int]:
        """The row hashes of the list's active subscribers from the file: the rows a re-read may skip."""
        query = sa.select(subscribers.c.row_hash).where(_from_file(self.list_name),
                                                        subscribers.c.row_hash.is_not(None))
        return {h for (h,) in self.db.execute(query.execution_options(yield_per=10_000))}

    def leaving(self, gone: set[int] | None = None) -> int:
        """Subscribers from the file this sync would retire: not merged by it and their row gone from
        the file (`gone`: stored hashes the file no longer has) or never hashed; with gone
        None (every row was merged), every one from the file not merged."""
        return sum(self._count(where) for where in self._leaving(gone))

    def finish(self, stamp: FileStamp | None, now: datetime, retire: bool = True, gone: set[int] | None = None) -> int:
        """Retire the subscribers `leaving(gone)` counts (unless not retire); remember the
        file's stamp (None: read it whole again next time). Returns how many were retired."""
        retired = 0
        for where in self._leaving(gone) if retire else ():
            retired += self.db.execute(subscribers.update().where(where).values(active=False, retired_at=now)).rowcount
        self.db.execute(list_files.delete().where(list_files.c.list_name == self.list_name))
        if stamp is not None:
            self.db.execute(list_files.insert().values(list_name=self.list_name, sha256=stamp.sha256, size=stamp.size,
                                                       synced_at=now))
        return retired

    def _leaving(self, gone: set[int] | None) -> list[sa.ColumnElement[bool]]:
        base = sa.and_(_from_file(self.list_name), subscribers.c.synced < self.generation)
        if gone is None:
            return [base]
        hashed = [sa.and_(base, subscribers.c.row_hash.in_(chunk)) for chunk in _chunks(sorted(gone))]
        return [sa.and_(base, subscribers.c.row_hash.is_(None)), *hashed]

    def _count(self, where: sa.ColumnElement[bool]) -> int:
        return self.db.execute(sa.select(sa.func.count()).select_from(subscribers).where(where)).scalar_one()


def _chunks(items: list[int], size: int = 1000) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _from_file(list_name: str) -> sa.ColumnElement[bool]:
    return sa.and_(subscribers.c.list_name == list_name, subscribers.c.origin == Origin.FILE.value,
                   subscribers.c.active.is_(True))


def _merge(db: sa.Connection, list_name: str, incoming: list[Subscriber], origin: Origin, now: datetime,
           generation: int, lookup: bool = True) -> SyncResult:
    """Without lookup (a first import into an empty list), every subscriber is inserted and
    a later duplicate of an address is ignored: the first row of it wins, as in a read."""
    unique: dict[str, Subscriber] = {}
    for subscriber in incoming:
        unique.setdefault(subscriber.key, subscriber)
    query = sa.select(subscribers).where(subscribers.c.list_name == list_name,
                                         subscribers.c.email_key.in_(list(unique)))
    known = {r.email_key: r for r in db.execute(query)} if lookup else {}
    new, changed, seen = [], [], []
    for key, subscriber in unique.items():
        row = known.get(key)
        values = {"email": subscriber.email, "name": subscriber.name,
                  "extra": json.dumps(subscriber.extra, sort_keys=True), "row_hash": subscriber.row_hash}
        if row is None:
            new.append({"list_name": list_name, "email_key": key, "origin": origin.value, "synced": generation,
                        "active": True, "created_at": now, **values})
        elif _differs(row, values, origin):
            if origin != Origin.FILE:          # added on purpose: a later file edit must not retire it
                values["origin"] = origin.value
            changed.append({"b_id": row.id, "active": True, "retired_at": None, "synced": generation,
                            "origin": row.origin, **values})
        else:
            seen.append(row.id)
    inserted = insert_ignore(db, subscribers, new) if lookup else _insert_new(db, new)
    if changed:
        db.execute(subscribers.update().where(subscribers.c.id == sa.bindparam("b_id"))
                   .values({k: sa.bindparam(k) for k in changed[0] if k != "b_id"}), changed)
    if seen and generation:
        db.execute(subscribers.update().where(subscribers.c.id.in_(seen)).values(synced=generation))
    return SyncResult(added=len(new) if lookup else inserted, updated=len(changed))


COPIED = ("list_name", "email_key", "email", "name", "extra", "origin", "synced", "active", "created_at", "row_hash")


def _insert_new(db: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """New subscribers of a first import, counted exactly (a later duplicate of an address is
    ignored). PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT: several
    times faster than statements with parameters. SQLite: a batched INSERT ... RETURNING."""
    if not rows or db.dialect.name != "postgresql":
        return insert_counted(db, subscribers, rows)
    columns = ", ".join(COPIED)
    db.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS new_subscribers AS SELECT {columns} FROM subscribers "
                       "WITH NO DATA")
    driver = db.connection.driver_connection                  # psycopg's own: COPY has no SQLAlchemy form
    assert driver is not None
    cursor = driver.cursor()
    with cursor.copy(f"COPY new_subscribers ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_plain(row[column]) for column in COPIED])
    inserted = db.exec_driver_sql(f"INSERT INTO subscribers ({columns}) SELECT {columns} FROM new_subscribers "
                                  "ON CONFLICT (list_name, email_key) DO NOTHING").rowcount
    db.exec_driver_sql("TRUNCATE new_subscribers")
    return inserted


def _plain(value: Any) -> Any:
    """A value as its column holds it (UTCDateTime: naive UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value


def _differs(row: sa.Row, values: dict[str, Any], origin: Origin) -> bool:
    """The stored subscriber must change: retired, renamed, or now added on purpose."""
    explicit = origin != Origin.FILE and row.origin != origin.value
    return not row.active or explicit or (row.email, row.name, row.extra, row.row_hash) != tuple(values.values())


def suppress_in(db: sa.Connection, key: str, list_name: str, reason: Reason, detail: str, now: datetime) -> None:
    """The first suppression of a key on a list stays; an unsubscribe said again moves its
    time forward (a confirmation link asked for before it must not lift it)."""
    inserted = insert_ignore(db, suppressions, {"email_key": key, "list_name": list_name, "reason": reason.value,
                                                "detail": detail[:500], "at": now})
    if not inserted and reason == Reason.UNSUBSCRIBED:
        db.execute(suppressions.update().where(suppressions.c.email_key == key, suppressions.c.list_name == list_name,
                                               suppressions.c.reason == reason.value, suppressions.c.at < now)
                   .values(at=now))


def suppressed(list_name: str) -> sa.ColumnElement[bool]:
    """True for a subscriber row whose address is suppressed on list_name."""
    return sa.exists().where(suppressions.c.email_key == subscribers.c.email_key,
                             suppressions.c.list_name.in_([list_name, EVERY_LIST]))
