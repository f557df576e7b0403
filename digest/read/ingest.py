"""Read one source into the database: which URLs to fetch, in what order, when to stop.

Cost grows with what is new, not with the archive. Feeds are newest first, so the
posts feed and the blog-wide comments feed are read page by page only until a page
reaches something already stored unchanged; a post's own comment feed is read only
when its comment count (thr:total / slash:comments) differs from what is stored.
Every request is conditional. Validators are saved only when the whole source was
read, so a failure part way is simply retried next time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from .. import crash
from ..config import Fetch, Source
from ..db import Database, post_hash
from ..db.content import Content, Horizon
from ..errors import DigestError
from ..models import Comment, FeedPage, Post, SourceReport, Validators
from . import parse
from .errors import FeedError, FetchError
from .fetch import Fetched, Fetcher, allowed_hosts_for
from .mirror import start_url

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
WP_PER_PAGE = 100


@dataclass
class Run:
    """The state of one source's fetch: shared by the steps below."""

    source: Source
    source_id: int
    store: Content
    fetcher: Fetcher
    max_pages: int
    cutoff: datetime | None
    report: SourceReport
    progress: Progress
    kind: str = "feed"
    validators: dict[str, Validators] = field(default_factory=dict)
    complete: bool = True                  # False: something was not read; read it all again next time
    reread: bool = False                   # a posts page was missed last time: read the posts feed whole
    posts_gap: bool = False                # a posts page was missed this time
    seen_posts: dict[str, Post] = field(default_factory=dict)
    visited: set[str] = field(default_factory=set)
    outside: dict[str, Post] = field(default_factory=dict)  # read, but older than the window
    touched: set[str] = field(default_factory=set)
    first: bool = False                    # nothing of the source is stored yet

    def note(self, message: str) -> None:
        """Something the operator should know that is not a fault: said once, nothing re-read."""
        log.warning("%s: %s", self.source.name, message)
        self.report.warnings.append(message)

    def get(self, url: str, conditional: bool = True) -> Fetched:
        """A conditional GET whose new validators are kept until the run succeeds. A URL
        is read once per fetch: a next link that leads back is a loop, and stops."""
        if url in self.visited:
            raise FetchError(f"{url}: read already in this fetch (the feed's next links go round in a loop)")
        self.visited.add(url)
        try:
            answer = self.fetcher.get(url, self.store.validators(url) if conditional else Validators())
        finally:                                   # a failed request is a request too
            self.report.requests = self.fetcher.requests
        if answer.not_modified:
            self.report.not_modified += 1
        else:
            self.validators[url] = answer.validators
        return answer

    def gap(self, message: str) -> None:
        """Something could not be read: say so once, keep what was read, read it again next time."""
        self.complete = False
        log.warning("%s: %s", self.source.name, message)
        self.report.warnings.append(message)

    def blogger_page(self, answer: Fetched) -> FeedPage:
        """A page of a Blogger comment feed: read directly when it is Blogger's plain Atom
        (several times faster), else by feedparser."""
        direct = parse.blogger_comments_direct(answer.content, answer.url, answer.headers)
        return direct if direct is not None else parse.blogger_comments(self.read(answer), answer.content)

    def read(self, answer: Fetched) -> parse.feedparser.FeedParserDict:
        parsed = parse.read(answer.content, answer.url, answer.headers)
        problem = parse.warning(parsed, answer.url)
        if problem and not self.report.warnings:
            log.warning("%s: %s", self.source.name, problem)
        if problem:
            self.report.warnings.append(problem)
        return parsed


