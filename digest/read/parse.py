"""Feed bytes -> plain Post and Comment objects, for Blogger, WordPress and plain feeds.

feedparser only ever gets bytes (fetching is fetch.py's job). Its own sanitiser is
switched off: every piece of HTML goes through sanitize.clean_html instead, once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import xml.etree.ElementTree as ET
from calendar import timegm
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import feedparser

from ..models import Comment, FeedPage, Post
from ..sanitize import clean_html, plain_text, to_text
from . import blogger_atom
from .errors import FeedError

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
GD_PROPERTY = "{http://schemas.google.com/g/2005}extendedProperty"
REMOVED_MARKER = b"blogger.contentRemoved"
_BLOGGER_ID = re.compile(r"\.post-(\d+)$")
_WP_POST_ID = re.compile(r"[?&]p=(\d+)")
_WP_COMMENT_ID = re.compile(r"#comment-(\d+)$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_KEY = 200
T = TypeVar("T")


def read(content: bytes, url: str, headers: dict[str, str] | None = None) -> feedparser.FeedParserDict:
    """Parse feed bytes; raise FeedError when they hold no feed at all. The links digest
    uses are resolved later against the document's address (Content-Location, else the
    URL it came from); feedparser itself applies xml:base. Its whole-content resolution
    stays off: it costs about 40%."""
    try:
        parsed = _feedparser(content, url, headers)
    except UnicodeError:               # a character reference to a lone surrogate (&#xD800;) stops feedparser
        parsed = _feedparser(_SURROGATE_REFS.sub(b"&#xFFFD;", content), url, headers)
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(f"{url}: not a feed ({_what_it_is(content, headers)}); "
                        "point the source at the blog's RSS or Atom feed")
    parsed["digest_base"] = _document_base(url, headers)
    return parsed


def _document_base(url: str, headers: dict[str, str] | None) -> str:
    """The address a document's links are relative to: its Content-Location made
    absolute, or the URL it came from when there is none or it is broken (`http://[::1`)."""
    try:
        return urljoin(url, (headers or {}).get("content-location", "").strip())
    except ValueError:                  # "Invalid IPv6 URL", a bad port: the header is the server's mistake
        return url


_SURROGATE_REFS = re.compile(rb"&#[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2};|&#0*5[5-7][0-9]{3};")


def _feedparser(content: bytes, url: str, headers: dict[str, str] | None) -> feedparser.FeedParserDict:
    return feedparser.parse(content, response_headers=_parse_headers(url, headers),
                            sanitize_html=False, resolve_relative_uris=False)


def absolute(base: str, value: object) -> str | None:
    """A link from a feed made absolute against base; only http(s) links are kept."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        found = urljoin(base, value.strip())
        parts = urlsplit(found)
        parts.port                                    # noqa: B018 - a bad port raises here
    except ValueError:                                # "Invalid IPv6 URL", a bad port: not a link
        return None
    return found if parts.scheme in ("http", "https") and parts.netloc else None


def stable_key(raw: str) -> str:
    """A feed's id as a key: kept when short, else its SHA-1 (ids over 200 characters
    exist in the wild; the columns hold 500)."""
    return raw if len(raw) <= MAX_KEY else "sha1:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()


def _base(parsed: feedparser.FeedParserDict) -> str:
    return str(parsed.get("digest_base") or "")


def warning(parsed: feedparser.FeedParserDict, url: str) -> str | None:
    """One line when the XML was malformed but partly read (feedparser's bozo)."""
    if not parsed.get("bozo"):
        return None
    return (f"{url}: malformed feed ({parsed.get('bozo_exception')}); "
            f"kept the {len(parsed.entries)} entries it could read")


def detect_kind(parsed: feedparser.FeedParserDict) -> str:
    generator = (parsed.feed.get("generator") or "").lower()
    feed_id = parsed.feed.get("id", "")
    if generator == "blogger" or feed_id.startswith("tag:blogger.com,1999:blog-"):
        return "blogger"
    if "wordpress" in generator or any("wfw_commentrss" in e for e in parsed.entries[:5]):
        return "wordpress"
    return "feed"


def next_link(parsed: feedparser.FeedParserDict) -> str | None:
    found = next((link.get("href") for link in parsed.feed.get("links", []) if link.get("rel") == "next"), None)
    return absolute(_base(parsed), found)


