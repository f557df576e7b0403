"""Posts, comments, sources and HTTP validators: what was read from the feeds.

Posts and comments are keyed by (source, the source's own id), so re-reading a feed
never duplicates and an edited item is updated in place. Times are stored as UTC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from ..models import Comment, Discussion, Post, Validators
from .guard import guarded
from .tables import comments, http_cache, posts, sources
from .upsert import insert_ignore

CHUNK = 500


class Horizon(NamedTuple):
    """How far back a source is read: `at` (None: everything); `first`: nothing of the
    source is stored yet; `widened`: it reaches further back than at the last fetch."""

    at: datetime | None
    first: bool
    widened: bool


@guarded
class Content:
    """Reads and writes posts, comments, sources and HTTP validators."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # ---------------------------------------------------------------- sources

    def source_id(self, name: str, url: str, kind: str | None) -> int:
        """The source's id, made on first use (once, even when two fetches start together)."""
        with self.engine.begin() as db:
            insert_ignore(db, sources, {"name": name, "url": url, "kind": kind})
            row = db.execute(sa.select(sources.c.id).where(sources.c.name == name)).one()
            db.execute(sources.update().where(sources.c.id == row.id).values(url=url, kind=kind))
            return int(row.id)

    def source_state(self, source_id: int) -> tuple[str | None, str | None]:
        """(kind as detected, blog-wide comments feed URL) from the last fetch."""
        query = sa.select(sources.c.detected_kind, sources.c.comments_url).where(sources.c.id == source_id)
        with self.engine.connect() as db:
            row = db.execute(query).one()
        return row.detected_kind, row.comments_url

    def save_source_state(self, source_id: int, kind: str, comments_url: str | None) -> None:
        with self.engine.begin() as db:
            db.execute(sources.update().where(sources.c.id == source_id)
                       .values(detected_kind=kind, comments_url=comments_url))

    def finish_source(self, source_id: int, error: str | None, when: datetime,
                      reread_posts: bool | None = None) -> None:
        """The fetch is over; reread_posts (None: unchanged) says whether the next fetch
        must read the posts feed whole because a page was missed."""
        values: dict[str, Any] = {"last_fetch_at": when, "last_error": error}
        if reread_posts is not None:
            values["reread_posts"] = reread_posts
        with self.engine.begin() as db:
            db.execute(sources.update().where(sources.c.id == source_id).values(**values))

    def reread_posts(self, source_id: int) -> bool:
        with self.engine.connect() as db:
            return bool(db.execute(sa.select(sources.c.reread_posts).where(sources.c.id == source_id)).scalar())

    def horizon(self, source_id: int, proposed: datetime | None) -> Horizon:
        """The source's backfill horizon: set by its first fetch, then kept, except that it
        moves back when `proposed` reaches further (None: everything), never forward."""
        with self.engine.begin() as db:
            row = db.execute(sa.select(sources.c.horizon, sources.c.last_fetch_at)
                             .where(sources.c.id == source_id)).one()
            first = not self._has_posts(db, source_id)          # a failed first fetch leaves it first
            if row.last_fetch_at is None and row.horizon is None:
                if proposed is not None:
                    db.execute(sources.update().where(sources.c.id == source_id).values(horizon=proposed))
                return Horizon(proposed, first, False)
            if row.horizon is not None and (proposed is None or proposed < row.horizon):
                db.execute(sources.update().where(sources.c.id == source_id).values(horizon=proposed))
                return Horizon(proposed, first, True)
        return Horizon(row.horizon, first, False)

    @staticmethod
    def _has_posts(db: sa.Connection, source_id: int) -> bool:
        return db.execute(sa.select(posts.c.id).where(posts.c.source_id == source_id).limit(1)).first() is not None

    # ---------------------------------------------------------------- HTTP validators

    def validators(self, url: str) -> Validators:
        with self.engine.connect() as db:
            row = db.execute(sa.select(http_cache).where(http_cache.c.url == url[:2000])).first()
        return Validators(row.etag, row.last_modified) if row else Validators()

    def save_validators(self, url: str, validators: Validators, when: datetime) -> None:
        values = {"etag": validators.etag, "last_modified": validators.last_modified, "checked_at": when}
        with self.engine.begin() as db:
            done = db.execute(http_cache.update().where(http_cache.c.url == url[:2000]).values(**values))
            if done.rowcount == 0:
                db.execute(http_cache.insert().values(url=url[:2000], **values))

    # ---------------------------------------------------------------- posts

    def post_state(self, source_id: int, keys: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        """{key: (hash, comments_total)} of the stored posts among keys."""
        rows = self._select_in(posts, [posts.c.key, posts.c.hash, posts.c.comments_total], source_id, keys)
        return {r.key: (r.hash, r.comments_total) for r in rows}

    def save_posts(self, source_id: int, items: Sequence[Post]) -> tuple[int, int]:
        """Insert new posts, update changed ones; return (new, updated)."""
        known = self.post_state(source_id, [p.key for p in items])
        fresh = {p.key: p for p in items}.values()
        new = [_post_row(source_id, p) for p in fresh if p.key not in known]
        changed = [_post_row(source_id, p) for p in fresh
                   if p.key in known and known[p.key][0] != post_hash(p) and not p.stub]
        with self.engine.begin() as db:
            _insert(db, posts, new)
            _update(db, posts, changed)
        return len(new), len(changed)

    def post_keys(self, source_id: int, keys: Iterable[str]) -> set[str]:
        return {r.key for r in self._select_in(posts, [posts.c.key], source_id, keys)}

    # ---------------------------------------------------------------- comments

    def comment_hashes(self, source_id: int, keys: Iterable[str]) -> dict[str, str]:
        rows = self._select_in(comments, [comments.c.key, comments.c.hash], source_id, keys)
        return {r.key: r.hash for r in rows}

    def save_comments(self, source_id: int, items: Sequence[Comment]) -> tuple[int, int, int]:
        """Insert new comments, update changed ones, undelete ones seen again; return
        (new, updated, unchanged)."""
        rows = self._select_in(comments, [comments.c.key, comments.c.hash, comments.c.deleted], source_id,
                               [c.key for c in items])
        known = {r.key: r.hash for r in rows}
        fresh = {c.key: c for c in items}.values()
        new = [_comment_row(source_id, c) for c in fresh if c.key not in known]
        changed = [_comment_row(source_id, c) for c in fresh
                   if c.key in known and known[c.key] != comment_hash(c)]
        back = [r.key for r in rows if r.deleted and r.key not in {c["key"] for c in changed}]
        with self.engine.begin() as db:
            _insert(db, comments, new)
            _update(db, comments, changed)                 # rows written whole: deleted is False again
            for chunk in _chunks(back):                    # a comment seen again is not deleted
                db.execute(comments.update().where(comments.c.source_id == source_id, comments.c.key.in_(chunk))
                           .values(deleted=False))
        return len(new), len(changed), len(fresh) - len(new) - len(changed)

    def comment_counts(self, source_id: int, post_keys: Iterable[str]) -> dict[str, int]:
        """How many (not deleted) comments are stored per post."""
        counts: dict[str, int] = {}
        for chunk in _chunks(list(post_keys)):
            query = (sa.select(comments.c.post_key, sa.func.count())
                     .where(comments.c.source_id == source_id, comments.c.post_key.in_(chunk),
                            comments.c.deleted.is_(False))
                     .group_by(comments.c.post_key))
            with self.engine.connect() as db:
                counts.update({k: n for k, n in db.execute(query)})
        return counts

    def mark_deleted(self, source_id: int, post_key: str, present: set[str]) -> int:
        """Comments of post_key that its full feed no longer lists are marked deleted."""
        with self.engine.begin() as db:
            rows = db.execute(sa.select(comments.c.key).where(
                comments.c.source_id == source_id, comments.c.post_key == post_key,
                comments.c.deleted.is_(False))).all()
            gone = [r.key for r in rows if r.key not in present]
            for chunk in _chunks(gone):
                db.execute(comments.update().where(comments.c.source_id == source_id,
                                                   comments.c.key.in_(chunk)).values(deleted=True))
        return len(gone)

    def rethread(self, source_id: int, post_keys: Iterable[str]) -> int:
        """Attach replies to their parents; a reply whose parent is unknown becomes top level.

        Returns how many orphans the given posts have.
        """
        orphans = 0
        for chunk in _chunks(sorted(set(post_keys))):
            with self.engine.begin() as db:
                orphans += _rethread(db, source_id, chunk)
        return orphans

    # ---------------------------------------------------------------- reading

    def totals(self) -> dict[str, int]:
        with self.engine.connect() as db:
            return {
                "posts": db.execute(sa.select(sa.func.count()).select_from(posts)
                                    .where(posts.c.stub.is_(False))).scalar_one(),
                "comments": db.execute(sa.select(sa.func.count()).select_from(comments)
                                       .where(comments.c.deleted.is_(False))).scalar_one(),
            }

    def source_overview(self) -> list[dict[str, Any]]:
        """Each source with its stored posts, comments, replies and removed comments."""
        live = comments.c.deleted.is_(False)
        counts = (sa.select(comments.c.source_id,
                            sa.func.count().label("comments"),
                            sa.func.count(comments.c.parent_key).label("replies"),
                            sa.func.sum(sa.case((comments.c.removed, 1), else_=0)).label("removed"))
                  .where(live).group_by(comments.c.source_id).subquery())
        post_counts = (sa.select(posts.c.source_id, sa.func.count().label("posts"))
                       .where(posts.c.stub.is_(False)).group_by(posts.c.source_id).subquery())
        query = (sa.select(sources.c.name, sources.c.last_fetch_at, sources.c.last_error,
                           sa.func.coalesce(post_counts.c.posts, 0).label("posts"),
                           sa.func.coalesce(counts.c.comments, 0).label("comments"),
                           sa.func.coalesce(counts.c.replies, 0).label("replies"),
                           sa.func.coalesce(counts.c.removed, 0).label("removed"))
                 .outerjoin(counts, counts.c.source_id == sources.c.id)
                 .outerjoin(post_counts, post_counts.c.source_id == sources.c.id)
                 .order_by(sources.c.name))
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query)]

    def discussions(self, since: datetime, until: datetime) -> list[Discussion]:
        """Posts published in [since, until) or with comments in it, each with every
        comment stored before until (deleted ones left out)."""
        active = (sa.select(comments.c.source_id, comments.c.post_key)
                  .where(comments.c.published >= since, comments.c.published < until,
                         comments.c.deleted.is_(False)).distinct().subquery())
        in_period = sa.and_(posts.c.published >= since, posts.c.published < until, posts.c.stub.is_(False))
        query = (sa.select(posts).outerjoin(active, sa.and_(active.c.source_id == posts.c.source_id,
                                                            active.c.post_key == posts.c.key))
                 .where(sa.or_(in_period, active.c.post_key.is_not(None))))
        with self.engine.connect() as db:
            chosen = {(r.source_id, r.key): _post_model(r) for r in db.execute(query)}
            found: dict[tuple[int, str], list[Comment]] = {k: [] for k in chosen}
            for source_id, keys in _by_source(chosen):
                for chunk in _chunks(keys):
                    rows = db.execute(sa.select(comments).where(
                        comments.c.source_id == source_id, comments.c.post_key.in_(chunk),
                        comments.c.published < until, comments.c.deleted.is_(False)))
                    for row in rows:
                        found[(source_id, row.post_key)].append(_comment_model(row))
        return [Discussion(post, _named_replies(found[key])) for key, post in chosen.items()]

    def iter_comments(self, source_id: int | None = None) -> Iterator[sa.Row]:
        query = sa.select(comments).order_by(comments.c.published)
        if source_id is not None:
            query = query.where(comments.c.source_id == source_id)
        with self.engine.connect() as db:
            yield from db.execute(query)

    def iter_posts(self, source_id: int | None = None) -> Iterator[sa.Row]:
        query = sa.select(posts).order_by(posts.c.published.desc())
        if source_id is not None:
            query = query.where(posts.c.source_id == source_id)
        with self.engine.connect() as db:
            yield from db.execute(query)

    def _select_in(self, table: sa.Table, columns: list, source_id: int, keys: Iterable[str]) -> list[sa.Row]:
        rows: list[sa.Row] = []
        keys = list(keys)
        if not keys:
            return rows
        with self.engine.connect() as db:
            for chunk in _chunks(list(set(keys))):
                query = sa.select(*columns).where(table.c.source_id == source_id, table.c.key.in_(chunk))
                rows.extend(db.execute(query))
        return rows