def ingest(source: Source, settings: Fetch, db: Database, root: Path, now: datetime,
           full: bool = False, progress: Progress = lambda _: None,
           fetcher: Fetcher | None = None) -> SourceReport:
    """Fetch one source and store what is new; never raises for the source's own faults."""
    report = SourceReport(source.name)
    store = db.content
    source_id = store.source_id(source.name, source.url, source.kind)
    try:
        url, own_fetcher = _open(source, settings, root, fetcher)
    except DigestError as error:                   # e.g. a local path that does not exist: shown by `sources`
        report.error = str(error)
        store.finish_source(source_id, report.error, now)
        return report
    except Exception as error:  # noqa: BLE001 - a broken mirror manifest, say: this source alone fails
        report.error = f"cannot open {source.url} ({error.__class__.__name__}: {_first_line(error)}); check it"
        store.finish_source(source_id, report.error, now)
        return report
    with own_fetcher if fetcher is None else nullcontext():
        horizon = _horizon(source, store, source_id, now)
        run = Run(source, source_id, store, own_fetcher, settings.max_pages, horizon.at, report, progress,
                  reread=store.reread_posts(source_id) or horizon.widened, first=horizon.first)
        if horizon.widened:
            days = f"{source.backfill_days}" if source.backfill_days else "0 (everything)"
            back = f"{horizon.at:%Y-%m-%d}" if horizon.at else "the blog's first post"
            run.note(f"backfill_days = {days} reaches further back than before: reading back to {back}")
        try:
            _read_source(run, url, full)
        except DigestError as error:
            report.error = str(error)
        except Exception as error:  # noqa: BLE001 - whatever a feed does, it fails this source alone
            log.debug("%s: unexpected failure", source.name, exc_info=True)
            report.error = (f"unexpected {error.__class__.__name__} ({_first_line(error)}); the other sources "
                            "go on; run `digest --debug fetch` for the traceback and report it")
        else:
            for key, validators in run.validators.items() if run.complete else ():
                store.save_validators(key, validators, now)
        posts_whole = report.error is None and not run.posts_gap
        store.finish_source(source_id, report.error, now, reread_posts=None if report.error else not posts_whole)
        crash.point("fetch.finished")
    return report


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _open(source: Source, settings: Fetch, root: Path, fetcher: Fetcher | None) -> tuple[str, Fetcher]:
    if fetcher is not None:
        return source.url, fetcher
    if re.match(r"^https?://", source.url):
        return source.url, Fetcher(settings, allowed_hosts=allowed_hosts_for(source.url, source.allow_hosts))
    url, transport = start_url(source.url, root)
    hosts = allowed_hosts_for(url, source.allow_hosts, offline=True)
    return url, Fetcher(settings, transport=transport, allowed_hosts=hosts)


BLOGGER_HOSTS = frozenset({"www.blogger.com", "blogger.com"})   # Blogger writes its next-page links there


def _allow_platform_hosts(run: Run) -> None:
    if run.kind == "blogger" and run.fetcher.allowed_hosts is not None:
        run.fetcher.allowed_hosts = run.fetcher.allowed_hosts | BLOGGER_HOSTS


def _horizon(source: Source, store: Content, source_id: int, now: datetime) -> Horizon:
    proposed = now - timedelta(days=source.backfill_days) if source.backfill_days else None
    return store.horizon(source_id, proposed)


def _read_source(run: Run, url: str, full: bool) -> None:
    first = run.get(url, conditional=not (full or run.reread))
    known_kind, comments_url = run.store.source_state(run.source_id)
    if first.not_modified:
        run.progress("posts not modified")
        run.kind = run.source.kind or known_kind or "feed"
        _allow_platform_hosts(run)
    else:
        parsed = run.read(first)
        run.kind = run.source.kind or parse.detect_kind(parsed)
        _allow_platform_hosts(run)
        comments_url = _blog_comments_url(parsed, url) if run.kind == "blogger" else None
        run.store.save_source_state(run.source_id, run.kind, comments_url)
        _read_posts(run, first, parsed)
    if comments_url:
        _read_comments(run, comments_url)
    _read_post_feeds(run, full)
    run.report.orphans = run.store.rethread(run.source_id, run.touched)
    crash.point("fetch.threaded")