def feed_link(parsed: feedparser.FeedParserDict) -> str | None:
    """The feed's own address without paging (GData's #feed link, else self)."""
    links = {link.get("rel"): link.get("href", "") for link in parsed.feed.get("links", [])}
    own = absolute(_base(parsed), links.get("http://schemas.google.com/g/2005#feed") or links.get("self"))
    return own.split("?")[0] if own else None


def total_results(parsed: feedparser.FeedParserDict) -> int | None:
    return _int(parsed.feed.get("opensearch_totalresults"))


# ------------------------------------------------------------------ posts (any kind)

def posts_page(parsed: feedparser.FeedParserDict, kind: str) -> FeedPage:
    skipped: Counter[str] = Counter()
    posts = [_each(partial(_post, entry, kind, _base(parsed)), skipped) for entry in parsed.entries]
    return FeedPage(posts=[p for p in posts if p is not None], next_url=next_link(parsed),
                    total=total_results(parsed), skipped=skipped)


def _each(make: Callable[[], T | None], skipped: Counter[str]) -> T | None:
    """One item of a page, or None (counted with its reason): one bad item never fails the
    page. Text is made storable (no lone surrogates) and keys fit their columns."""
    try:
        item = make()
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as error:
        skipped[f"unreadable ({error.__class__.__name__})"] += 1
        return None
    if item is None:
        skipped["no id"] += 1
        return None
    return _storable(item)


def _storable(item: T) -> T:
    changes: dict[str, Any] = {}
    for name, value in vars(item).items():
        if isinstance(value, str):
            readable = value if _encodable(value) else value.encode("utf-8", "replace").decode("utf-8")
            fixed = stable_key(readable) if name in ("key", "post_key", "parent_key") else readable
            if fixed != value:
                changes[name] = fixed
            if name == "key" and fixed != readable:        # hashed: the id itself is kept beside
                changes["original_key"] = readable
    return replace(item, **changes) if changes else item  # type: ignore[type-var]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _post(entry: dict[str, Any], kind: str, base: str) -> Post | None:
    url = absolute(base, entry.get("link") or _link(entry, "alternate")) or ""
    key = _post_key(entry, kind) or url
    if not key:
        return None
    clean = clean_html(_content(entry))
    published = _date(entry, "published") or _date(entry, "updated") or EPOCH
    return Post(
        key=key, title=_title(entry) or "(untitled)", url=url,
        published=published, updated=_date(entry, "updated") or published,
        author=_author(entry), html=clean, text=to_text(clean),
        comments_total=_int(entry.get("thr_total", entry.get("slash_comments"))),
        comments_feed=absolute(base, _comments_feed(entry, kind)),
    )


def _post_key(entry: dict[str, Any], kind: str) -> str | None:
    ident = entry.get("id", "")
    if kind == "blogger":
        match = _BLOGGER_ID.search(ident)
        return match.group(1) if match else ident or None
    if kind == "wordpress":
        match = _WP_POST_ID.search(ident)
        return match.group(1) if match else ident or None
    return ident or None


def _comments_feed(entry: dict[str, Any], kind: str) -> str | None:
    if kind == "blogger":
        return next((link["href"] for link in entry.get("links", [])
                     if link.get("rel") == "replies" and link.get("type") == "application/atom+xml"), None)
    if kind == "wordpress":             # RSS2 names it in wfw:commentRss; an Atom feed in link rel=replies
        return entry.get("wfw_commentrss") or next(
            (link.get("href") for link in entry.get("links", [])
             if link.get("rel") == "replies" and "xml" in str(link.get("type", ""))), None)
    return None


# ------------------------------------------------------------------ Blogger comments

def blogger_comments(parsed: feedparser.FeedParserDict, content: bytes) -> FeedPage:
    """A page of a Blogger comment feed (a post's own, or the blog-wide one)."""
    removed, skipped = removed_ids(content), Counter[str]()
    comments = [_each(partial(_blogger_comment, entry, removed, _base(parsed)), skipped)
                for entry in parsed.entries]
    return FeedPage(comments=[c for c in comments if c is not None], next_url=next_link(parsed),
                    total=total_results(parsed), feed_url=feed_link(parsed), skipped=skipped)


