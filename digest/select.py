"""The summariser: discussions in, a Selection out. Pure: no database, no network.

A thread is a top-level comment and its replies. It scores for its own words (quotes,
URLs and signatures excluded) and for the replies it drew: how many, how long, from
how many people. Per post the best threads are shown, each with its best replies as a
short conversation; the best thread of the whole edition is the comment of the week.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from .config import Selection as Knobs
from .models import Comment, Discussion, Picks, Post
from .words import Context, is_link_only

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Said:
    """A comment as measured: its own words and why it may be dropped."""

    comment: Comment
    words: int
    dropped: str | None = None      # "removed" | "duplicate" | "link-only" | "short" | "excluded"


@dataclass(frozen=True)
class Thread:
    top: Said
    replies: list[Said]             # the ones shown, oldest first
    more_replies: int
    reply_count: int
    score: float
    parts: dict[str, float]
    pinned: bool = False


@dataclass(frozen=True)
class PostPick:
    post: Post
    section: str                    # "new" | "discussed"
    comments_total: int
    new_comments: int
    threads: list[Thread]


@dataclass(frozen=True)
class Selection:
    since: datetime
    until: datetime
    posts: list[PostPick]
    star: Thread | None = None
    star_post: Post | None = None
    dropped: dict[str, int] = field(default_factory=dict)

    def threads(self) -> list[tuple[Post, Thread]]:
        """Every shown thread with its post, best first (the star first of all)."""
        found = [(p.post, t) for p in self.posts for t in p.threads]
        found.sort(key=lambda pair: (-pair[1].pinned, -pair[1].score))
        star = [(self.star_post, self.star)] if self.star and self.star_post else []
        return star + found


def select(discussions: Iterable[Discussion], since: datetime, until: datetime,
           knobs: Knobs, picks: Picks = Picks()) -> Selection:
    """Choose the posts and threads of an edition covering [since, until)."""
    seen_texts: set[str] = set()
    dropped: dict[str, int] = {}
    picked = []
    for discussion in sorted(discussions, key=lambda d: d.post.published):
        pick = _pick_post(discussion, since, until, knobs, picks, seen_texts, dropped)
        if pick is not None:
            picked.append(pick)
    return _with_star(_ordered(picked), since, until, knobs, dropped)


def _ordered(picks: list[PostPick]) -> list[PostPick]:
    new = sorted((p for p in picks if p.section == "new"), key=lambda p: p.post.published, reverse=True)
    discussed = sorted((p for p in picks if p.section == "discussed"),
                       key=lambda p: (p.new_comments, p.post.published), reverse=True)
    return new + discussed


def _pick_post(discussion: Discussion, since: datetime, until: datetime, knobs: Knobs,
               picks: Picks, seen_texts: set[str], dropped: dict[str, int]) -> PostPick | None:
    post = discussion.post
    comments = sorted((c for c in discussion.comments if c.published < until), key=lambda c: c.published)
    new = sum(1 for c in comments if c.published >= since and not c.removed)
    is_new = since <= post.published < until and not post.stub
    if not is_new and new == 0:
        return None
    said = _measure(post, comments, knobs, picks, seen_texts)
    for item in said.values():
        if item.dropped:
            dropped[item.dropped] = dropped.get(item.dropped, 0) + 1
    threads = _threads(comments, said, since, knobs, picks)
    return PostPick(post, "new" if is_new else "discussed", len(comments), new, threads)


def _measure(post: Post, comments: list[Comment], knobs: Knobs, picks: Picks,
             seen_texts: set[str]) -> dict[str, Said]:
    context = Context([post.text])
    said = {}
    for comment in comments:
        own = context.own_words(comment.text)
        said[comment.key] = Said(comment, own, _drop_reason(comment, own, knobs, picks, seen_texts))
    return said


def _drop_reason(comment: Comment, own: int, knobs: Knobs, picks: Picks, seen_texts: set[str]) -> str | None:
    if comment.removed:
        return "removed"
    if comment.key in picks.excluded:
        return "excluded"
    normal = " ".join(comment.text.lower().split())
    if normal in seen_texts:
        return "duplicate"
    seen_texts.add(normal)
    if comment.key in picks.pinned:
        return None
    if is_link_only(comment.text):
        return "link-only"
    return "short" if own < knobs.min_words else None


def _threads(comments: list[Comment], said: dict[str, Said], since: datetime, knobs: Knobs,
             picks: Picks) -> list[Thread]:
    replies: dict[str, list[Said]] = {}
    for comment in comments:
        if comment.parent_key:
            replies.setdefault(comment.parent_key, []).append(said[comment.key])
    candidates = []
    for comment in comments:
        if comment.parent_key is None and said[comment.key].dropped is None:
            thread = _thread(said[comment.key], replies.get(comment.key, []), knobs, picks)
            if _active(thread, replies.get(comment.key, []), since) or thread.pinned:
                candidates.append(thread)
    candidates.sort(key=lambda t: (-t.pinned, -t.score, t.top.comment.published))
    return candidates


def _limit(threads: list[Thread], knobs: Knobs) -> list[Thread]:
    """Every pinned thread, then the best others up to threads_per_post."""
    pinned = [t for t in threads if t.pinned]
    return pinned + [t for t in threads if not t.pinned][:max(0, knobs.threads_per_post - len(pinned))]


def _active(thread: Thread, replies: list[Said], since: datetime) -> bool:
    """A thread belongs to the period if it began in it or drew a reply in it."""
    return thread.top.comment.published >= since or any(r.comment.published >= since for r in replies)


def _thread(top: Said, replies: list[Said], knobs: Knobs, picks: Picks) -> Thread:
    valid = [r for r in replies if r.dropped not in ("removed", "excluded", "duplicate")]
    shown = _best_replies(valid, knobs, picks)
    parts = _score_parts(top, valid, knobs)
    pinned = top.comment.key in picks.pinned or any(r.comment.key in picks.pinned for r in replies)
    return Thread(top, shown, len(valid) - len(shown), len(valid), round(sum(parts.values()), 2), parts, pinned)


def _best_replies(valid: list[Said], knobs: Knobs, picks: Picks) -> list[Said]:
    showable = [r for r in valid if r.dropped is None]
    ranked = sorted(showable, key=lambda r: (-(r.comment.key in picks.pinned), -r.words, r.comment.published))
    keep = {r.comment.key for r in ranked[:knobs.replies_per_thread]}
    keep |= {r.comment.key for r in showable if r.comment.key in picks.pinned}
    return [r for r in showable if r.comment.key in keep]


def _score_parts(top: Said, replies: list[Said], knobs: Knobs) -> dict[str, float]:
    cap = knobs.max_counted_words
    reply_words = sum(min(r.words, cap) for r in replies)
    return {
        "words": round(knobs.words_weight * min(top.words, cap) / 100, 2),
        "replies": round(knobs.reply_weight * len(replies), 2),
        "reply_words": round(knobs.reply_words_weight * reply_words / 100, 2),
        "repliers": round(knobs.replier_weight * _repliers(top, replies), 2),
    }


def _repliers(top: Said, replies: list[Said]) -> int:
    """Distinct people who replied. Anonymous replies cannot be told apart: each counts
    as one person; a named author counts once, and not when answering themselves."""
    author = top.comment.author.lower()
    named = {r.comment.author.lower() for r in replies if r.comment.author.lower() not in (ANONYMOUS, author)}
    return len(named) + sum(1 for r in replies if r.comment.author.lower() == ANONYMOUS)


def _with_star(posts: list[PostPick], since: datetime, until: datetime, knobs: Knobs,
               dropped: dict[str, int]) -> Selection:
    """The best thread of the edition (a pinned one first) moves to the top as the star;
    each post then keeps its best threads besides it."""
    candidates = [(pick, thread) for pick in posts for thread in pick.threads]
    star_pick, star = (None, None)
    if knobs.comment_of_the_week and candidates:
        star_pick, star = max(candidates, key=lambda pair: (pair[1].pinned, pair[1].score))
    limited = [replace(p, threads=_limit([t for t in p.threads if t is not star], knobs)) for p in posts]
    return Selection(since, until, limited, star, star_pick.post if star_pick else None, dropped)
