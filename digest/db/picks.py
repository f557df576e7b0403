"""The editor's picks: comments pinned or excluded for the next edition of a list, and
the look-ups an editor picks with (a comment of a period, found by author or words)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..models import PickAction
from .guard import guarded
from .tables import comments, picks, posts

SEARCH_LIMIT = 30
MAX_TERMS = 8
OPENING_WORDS = 12
OPENING_CHARS = 90


@dataclass(frozen=True)
class CommentBrief:
    """A stored comment as an editor recognises it (plain text, as stored: escape it)."""

    key: str
    author: str
    published: datetime
    url: str
    text: str
    post_title: str
    removed: bool
    reply: bool

    @property
    def opening(self) -> str:
        """The first words, on one line, without control characters (for a terminal too)."""
        return first_words(self.text)


@guarded
class PickStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def set(self, list_name: str, comment_key: str, action: PickAction, when: datetime) -> None:
        """Pin or exclude a comment for the next edition of a list (replacing an earlier pick)."""
        with self.engine.begin() as db:
            db.execute(picks.delete().where(picks.c.list_name == list_name, picks.c.comment_key == comment_key,
                                            picks.c.used_at.is_(None)))
            db.execute(picks.insert().values(list_name=list_name, comment_key=comment_key,
                                             action=action.value, created_at=when))

    def clear(self, list_name: str, comment_key: str | None = None) -> int:
        query = picks.delete().where(picks.c.list_name == list_name, picks.c.used_at.is_(None))
        if comment_key is not None:
            query = query.where(picks.c.comment_key == comment_key)
        with self.engine.begin() as db:
            return db.execute(query).rowcount

    def waiting(self, list_name: str) -> dict[str, PickAction]:
        """{comment key: action} waiting for the next edition of a list, oldest first."""
        query = sa.select(picks.c.comment_key, picks.c.action).where(
            picks.c.list_name == list_name, picks.c.used_at.is_(None)).order_by(picks.c.created_at, picks.c.id)
        with self.engine.connect() as db:
            return {r.comment_key: PickAction(r.action) for r in db.execute(query)}

    def use(self, list_name: str, when: datetime) -> None:
        """The picks went into an edition: they no longer apply to the next one."""
        with self.engine.begin() as db:
            db.execute(picks.update().where(picks.c.list_name == list_name, picks.c.used_at.is_(None))
                       .values(used_at=when))

    def comment_exists(self, key: str) -> bool:
        with self.engine.connect() as db:
            return db.execute(sa.select(comments.c.id).where(comments.c.key == key).limit(1)).first() is not None

    # ---------------------------------------------------------------- finding comments to pick

    def briefs(self, keys: Iterable[str]) -> dict[str, CommentBrief]:
        """{key: the comment with its post's title} for the stored ones among keys."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with self.engine.connect() as db:
            rows = db.execute(_brief_query().where(comments.c.key.in_(wanted))).all()
        return {row.key: _brief(row) for row in rows}

    def in_period(self, key: str, since: datetime, until: datetime) -> bool:
        """Whether the comment belongs to [since, until): written in it, or the top comment
        of a thread that drew a reply in it (a thread belongs to the period it is active in);
        never a comment written after the period, removed, or deleted from the blog."""
        me = comments.alias("me")
        thread = sa.func.coalesce(me.c.parent_key, me.c.key)
        active = (sa.select(comments.c.id).where(
            comments.c.source_id == me.c.source_id, comments.c.deleted.is_(False),
            sa.or_(comments.c.key == thread, comments.c.parent_key == thread),
            comments.c.published >= since, comments.c.published < until).exists())
        query = sa.select(me.c.id).where(me.c.key == key, me.c.published < until, me.c.removed.is_(False),
                                         me.c.deleted.is_(False), active).limit(1)
        with self.engine.connect() as db:
            return db.execute(query).first() is not None

    def search(self, since: datetime, until: datetime, words: str, limit: int = SEARCH_LIMIT) -> list[CommentBrief]:
        """Comments written in [since, until) whose author or text holds every word given
        (any case), oldest first."""
        query = _brief_query().where(comments.c.published >= since, comments.c.published < until,
                                     comments.c.removed.is_(False), comments.c.deleted.is_(False))
        for term in words.split()[:MAX_TERMS]:
            pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(sa.or_(comments.c.author.ilike(pattern, escape="\\"),
                                       comments.c.text.ilike(pattern, escape="\\")))
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(comments.c.published).limit(limit)).all()
        return [_brief(row) for row in rows]

    def latest_activity(self, before: datetime) -> datetime | None:
        """When the newest comment or post stored before `before` was written (None: nothing)."""
        newest_comment = sa.select(sa.func.max(comments.c.published)).where(
            comments.c.published < before, comments.c.deleted.is_(False))
        newest_post = sa.select(sa.func.max(posts.c.published)).where(
            posts.c.published < before, posts.c.stub.is_(False))
        with self.engine.connect() as db:
            found = [db.execute(newest_comment).scalar(), db.execute(newest_post).scalar()]
        present = [moment for moment in found if moment is not None]
        return max(present) if present else None


def _brief_query() -> sa.Select:
    return (sa.select(comments.c.key, comments.c.author, comments.c.published, comments.c.url, comments.c.text,
                      comments.c.removed, comments.c.parent_key, posts.c.title)
            .outerjoin(posts, sa.and_(posts.c.source_id == comments.c.source_id, posts.c.key == comments.c.post_key)))


def _brief(row: sa.Row) -> CommentBrief:
    return CommentBrief(row.key, row.author, row.published, row.url, row.text, row.title or "", row.removed,
                        row.parent_key is not None)


def first_words(text: str, words: int = OPENING_WORDS, chars: int = OPENING_CHARS) -> str:
    """'I think the first words of it…': at most `words` words and `chars` characters."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    kept = clean.split()
    opening = " ".join(kept[:words])
    if len(opening) > chars:
        opening = opening[:chars].rsplit(" ", 1)[0] if " " in opening[:chars] else opening[:chars]
    return opening + ("\u2026" if opening != " ".join(kept) else "")