def _blogger_comment(entry: dict[str, Any], removed: set[str], base: str) -> Comment | None:
    match = _BLOGGER_ID.search(entry.get("id", ""))
    reply_to = entry.get("thr_in-reply-to") or {}
    post = _BLOGGER_ID.search(reply_to.get("ref", ""))
    if match is None or post is None:
        return None
    is_removed = entry["id"] in removed
    parent = _link(entry, "related")
    clean = "" if is_removed else comment_html(_content(entry))
    published = _date(entry, "published") or EPOCH
    return Comment(
        key=match.group(1), post_key=post.group(1), author=_author(entry),
        author_uri=(entry.get("author_detail") or {}).get("href"),
        published=published, updated=_date(entry, "updated") or published,
        url=absolute(base, entry.get("link")) or "", html=clean, text="" if is_removed else to_text(clean),
        removed=is_removed, parent_key=parent.rstrip("/").rsplit("/", 1)[-1] if parent else None,
        post_url=absolute(base, reply_to.get("href")),
    )


def blogger_comments_direct(content: bytes, url: str, headers: dict[str, str] | None) -> FeedPage | None:
    """The page blogger_comments(read(...)) gives, read without feedparser when the feed is
    Blogger's own plain Atom (most of what a fetch reads); None: use feedparser."""
    found = blogger_atom.entries(content, headers)
    if found is None:
        return None
    root, entries = found
    base = _document_base(url, headers)
    removed, skipped = {e["id"] for e in entries if e["removed"]}, Counter[str]()
    comments = [_each(partial(_blogger_comment, entry, removed, base), skipped) for entry in entries]
    return blogger_atom.page(root, comments, skipped, partial(absolute, base))


def removed_ids(content: bytes) -> set[str]:
    """Entry ids marked blogger.contentRemoved (feedparser keeps only the last property)."""
    if REMOVED_MARKER not in content:
        return set()
    removed = set()
    try:
        for _, element in ET.iterparse(io.BytesIO(content), events=("end",)):
            if element.tag == ATOM + "entry":
                if any(p.get("name") == "blogger.contentRemoved" and p.get("value") == "true"
                       for p in element.iter(GD_PROPERTY)):
                    removed.add(element.findtext(ATOM + "id", "").strip())
                element.clear()
    except ET.ParseError:
        removed |= _removed_by_pattern(content)
    return removed


def _removed_by_pattern(content: bytes) -> set[str]:
    """Fallback for malformed XML: look inside each <entry> chunk for the marker."""
    found = set()
    for chunk in content.split(b"<entry")[1:]:
        ident = re.search(rb"<id>\s*([^<]+?)\s*</id>", chunk)
        if ident and re.search(rb"blogger\.contentRemoved['\"]\s+value=['\"]true", chunk):
            found.add(ident.group(1).decode("utf-8", "replace"))
    return found


# ------------------------------------------------------------------ WordPress comments

def wordpress_comments(parsed: feedparser.FeedParserDict, post_key: str) -> FeedPage:
    """A WordPress Atom comment feed: replies name their parent in thr:in-reply-to."""
    skipped: Counter[str] = Counter()
    comments = [_each(partial(_wp_atom_comment, entry, post_key, _base(parsed)), skipped)
                for entry in parsed.entries]
    return FeedPage(comments=[c for c in comments if c is not None], next_url=next_link(parsed), skipped=skipped)


def _wp_atom_comment(entry: dict[str, Any], post_key: str, base: str) -> Comment | None:
    key = _WP_COMMENT_ID.search(entry.get("id", "") or entry.get("link", ""))
    if key is None:
        return None
    parent = _WP_COMMENT_ID.search((entry.get("thr_in-reply-to") or {}).get("ref", ""))
    return _wp_comment(key.group(1), post_key, absolute(base, entry.get("link")) or "", _author(entry),
                       _date(entry, "published") or _date(entry, "updated") or EPOCH,
                       _content(entry), parent.group(1) if parent else None)


def wordpress_api_comments(content: bytes, url: str, post_key: str) -> FeedPage:
    """A page of /wp-json/wp/v2/comments?post=ID: JSON with `parent` (0 = top level)."""
    try:
        items = json.loads(content)
    except ValueError as error:
        raise FeedError(f"{url}: not JSON ({error}); is the REST API switched off?") from None
    if not isinstance(items, list):
        raise FeedError(f"{url}: expected a list of comments; is the REST API switched off?")
    skipped: Counter[str] = Counter()
    comments = [_each(partial(_wp_api_comment, item, post_key, url), skipped) for item in items]
    return FeedPage(comments=[c for c in comments if c is not None], skipped=skipped)