# ------------------------------------------------------------------ posts

def _read_posts(run: Run, answer: Fetched, parsed: parse.feedparser.FeedParserDict) -> None:
    page_number = 1
    while True:
        page = parse.posts_page(parsed, run.kind)
        if _take_posts(run, page):
            return
        if page_number >= run.max_pages:
            if page.next_url:
                run.gap(f"the posts feed has more than {run.max_pages} pages ([fetch].max_pages); the rest is "
                        "not read: raise [fetch].max_pages to read it")
            return
        next_url = page.next_url or _wordpress_next(run, answer.url, page_number, page)
        if not next_url:
            return
        try:
            answer = run.get(next_url)
        except FetchError as error:
            if error.status == 404 and not page.next_url:   # WordPress: past the last page
                return
            run.posts_gap = True
            run.gap(f"posts page {page_number + 1} could not be read ({error}); kept the pages before it")
            return
        if answer.not_modified:
            return
        parsed, page_number = run.read(answer), page_number + 1
        run.progress(f"posts page {page_number}")


def _take_posts(run: Run, page: FeedPage) -> bool:
    """Store a page of posts; True when older pages need not be read."""
    known = run.store.post_state(run.source_id, [p.key for p in page.posts])
    fresh = [p for p in page.posts if run.cutoff is None or p.published >= run.cutoff or p.key in known]
    if run.first and not fresh and page.posts:
        fresh = _newest_anyway(run, page.posts)
    unchanged = any(p.key in known and known[p.key][0] == post_hash(p) for p in fresh)
    new, updated = run.store.save_posts(run.source_id, fresh)
    crash.point("fetch.posts")
    run.report.skipped.update(page.skipped)
    run.report.posts_new += new
    run.report.posts_updated += updated
    run.seen_posts.update({p.key: p for p in fresh})
    run.outside.update({p.key: p for p in page.posts if p not in fresh})
    run.touched.update(p.key for p in fresh)
    return (unchanged and not run.reread) or len(fresh) < len(page.posts)


FIRST_POSTS = 3          # a first fetch that finds nothing in the window keeps this many newest posts


def _newest_anyway(run: Run, posts: list[Post]) -> list[Post]:
    """A first fetch of a blog whose last post is older than the window: its newest posts
    (with their comments) rather than an empty database, and one line saying why."""
    newest = sorted(posts, key=lambda p: p.published, reverse=True)[:FIRST_POSTS]
    run.first = False
    run.note(f"no post in the last {run.source.backfill_days} days (backfill_days); kept the blog's "
             f"{len(newest)} newest posts anyway, the latest of {newest[0].published:%Y-%m-%d}, and their comments: "
             "raise backfill_days in the config to read further back")
    return newest


def _wordpress_next(run: Run, url: str, page_number: int, page: FeedPage) -> str | None:
    """WordPress RSS has no next link; its older pages are ?paged=N."""
    if run.kind != "wordpress" or not page.posts:
        return None
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("paged="))
    query = (query + "&" if query else "") + f"paged={page_number + 1}"
    return urlunsplit(parts._replace(query=query))


# ------------------------------------------------------------------ blog-wide comments

def _blog_comments_url(parsed: parse.feedparser.FeedParserDict, fallback: str) -> str | None:
    """Blogger's blog-wide comment feed sits beside the posts feed the feed names as its own."""
    own = parse.feed_link(parsed) or fallback.split("?")[0]
    return own.replace("/feeds/posts/", "/feeds/comments/", 1) if "/feeds/posts/" in own else None


def _read_comments(run: Run, url: str) -> None:
    """Blogger's blog-wide comment feed, newest first, until something stored is reached."""
    try:
        for number, page in enumerate(_linked_pages(run, url, run.blogger_page), 1):
            if not isinstance(page, FeedPage):
                return                                   # unchanged, or cut
            run.progress(f"comments page {number}")
            if _take_comments(run, page, blog_wide=True):
                return
    except FetchError as error:
        log.info("%s: blog-wide comments unavailable (%s); reading each post's feed instead", run.source.name, error)


