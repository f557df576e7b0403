"""The summariser: discussions in, a Selection out. Pure: no database, no network.

A thread is a top-level comment and its replies. It scores for its own words (quotes,
URLs and signatures excluded) and for the replies it drew: how many, how long, from
how many people. Per post the best threads are shown. Inside a thread, replies are
chosen by substance: each comment scores for its own words and for the responses it
drew (conversation.py infers who answers whom) from how many people, and for being
quoted. The best comment of the whole edition (top-level or reply) is the comment of
the week; its thread shows more of the conversation.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

from ..config import Selection as Knobs
from ..models import Comment, Discussion, Picks, Post
from . import conversation
from .conversation import Link
from .paste import is_paste, pasted_words
from .rules import STAR_MIN_WORDS, never_shown
from .tags import untagged
from .words import Context, is_link_only, strip_noise, words

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Said:
    """A comment as measured: its own words and why it may be dropped."""

    comment: Comment
    words: int
    dropped: str | None = None      # "removed" | "duplicate" | "link-only" | "short" | "excluded"
    score: float = 0.0              # as a contribution: own words, responses drawn, responders, quoted by
    parts: dict[str, float] = field(default_factory=dict)
    links: tuple[Link, ...] = ()    # the inferred answers it took part in (as source or target)
    pasted: bool = False            # mostly somebody else's words (pick.paste): shown, never crowned


@dataclass(frozen=True)
class Thread:
    top: Said
    replies: list[Said]             # the ones shown, oldest first
    more_replies: int
    reply_count: int
    score: float
    parts: dict[str, float]
    pinned: bool = False
    every: tuple[Said, ...] = field(default=(), repr=False)   # all its valid replies, shown or not


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
    star_key: str | None = None     # the comment of the week itself, inside the star thread

    def threads(self) -> list[tuple[Post, Thread]]:
        """Every shown thread with its post, best first (the star first of all)."""
        found = [(p.post, t) for p in self.posts for t in p.threads]
        found.sort(key=lambda pair: (-pair[1].pinned, -pair[1].score))
        star = [(self.star_post, self.star)] if self.star and self.star_post else []
        return star + found


def select(discussions: Iterable[Discussion], since: datetime, until: datetime,
           knobs: Knobs, picks: Picks = Picks(), zone: tzinfo = UTC) -> Selection:
    """Choose the posts and threads of an edition covering [since, until)."""
    seen_texts: set[str] = set()
    dropped: dict[str, int] = {}
    picked = []
    for discussion in sorted(discussions, key=lambda d: d.post.published):
        pick = _pick_post(discussion, since, until, knobs, picks, seen_texts, dropped, zone)
        if pick is not None:
            picked.append(pick)
    return _with_star(_ordered(picked), since, until, knobs, picks, dropped, zone)


def thread_scores(discussions: Iterable[Discussion], since: datetime, until: datetime, knobs: Knobs,
                  zone: tzinfo = UTC) -> dict[str, float]:
    """The score the weights give every thread of the period, shown or not, by the key of
    its top comment (what `digest tune` compares with what subscribers clicked)."""
    seen_texts: set[str] = set()
    scores: dict[str, float] = {}
    for discussion in sorted(discussions, key=lambda d: d.post.published):
        pick = _pick_post(discussion, since, until, knobs, Picks(), seen_texts, {}, zone)
        if pick is not None:
            scores.update((thread.top.comment.key, thread.score) for thread in pick.threads)
    return scores


def _ordered(picks: list[PostPick]) -> list[PostPick]:
    new = sorted((p for p in picks if p.section == "new"), key=lambda p: p.post.published, reverse=True)
    discussed = sorted((p for p in picks if p.section == "discussed"),
                       key=lambda p: (p.new_comments, p.post.published), reverse=True)
    return new + discussed


def _pick_post(discussion: Discussion, since: datetime, until: datetime, knobs: Knobs,
               picks: Picks, seen_texts: set[str], dropped: dict[str, int], zone: tzinfo) -> PostPick | None:
    post = discussion.post
    comments = sorted((c for c in discussion.comments if c.published < until), key=lambda c: c.published)
    new = sum(1 for c in comments if c.published >= since and not c.removed)
    is_new = since <= post.published < until and not post.stub
    if not is_new and new == 0:
        return None
    said = _scored(_measure(post, comments, knobs, picks, seen_texts), post, zone, knobs)
    for item in said.values():
        if item.dropped:
            dropped[item.dropped] = dropped.get(item.dropped, 0) + 1
    threads = _threads(comments, said, since, knobs, picks, zone)
    return PostPick(post, "new" if is_new else "discussed", len(comments), new, threads)


def _measure(post: Post, comments: list[Comment], knobs: Knobs, picks: Picks,
             seen_texts: set[str]) -> dict[str, Said]:
    context = Context([post.text])
    said = {}
    for comment in comments:
        said[comment.key] = _said(comment, post, context, knobs, picks, seen_texts)
    return said


def _said(comment: Comment, post: Post, context: Context, knobs: Knobs, picks: Picks,
          seen_texts: set[str]) -> Said:
    """A comment measured: its own words leave out what it repeats and what it pastes (a
    paste is shown as context, dropped only as anything else is, never crowned)."""
    unrepeated = context.own_words(comment.text)
    total = len(words(strip_noise(comment.text)))
    own = max(0, min(unrepeated, total - pasted_words(comment.text)))
    dropped = _drop_reason(comment, unrepeated, knobs, picks, seen_texts)
    if dropped is None and comment.key not in picks.pinned:
        dropped = never_shown(comment, post, own, answering=_answers_someone(comment))
    return Said(comment, own, dropped, pasted=is_paste(total, own))


def _answers_someone(comment: Comment) -> bool:
    """It answers an earlier comment: a reply in the feed, or it opens with a reply tag."""
    return comment.parent_key is not None or untagged(comment.text) != comment.text.strip()


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
             picks: Picks, zone: tzinfo) -> list[Thread]:
    replies: dict[str, list[Said]] = {}
    for comment in comments:
        if comment.parent_key:
            replies.setdefault(comment.parent_key, []).append(said[comment.key])
    candidates = []
    bar = _extra_bar(said)
    for comment in comments:
        if comment.parent_key is None and said[comment.key].dropped is None:
            thread = _thread(said[comment.key], replies.get(comment.key, []), knobs, picks, bar, zone=zone)
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


def _thread(top: Said, replies: list[Said], knobs: Knobs, picks: Picks, bar: float = float("inf"),
            depth: int | None = None, must: frozenset[str] = frozenset(), zone: tzinfo = UTC) -> Thread:
    valid = [r for r in replies if r.dropped not in ("removed", "excluded", "duplicate")]
    shown = _best_replies(valid, knobs, picks, bar, knobs.replies_per_thread if depth is None else depth, must)
    parts = _score_parts(top, valid, knobs)
    pinned = top.comment.key in picks.pinned or any(r.comment.key in picks.pinned for r in replies)
    return Thread(top, _named(shown, top, zone), len(valid) - len(shown), len(valid), round(sum(parts.values()), 2),
                  parts, pinned, tuple(valid))


def _best_replies(valid: list[Said], knobs: Knobs, picks: Picks, bar: float, depth: int,
                  must: frozenset[str]) -> list[Said]:
    """The best replies by their score as contributions (pinned and `must` first), shown in
    the order they were written; one more when it scores well above the post's others."""
    showable = [r for r in valid if r.dropped is None]
    ranked = sorted(showable, key=lambda r: (-(r.comment.key in picks.pinned or r.comment.key in must),
                                             -r.score, r.comment.published))
    keep = {r.comment.key for r in ranked[:depth]}
    keep |= {r.comment.key for r in showable if r.comment.key in picks.pinned or r.comment.key in must}
    extra = [r for r in ranked[depth:] if r.score >= bar][:1]
    keep |= {r.comment.key for r in extra}
    return [r for r in showable if r.comment.key in keep]


