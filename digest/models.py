"""Plain objects handed from one phase to the next (parse -> store -> select)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Post:
    """One blog post as read from a feed. `key` is the source's own id for it."""

    key: str
    title: str
    url: str
    published: datetime
    updated: datetime
    author: str
    html: str                       # sanitised
    text: str                       # plain text of html, for measuring and for text email
    comments_total: int | None      # thr:total / slash:comments; None when the feed says nothing
    comments_feed: str | None       # where this post's own comments are read from
    stub: bool = False              # known only from a comment pointing at it


@dataclass(frozen=True)
class Comment:
    """One comment. `parent_key` is the comment it answers as the feed declares it."""

    key: str
    post_key: str
    author: str
    author_uri: str | None
    published: datetime
    updated: datetime
    url: str
    html: str                       # sanitised; empty for a removed comment
    text: str
    removed: bool = False
    parent_key: str | None = None
    post_url: str | None = None     # from thr:in-reply-to href, to make a stub post


@dataclass
class FeedPage:
    """What one fetched page of a feed yields."""

    posts: list[Post] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    next_url: str | None = None
    total: int | None = None        # openSearch:totalResults
    feed_url: str | None = None     # the feed's own address, without paging
    warning: str | None = None      # set when the XML was malformed but partly readable


@dataclass
class SourceReport:
    """The outcome of fetching one source: one summary line of `digest fetch`."""

    source: str
    posts_new: int = 0
    posts_updated: int = 0
    comments_new: int = 0
    comments_updated: int = 0
    orphans: int = 0
    requests: int = 0
    not_modified: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: FAILED: {self.error}"
        line = (f"{self.source}: posts {self.posts_new} new, {self.posts_updated} updated; "
                f"comments {self.comments_new} new, {self.comments_updated} updated; "
                f"{self.requests} requests, {self.not_modified} not modified")
        if self.orphans:
            line += f"; {self.orphans} orphan replies shown top-level"
        return line