# ------------------------------------------------------------------ rows and hashes

def post_hash(post: Post) -> str:
    return _hash(post.title, post.url, post.html, post.author, post.updated.isoformat(),
                 str(post.comments_total), post.comments_feed or "", str(post.stub))


def comment_hash(comment: Comment) -> str:
    return _hash(comment.html, comment.author, comment.updated.isoformat(), comment.post_key,
                 comment.parent_key or "", str(comment.removed), comment.url)


def _hash(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


def _post_row(source_id: int, post: Post) -> dict[str, Any]:
    return {
        "source_id": source_id, "key": post.key, "url": post.url, "title": post.title,
        "author": post.author, "published": post.published, "updated": post.updated,
        "html": post.html, "text": post.text, "comments_total": post.comments_total,
        "comments_feed": post.comments_feed, "stub": post.stub, "hash": post_hash(post),
        "original_key": post.original_key,
    }


def _comment_row(source_id: int, comment: Comment) -> dict[str, Any]:
    return {
        "source_id": source_id, "key": comment.key, "post_key": comment.post_key,
        "declared_parent": comment.parent_key, "parent_key": comment.parent_key,
        "orphan": False, "author": comment.author, "author_uri": comment.author_uri,
        "published": comment.published, "updated": comment.updated, "url": comment.url,
        "html": comment.html, "text": comment.text, "removed": comment.removed,
        "deleted": False, "hash": comment_hash(comment), "original_key": comment.original_key,
    }


def _post_model(row: sa.Row) -> Post:
    return Post(key=row.key, title=row.title, url=row.url, published=row.published, updated=row.updated,
                author=row.author, html=row.html, text=row.text, comments_total=row.comments_total,
                comments_feed=row.comments_feed, stub=row.stub, original_key=row.original_key)


def _comment_model(row: sa.Row) -> Comment:
    nested = row.declared_parent if row.parent_key and row.declared_parent != row.parent_key else None
    return Comment(key=row.key, post_key=row.post_key, author=row.author, author_uri=row.author_uri,
                   published=row.published, updated=row.updated, url=row.url, html=row.html,
                   text=row.text, removed=row.removed, parent_key=row.parent_key, reply_to=nested, answers=nested,
                   original_key=row.original_key)


def _named_replies(found: list[Comment]) -> list[Comment]:
    """A reply to a reply names whom it answers (its key becomes that comment's author)."""
    authors = {c.key: c.author for c in found}
    return [replace(c, reply_to=authors.get(c.reply_to, "an earlier comment")) if c.reply_to else c for c in found]


def _by_source(keys: Iterable[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    grouped: dict[int, list[str]] = {}
    for source_id, key in keys:
        grouped.setdefault(source_id, []).append(key)
    return list(grouped.items())


def _insert(db: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """New rows; one that another fetch stored meanwhile is left as it is."""
    if rows:
        insert_ignore(db, table, rows)


def _update(db: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    statement = (table.update()
                 .where(table.c.source_id == sa.bindparam("b_source"), table.c.key == sa.bindparam("b_key"))
                 .values({k: sa.bindparam(k) for k in rows[0] if k not in ("source_id", "key")}))
    db.execute(statement, [{**r, "b_source": r["source_id"], "b_key": r["key"]} for r in rows])


def _rethread(db: sa.Connection, source_id: int, post_keys: list[str]) -> int:
    """Threads are one level deep: a reply at any depth is attached to its top-level
    ancestor; a reply whose parent is unknown, or caught in a cycle of parents, is shown
    top-level and counted. Returns that count."""
    rows = db.execute(sa.select(comments.c.key, comments.c.declared_parent, comments.c.parent_key,
                                comments.c.orphan)
                      .where(comments.c.source_id == source_id, comments.c.post_key.in_(post_keys))).all()
    declared = {r.key: r.declared_parent for r in rows}
    changes, orphans = [], 0
    for row in rows:
        parent, orphan = _top_ancestor(row.key, declared)
        orphans += orphan
        if (parent, orphan) != (row.parent_key, row.orphan):
            changes.append({"b_key": row.key, "parent_key": parent, "orphan": orphan})
    if changes:
        db.execute(comments.update().where(comments.c.source_id == source_id,
                                           comments.c.key == sa.bindparam("b_key"))
                   .values(parent_key=sa.bindparam("parent_key"), orphan=sa.bindparam("orphan")), changes)
    return orphans


def _top_ancestor(key: str, declared: dict[str, str | None]) -> tuple[str | None, bool]:
    """(the top-level comment key threads it, whether it is shown top-level as an orphan)."""
    parent = declared.get(key)
    if parent is None:
        return None, False
    seen = {key}
    while True:
        if parent not in declared or parent in seen:
            return None, True                        # unknown parent, or a cycle: shown on its own
        grand = declared[parent]
        if grand is None or grand not in declared:
            return parent, False
        seen.add(parent)
        parent = grand


def _chunks(items: list[str], size: int = CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