def _take_comments(run: Run, page: FeedPage, blog_wide: bool) -> bool:
    """Store a page of comments; True when older pages need not be read.

    A page of the blog-wide feed keeps only comments inside the window and ends the
    reading once it reaches a stored one; a post's own feed is taken whole.
    """
    cutoff = run.cutoff if blog_wide else None
    fresh = [c for c in page.comments if cutoff is None or c.published >= cutoff]
    _ensure_posts(run, fresh, page.feed_url if blog_wide else None)
    new, updated, unchanged = run.store.save_comments(run.source_id, fresh)
    crash.point("fetch.comments")
    run.report.skipped.update(page.skipped)
    run.report.comments_new += new
    run.report.comments_updated += updated
    run.touched.update(c.post_key for c in fresh)
    return blog_wide and (unchanged > 0 or len(fresh) < len(page.comments))


def _ensure_posts(run: Run, comments: list[Comment], feed_url: str | None) -> None:
    """A comment on a post older than the window brings that post in, and so its thread.

    The post's entry is used when the posts feed showed it; otherwise a stub stands
    for it (title from its address) until its entry is read.
    """
    wanted = {c.post_key: c for c in comments if c.post_key not in run.seen_posts}
    missing = set(wanted) - run.store.post_keys(run.source_id, wanted)
    found = [run.outside.get(key) or _stub(wanted[key], feed_url) for key in sorted(missing)]
    if found:
        run.report.posts_new += run.store.save_posts(run.source_id, found)[0]
        run.seen_posts.update({p.key: p for p in found})


def _stub(comment: Comment, feed_url: str | None) -> Post:
    url = comment.post_url or comment.url.split("?")[0].split("#")[0]
    slug = Path(urlsplit(url).path).stem.replace("-", " ").replace("_", " ").strip()
    own_feed = feed_url.replace("/feeds/comments/", f"/feeds/{comment.post_key}/comments/", 1) if feed_url else None
    return Post(key=comment.post_key, title=slug.capitalize() or "(an earlier post)", url=url,
                published=comment.published, updated=comment.published, author="", html="",
                text="", comments_total=None, comments_feed=own_feed, stub=True)


# ------------------------------------------------------------------ per-post comment feeds

def _read_post_feeds(run: Run, full: bool) -> None:
    counts = run.store.comment_counts(run.source_id, run.seen_posts)
    stale = [p for p in run.seen_posts.values() if _worth_reading(run, p, counts.get(p.key, 0), full)]
    for number, post in enumerate(stale, 1):
        run.progress(f"comments of {post.title[:40]} ({number}/{len(stale)})")
        try:
            present = _read_post_comments(run, post)
        except (FetchError, FeedError) as error:       # one post's feed: that post waits, the rest go on
            run.gap(f"the comments of {post.url or post.key} could not be read ({error})")
            continue
        if present is not None:              # a whole, changed feed: what it no longer lists is gone
            run.store.mark_deleted(run.source_id, post.key, present)


def _worth_reading(run: Run, post: Post, stored: int, full: bool) -> bool:
    """Read a post's own comments when its count differs from what is stored."""
    if not post.comments_feed and run.kind != "wordpress":
        return False
    if post.stub:
        return True
    total = post.comments_total
    return (full and (total or 0) > 0) or (total is not None and total != stored)


class _Cut:
    """A feed had more pages than [fetch].max_pages."""


CUT = _Cut()
LATEST_ONLY = _Cut()     # a feed that lists only the newest comments (WordPress's comment feeds): never whole


