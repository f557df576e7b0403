"""A Selection as the subscriber sees it: plain dicts for the templates and for JSON.

Everything here is plain text (templates escape it) and every link is http(s) or
replaced. `max_words` shortens long comments at a sentence boundary; `keep` limits
the threads shown (the star always stays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..models import Comment, Post
from ..pick.conversation import Link
from ..pick.paste import is_quotation
from ..pick.select import Said, Selection, Thread

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'’”)]*\s+|\n\n+")
EXCERPT_WORDS = 45
MAX_TITLE = 200          # characters: a feed controls titles, names and words, so lengths are capped
MAX_NAME = 100
CHARS_PER_WORD = 12      # a comment of N words shows at most N * this many characters


@dataclass(frozen=True)
class Trim:
    """How much to show: comment length in words (None = whole) and which threads."""

    max_words: int | None = None
    keep: frozenset[int] | None = None     # ids of threads to keep; None = all
    collapse: int = 0                      # the least discussed posts shown as a link only...
    hide: int = 0                          # ...and of those, how many only counted
    max_replies: int | None = None         # replies a thread shows at most; the best kept (None = all)


def build(selection: Selection, trim: Trim, site_url: str | None, zone: Any) -> dict[str, Any]:
    """The template context (also the body of `preview --format json`)."""
    fallback = _safe_url(site_url, "#")
    star = None
    if selection.star is not None and selection.star_post is not None:
        star = {"post": _post_head(selection.star_post, fallback),
                "thread": _marked(_thread(selection.star, selection.star_post, trim, fallback, zone,
                                          selection.star_key), selection.star_key)}
    shown, collapsed = _split_posts(selection, trim)
    posts = [{**_post(pick, trim, fallback, zone), "anchor": f"post-{n}"} for n, pick in enumerate(shown, 1)]
    links = [_post_head(pick.post, fallback) for pick in collapsed[trim.hide:]]
    full = [p for p in posts if p["new_comments"] or p["threads"]]
    return {
        "star": star,
        "posts": posts,
        "sections": [s for s in (_section("New posts", full, "new"),
                                 _section("Still being discussed", full, "discussed")) if s["posts"]],
        "also_new": [p for p in posts if not (p["new_comments"] or p["threads"])],
        "more_posts": links,
        "more_count": min(trim.hide, len(collapsed)),
    }


def _split_posts(selection: Selection, trim: Trim) -> tuple[list[Any], list[Any]]:
    """(posts shown in full, in their order; posts collapsed, least discussed first)."""
    if not trim.collapse:
        return list(selection.posts), []
    ranked = sorted(selection.posts, key=lambda p: (p.new_comments, p.comments_total, p.post.published))
    collapsed = ranked[:trim.collapse]
    gone = {id(p) for p in collapsed}
    return [p for p in selection.posts if id(p) not in gone], collapsed


def thread_ids(selection: Selection) -> list[int]:
    """Thread ids, lowest ranked first (the order in which they are dropped)."""
    ranked = [t for _, t in selection.threads() if t is not selection.star]
    return [id(t) for t in sorted(ranked, key=lambda t: (t.pinned, t.score))]


def _section(title: str, posts: list[dict[str, Any]], section: str) -> dict[str, Any]:
    return {"title": title, "posts": [p for p in posts if p["section"] == section]}


def _post_head(post: Post, fallback: str) -> dict[str, Any]:
    return {"id": post.key, "title": _cap(post.title, MAX_TITLE), "url": _safe_url(post.url, fallback)}


def _post(pick: Any, trim: Trim, fallback: str, zone: Any) -> dict[str, Any]:
    post = pick.post
    threads = [t for t in pick.threads if trim.keep is None or id(t) in trim.keep]
    return {
        **_post_head(post, fallback),
        "published": post.published.isoformat(),
        "comments_total": pick.comments_total,
        "new_comments": pick.new_comments,
        "section": pick.section,
        "meta": _meta(pick, zone),
        "day": _day(post.published, zone),
        "excerpt": "" if post.stub else shorten(post.text, EXCERPT_WORDS)[0].replace("\n\n", " "),
        "threads": [_thread(t, post, trim, fallback, zone) for t in threads],
    }


def _meta(pick: Any, zone: Any) -> str:
    count = f"{pick.comments_total} comment{'s' if pick.comments_total != 1 else ''}"
    if pick.section == "discussed":
        return f"{pick.new_comments} new in this period, {count} in all"
    return f"{_day(pick.post.published, zone)} · {count}"


def _reply_words(max_words: int | None) -> int | None:
    """Replies are read for their point: two thirds of a top comment's length (the
    comment of the week, a reply or not, has the whole)."""
    return None if max_words is None else max(1, max_words * 2 // 3)


def _thread(thread: Thread, post: Post, trim: Trim, fallback: str, zone: Any,
            star_key: str | None = None) -> dict[str, Any]:
    post_url = _safe_url(post.url, fallback)
    top = _comment(thread.top, trim, post_url, zone)
    return {
        "score": thread.score,
        "score_parts": dict(thread.parts),
        "pinned": thread.pinned,
        "why": _why(thread),
        "url": top["url"],
        "comment": top,
        "replies": [_comment(r, trim, post_url, zone, reply=r.comment.key != star_key)
                    for r in _fewer(thread.replies, trim.max_replies)],
        "more_replies": thread.more_replies + len(thread.replies) - len(_fewer(thread.replies, trim.max_replies)),
    }


def _comment(said: Said, trim: Trim, post_url: str, zone: Any, reply: bool = False) -> dict[str, Any]:
    comment: Comment = said.comment
    text, trimmed = _own_first(comment.text, _reply_words(trim.max_words) if reply else trim.max_words)
    return {
        "id": comment.key,
        "author": _cap(comment.author, MAX_NAME),
        "in_reply_to": _cap(comment.reply_to, MAX_NAME) if comment.reply_to else "",
        "published": comment.published.isoformat(),
        "when": _when(comment.published, zone),
        "url": _safe_url(comment.url, post_url),
        "words": said.words,
        "text": text,
        "paragraphs": [p for p in text.split("\n\n") if p.strip()],
        "trimmed": trimmed,
        "score": said.score,
        "score_parts": dict(said.parts),
        "answers": comment.answers,
        "links": [_link(link) for link in said.links],
    }


def _fewer(replies: list[Said], most: int | None) -> list[Said]:
    """At most `most` replies: the best scoring, in the order they were written."""
    if most is None or len(replies) <= most:
        return replies
    best = {id(r) for r in sorted(replies, key=lambda r: -r.score)[:most]}
    return [r for r in replies if id(r) in best]


def _marked(thread: dict[str, Any], star_key: str | None) -> dict[str, Any]:
    """The star's thread, the comment of the week itself marked (`star`) among its comments."""
    return {**thread, "star_id": star_key, "comment": _star(thread["comment"], star_key),
            "replies": [_star(r, star_key) for r in thread["replies"]]}