def _wp_api_comment(item: object, post_key: str, base: str) -> Comment | None:
    """One REST comment, whatever shape its fields come in (strings, numbers, nulls)."""
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        return None
    stamp = str(item.get("date_gmt") or item.get("date") or "")
    published = _iso(stamp + ("" if stamp.endswith("Z") or "+" in stamp else "+00:00")) or EPOCH
    parent = item.get("parent") or 0
    content = item.get("content")
    markup = content.get("rendered", "") if isinstance(content, dict) else str(content or "")
    return _wp_comment(str(item.get("id")), post_key, absolute(base, item.get("link")) or "",
                       plain_text(str(item.get("author_name") or "")) or "Anonymous", published,
                       str(markup), str(parent) if parent and str(parent) != "0" else None)


def _wp_comment(key: str, post_key: str, url: str, author: str, published: datetime,
                markup: str, parent: str | None) -> Comment:
    clean = comment_html(markup)
    return Comment(key=key, post_key=post_key, author=author, author_uri=None,
                   published=published, updated=published, url=url, html=clean,
                   text=to_text(clean), parent_key=parent)


# ------------------------------------------------------------------ helpers

MAX_COMMENT = 100_000      # characters of a comment's HTML kept (some 15,000 words; Blogger allows 4,096)


def comment_html(markup: str) -> str:
    """A comment's HTML, sanitised; one longer than MAX_COMMENT is cut at a space and says
    so (a 10 MB comment would slow every preview and page that shows its period)."""
    if len(markup) <= MAX_COMMENT:
        return clean_html(markup)
    cut = markup[:MAX_COMMENT].rsplit(" ", 1)[0]
    return (clean_html(cut) + f"<br><p>[Cut by digest: this comment runs to {len(markup):,} characters; "
            "the whole of it is on the blog.]</p>")


def _content(entry: dict[str, Any]) -> str:
    content = entry.get("content")
    if content:
        return content[0].get("value", "")
    return entry.get("summary", "")


def _title(entry: dict[str, Any]) -> str:
    """A title as text: markup is taken out only when the feed says the title is HTML
    (feedparser has already decoded a plain-text title: `<canvas>` there is words)."""
    kind = str((entry.get("title_detail") or {}).get("type", "text/plain"))
    raw = str(entry.get("title", ""))
    return plain_text(raw) if "html" in kind else " ".join(raw.split())


def _author(entry: dict[str, Any]) -> str:
    detail = entry.get("author_detail") or {}
    return plain_text(detail.get("name") or entry.get("author", "")) or "Anonymous"


def _link(entry: dict[str, Any], rel: str) -> str | None:
    return next((link.get("href") for link in entry.get("links", []) if link.get("rel") == rel and link.get("href")),
                None)


def _date(entry: dict[str, Any], field: str) -> datetime | None:
    value = _iso(dict.get(entry, field, ""))  # dict.get: no feedparser fallback from updated to published
    if value is not None:
        return value
    parsed = dict.get(entry, f"{field}_parsed")
    try:
        return _sane(datetime.fromtimestamp(timegm(parsed), UTC)) if parsed else None
    except (OverflowError, ValueError, OSError):
        return None


def _iso(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return _sane(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _sane(moment: datetime | None) -> datetime | None:
    """A date a database can store and a period can hold: 1900 to 9000, else unknown."""
    if moment is None or not 1900 <= moment.year <= 9000:
        return None
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _int(value: Any) -> int | None:
    """A count from a feed, if it is one a database can hold."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number < 2**31 else None


def _parse_headers(url: str, headers: dict[str, str] | None) -> dict[str, str]:
    sent: dict[str, str] = {}  # no content-location: resolving every link in content costs 40%
    if headers and headers.get("content-type"):
        sent["content-type"] = headers["content-type"]
    return sent


def _what_it_is(content: bytes, headers: dict[str, str] | None) -> str:
    kind = (headers or {}).get("content-type", "")
    if not content.strip():
        return "empty response"
    if b"<html" in content[:2048].lower() or "html" in kind:
        return "got an HTML page"
    return f"got {kind or 'unknown content'}"