def _extra_bar(said: dict[str, Said]) -> float:
    """A reply beyond replies_per_thread is shown when it scores at least twice the
    median reply of the post (and is worth something on its own)."""
    scores = [s.score for s in said.values() if s.comment.parent_key and s.dropped is None]
    return max(2.0, 2 * statistics.median(scores)) if len(scores) >= 3 else float("inf")


def _named(shown: list[Said], top: Said, zone: tzinfo) -> list[Said]:
    """A reply that answers someone other than the thread's top comment says whom."""
    by_key = {s.comment.key: s for s in (top, *shown)}
    return [_answering(s, by_key, top, zone) for s in shown]


def _answering(reply: Said, by_key: dict[str, Said], top: Said, zone: tzinfo) -> Said:
    if reply.comment.reply_to:
        return reply
    links = conversation.answered(link for link in reply.links if link.source == reply.comment.key).get(
        reply.comment.key, [])
    targets = [by_key[link.target] for link in links if link.target in by_key]
    if not targets or any(t is top for t in targets):
        return reply
    target = targets[-1].comment
    name = target.author or "Anonymous"
    if conversation.person(target).startswith("#"):           # anonymous: say which one, by its time
        name = f"{name} at {target.published.astimezone(zone):%H:%M}"
    return replace(reply, comment=replace(reply.comment, reply_to=name, answers=target.key))


# ------------------------------------------------------------------ comments as contributions