def _star(comment: dict[str, Any], star_key: str | None) -> dict[str, Any]:
    return {**comment, "star": comment["id"] == star_key}


def _link(link: Link) -> dict[str, Any]:
    """An inferred answer, as the editor and the JSON show it: who answers whom, and why."""
    return {"from": link.source, "to": link.target, "kind": link.kind, "evidence": link.evidence,
            "confidence": link.confidence}


def _why(thread: Thread) -> str:
    parts = ", ".join(f"{name.replace('_', ' ')} {value:g}" for name, value in thread.parts.items())
    pinned = "pinned by the editor; " if thread.pinned else ""
    return f"{pinned}score {thread.score:g} ({parts}); {thread.top.words} own words, {thread.reply_count} replies"


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


QUOTE_WORDS = 15          # a comment that opens by quoting another keeps this much of the quote


def _own_first(text: str, max_words: int | None) -> tuple[str, bool]:
    """Shortened so that a comment opening with a quotation shows its own answer: the
    quote is cut to QUOTE_WORDS, and the words allowed go to what follows it."""
    opening, _, rest = text.partition("\n\n")
    if max_words is None or len(text.split()) <= max_words or not rest.strip() or not is_quotation(opening):
        return shorten(text, max_words)
    quote, cut_quote = shorten(opening, QUOTE_WORDS)
    if cut_quote and opening.rstrip()[-1:] in "\"”»“":
        quote += opening.rstrip()[-1]                 # the quotation still closes
    answer, cut_answer = shorten(rest, max_words)
    return f"{quote}\n\n{answer}", cut_quote or cut_answer


def shorten(text: str, max_words: int | None) -> tuple[str, bool]:
    """Cut text to at most max_words words at a sentence end, and to at most
    max_words * CHARS_PER_WORD characters (a "word" from a feed may be 300 kB);
    (text, whether cut)."""
    if max_words is None:
        return text, False
    short, cut = _by_words(text, max_words)
    limit = max_words * CHARS_PER_WORD
    if len(short) > limit:
        return short[:limit].rstrip() + " …", True
    return short, cut


def _by_words(text: str, max_words: int) -> tuple[str, bool]:
    if len(text.split()) <= max_words:
        return text, False
    kept, count = [], 0
    for sentence in _sentences(text):
        size = len(sentence.split())
        if count + size > max_words:
            break
        kept.append(sentence)
        count += size
    if not kept:  # one enormous sentence: cut between words
        return " ".join(text.split()[:max_words]) + " …", True
    return "".join(kept).rstrip() + " …", True


def _sentences(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [p for p in pieces if p]


def _safe_url(url: str | None, fallback: str) -> str:
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return fallback


def _when(moment: datetime, zone: Any) -> str:
    local = moment.astimezone(zone)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


def _day(moment: datetime, zone: Any) -> str:
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y}"