def _read_post_comments(run: Run, post: Post) -> set[str] | None:
    """Read every page of one post's comments; the keys seen, or None when the feed was
    unchanged or not read whole (then nothing is marked deleted)."""
    pages = _wordpress_pages(run, post) if run.kind == "wordpress" else _blogger_pages(run, post)
    present: set[str] = set()
    try:
        for page in pages:
            if page is None:
                return None
            if page is LATEST_ONLY:
                return None                  # stored, but what it leaves out is not gone
            if page is CUT:
                run.gap(f"the comments of {post.url or post.key} have more than {run.max_pages} pages "
                        "([fetch].max_pages); the rest is not read: raise [fetch].max_pages to read it")
                return None
            assert isinstance(page, FeedPage)
            _take_comments(run, page, blog_wide=False)
            present.update(c.key for c in page.comments)
    except FetchError as error:
        if not present:
            raise
        run.gap(f"a page of the comments of {post.url or post.key} could not be read ({error}); "
                "kept the pages before it")
        return None
    return present


def _linked_pages(run: Run, url: str | None,
                  page_of: Callable[[Fetched], FeedPage]) -> Iterator[FeedPage | _Cut | None]:
    """A feed page by page along its next links: None when it is unchanged, CUT when it
    has more than [fetch].max_pages pages."""
    for _ in range(run.max_pages):
        if not url:
            return
        answer = run.get(url)
        if answer.not_modified:
            yield None
            return
        page = page_of(answer)
        yield page
        url = page.next_url
    if url:
        yield CUT


def _blogger_pages(run: Run, post: Post) -> Iterator[FeedPage | _Cut | None]:
    return _linked_pages(run, post.comments_feed, run.blogger_page)


def _wordpress_pages(run: Run, post: Post) -> Iterator[FeedPage | _Cut | None]:
    """The REST API (threaded), else the Atom comment feed (threaded), else the RSS
    comment feed the post names (flat: RSS says nothing of parents)."""
    try:
        yield from _wordpress_api_pages(run, post)
        return
    except (FetchError, FeedError) as error:
        if not post.comments_feed:
            raise
        log.info("%s: REST API not usable (%s); reading the Atom comment feed", run.source.name, error)
    try:
        yield from _wordpress_atom_pages(run, post, _atom_comment_feed(post.comments_feed))
    except (FetchError, FeedError) as error:
        if _atom_comment_feed(post.comments_feed) == post.comments_feed:
            raise
        log.info("%s: no Atom comment feed (%s); reading the RSS one", run.source.name, error)
        yield from _wordpress_atom_pages(run, post, post.comments_feed)
    yield LATEST_ONLY             # WordPress shows its newest N comments there (posts_per_rss)


def _wordpress_api_pages(run: Run, post: Post) -> Iterator[FeedPage | _Cut | None]:
    if not post.key.isdigit():
        raise FeedError(f"{post.url}: no numeric post id for the REST API")
    root = _site_root(post.url)
    for number in range(1, run.max_pages + 1):
        query = urlencode({"post": post.key, "per_page": WP_PER_PAGE, "page": number, "orderby": "id"})
        answer = run.get(f"{root}/wp-json/wp/v2/comments?{query}")
        if answer.not_modified:
            yield None
            return
        page = parse.wordpress_api_comments(answer.content, answer.url, post.key)
        yield page
        pages = answer.headers.get("x-wp-totalpages", "")
        if len(page.comments) < WP_PER_PAGE or (pages.isdigit() and number >= int(pages)):
            return
    yield CUT


def _wordpress_atom_pages(run: Run, post: Post, first: str) -> Iterator[FeedPage | _Cut | None]:
    return _linked_pages(run, first, lambda answer: parse.wordpress_comments(run.read(answer), post.key))


def _atom_comment_feed(rss_url: str) -> str:
    """WordPress's wfw:commentRss (…/post/feed/) has an Atom twin (…/post/feed/atom/)."""
    return rss_url if "/atom" in rss_url else urljoin(rss_url.rstrip("/") + "/", "atom/")


def _site_root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