def _scored(said: dict[str, Said], post: Post, zone: tzinfo, knobs: Knobs) -> dict[str, Said]:
    """Each comment with its links and its score as a contribution."""
    live = [s.comment for s in said.values() if s.dropped not in ("removed", "excluded", "duplicate")]
    links = conversation.infer(live, post.text, zone)
    answers = conversation.answered(links)
    responses: dict[str, list[Comment]] = {}
    for item in said.values():
        if item.dropped is None:                        # a response of substance: not a dropped one
            for target in _answers(item.comment, answers):
                responses.setdefault(target, []).append(item.comment)
    touching: dict[str, list[Link]] = {}
    for link in links:
        touching.setdefault(link.source, []).append(link)
        touching.setdefault(link.target, []).append(link)
    quoted: dict[str, int] = {}
    for link in links:
        if link.kind == conversation.QUOTE:
            quoted[link.target] = quoted.get(link.target, 0) + 1
    return {key: _contribution(item, responses.get(key, []), quoted.get(key, 0), touching.get(key, []), knobs)
            for key, item in said.items()}


def _answers(comment: Comment, answers: dict[str, list[Link]]) -> list[str]:
    """The comments this one answers: inferred, else its thread's top comment."""
    links = answers.get(comment.key)
    if links:
        return [link.target for link in links]
    return [comment.parent_key] if comment.parent_key else []


def _contribution(item: Said, responses: list[Comment], quoted: int, links: list[Link], knobs: Knobs) -> Said:
    own = conversation.person(item.comment)
    others = [c for c in responses if conversation.person(c) != own]
    parts = {
        "own_words": round(knobs.words_weight * min(item.words, knobs.max_counted_words) / 100, 2),
        "responses": round(knobs.response_weight * len(others), 2),
        "responders": round(knobs.responder_weight * len({conversation.person(c) for c in others}), 2),
        "quoted_by": round(knobs.quoted_weight * quoted, 2),
    }
    return replace(item, score=round(sum(parts.values()), 2), parts=parts, links=tuple(links))


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


def _with_star(posts: list[PostPick], since: datetime, until: datetime, knobs: Knobs, picks: Picks,
               dropped: dict[str, int], zone: tzinfo) -> Selection:
    """The best comment of the edition (a pinned one first), top-level or reply, is the
    comment of the week: its thread moves to the top and shows more of the conversation
    (the comment it answers, the responses it drew, then the best others up to
    star_replies); each post then keeps its best threads besides it."""
    found = _star_comment(posts, since, picks) if knobs.comment_of_the_week else None
    if found is None:
        return Selection(since, until, [replace(p, threads=_limit(p.threads, knobs)) for p in posts],
                         dropped=dropped)
    star_pick, thread, comment = found
    star = _deeper(thread, comment, knobs, picks, zone)
    limited = [replace(p, threads=_limit([t for t in p.threads if t is not thread], knobs)) for p in posts]
    return Selection(since, until, limited, star, star_pick.post, dropped, comment.comment.key)


def _star_comment(posts: list[PostPick], since: datetime, picks: Picks) -> tuple[PostPick, Thread, Said] | None:
    candidates = [(pick, thread, said) for pick in posts for thread in pick.threads
                  for said in (thread.top, *_all_replies(thread)) if said.dropped is None
                  and (said.comment.published >= since or said.comment.key in picks.pinned)
                  and (said.comment.key in picks.pinned or (not said.pasted and said.words >= STAR_MIN_WORDS))]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c[2].comment.key in picks.pinned, c[1].pinned and c[2] is c[1].top,
                                          c[2].score, -c[2].comment.published.timestamp()))


def _all_replies(thread: Thread) -> list[Said]:
    return list(thread.every or thread.replies)


def _deeper(thread: Thread, star: Said, knobs: Knobs, picks: Picks, zone: tzinfo) -> Thread:
    """The star's thread as a conversation of up to star_replies replies: the star and
    what it answers first, then the best reply and the best response it drew, the next
    best and its response, and so on."""
    showable = {r.comment.key: r for r in _all_replies(thread) if r.dropped is None}
    chosen: list[str] = [k for k in (star.comment.key, *_targets(star)) if k in showable]
    ranked = sorted(showable.values(), key=lambda r: (-r.score, r.comment.published))
    for reply in ranked:
        for key in (reply.comment.key, *_best_response(reply, showable)):
            if len(chosen) < knobs.star_replies and key not in chosen:
                chosen.append(key)
    return _thread(thread.top, _all_replies(thread), knobs, picks, depth=0, must=frozenset(chosen), zone=zone)


def _targets(said: Said) -> list[str]:
    return [link.target for link in said.links if link.source == said.comment.key and link.confidence >= 0.5]


def _best_response(said: Said, showable: dict[str, Said]) -> list[str]:
    """The best-scoring reply that answers this one, if any."""
    answering = [showable[link.source] for link in said.links
                 if link.target == said.comment.key and link.confidence >= 0.5 and link.source in showable]
    return [max(answering, key=lambda r: r.score).comment.key] if answering else []
