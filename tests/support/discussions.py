"""Plain Post and Comment objects for testing the summariser without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from digest.models import Comment, Discussion, Post

SINCE = datetime(2017, 10, 25, tzinfo=UTC)
UNTIL = datetime(2017, 11, 1, tzinfo=UTC)
_ids = itertools.count(1000)
_ticks = itertools.count(1)   # seconds: every new comment is later than the one before

LOREM = ("Probation officers describe caseloads that keep growing while the support around them "
         "shrinks and the reorganisations never seem to end for anyone working on the front line").split()


def text(words: int, seed: int = 0) -> str:
    """`words` words that do not repeat an 8-word run of another call with another seed."""
    out = [f"{LOREM[(i * 7 + seed) % len(LOREM)]}{seed}x{i // len(LOREM)}" + ("." if i % 12 == 11 else "")
           for i in range(words)]
    return " ".join(out).rstrip(".") + "."


def post(title: str = "A post", published: datetime = SINCE + timedelta(days=1), body: str = "The post body.",
         stub: bool = False) -> Post:
    key = str(next(_ids))
    return Post(key=key, title=title, url=f"https://blog.example/{key}.html", published=published,
                updated=published, author="Jim", html="", text=body, comments_total=None,
                comments_feed=None, stub=stub)


def comment(on: Post, body: str, at: datetime | None = None, parent: Comment | None = None,
            author: str = "Anonymous", removed: bool = False, key: str | None = None) -> Comment:
    key = key or str(next(_ids))
    when = at or (parent.published if parent else on.published) + timedelta(seconds=next(_ticks))
    return Comment(key=key, post_key=on.key, author=author, author_uri=None, published=when,
                   updated=when, url=f"{on.url}?showComment=1#c{key}", html="", text="" if removed else body,
                   removed=removed, parent_key=parent.key if parent else None)


def discussion(p: Post, *comments: Comment) -> Discussion:
    return Discussion(p, list(comments))
