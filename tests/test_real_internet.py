"""Feeds as the real internet serves them: relative links, REST comments of odd shapes,
ids longer than a column, replies to replies, parent cycles, page limits, a source
that breaks in a way nobody foresaw. One source's trouble stays with that source."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from digest import actions, config
from digest.db import Database
from digest.models import Comment, Post
from digest.read.ingest import ingest
from digest.read.mirror import MirrorTransport

from .conftest import NOW, make_settings
from .support import wordpress
from .support.blog import Blog, onprobation
from .support.feedserver import Fault, FeedServer
from .support.templates import TEMPLATES, migrate


def fetch(db, tmp_path, url, **source):  # noqa: ANN001, ANN201
    settings = make_settings(tmp_path, [{"name": "wp", "url": url, "backfill_days": 0, **source}])
    return ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)


def relative_wordpress(server: FeedServer) -> str:
    """The WordPress sample, with every link in the posts feed written relative to the site."""
    url = wordpress.publish(server)
    rss = server.extra["/feed/"][0].decode().replace(server.base_url, "")
    server.add("/feed/", rss.encode(), "application/rss+xml; charset=UTF-8")
    return url


def test_relative_links_are_resolved_against_the_feed_address(db, feed_server, tmp_path):
    url = relative_wordpress(feed_server)
    report = fetch(db, tmp_path, url)
    assert report.error is None, report.error
    links = {p.key: p.url for p in db.content.iter_posts()}
    assert links == {"101": f"{feed_server.base_url}/probation-news/", "102": f"{feed_server.base_url}/quiet-post/"}
    assert report.comments_new == 4                          # the REST root came from the resolved link
    assert {p.comments_feed for p in db.content.iter_posts()} == {
        f"{feed_server.base_url}/probation-news/feed/", f"{feed_server.base_url}/quiet-post/feed/"}


def test_content_location_is_the_base_when_the_server_names_one(db, feed_server, tmp_path):
    url = relative_wordpress(feed_server)
    rss = feed_server.extra["/feed/"][0].decode().replace("<link>/", "<link>")   # relative to a folder now
    feed_server.fail("/feed/", Fault(status=200, body=rss.encode(), headers={
        "Content-Location": "/blog/feed/", "Content-Type": "application/rss+xml"}))
    fetch(db, tmp_path, url)
    assert {p.url for p in db.content.iter_posts()} == {f"{feed_server.base_url}/blog/feed/probation-news/",
                                                        f"{feed_server.base_url}/blog/feed/quiet-post/"}


def test_rest_comments_of_every_shape_are_stored_or_skipped_and_counted(db, feed_server, tmp_path):
    url = wordpress.publish(feed_server)
    base = feed_server.base_url
    odd = [
        {"id": 1, "parent": 0, "author_name": 12345, "date_gmt": 20171027, "link": None,
         "content": "a plain string, not an object"},
        {"id": 2, "parent": 1, "author_name": None, "date_gmt": "2017-10-27T10:00:00",
         "link": f"{base}/probation-news/#comment-2", "content": {"rendered": "<p>reply</p>"}},
        {"id": 3, "parent": "0", "author_name": "C", "content": None},
        ["not", "a", "comment"],
        {"parent": 0, "author_name": "no id at all"},
    ]
    query = urlencode({"post": 101, "per_page": 100, "page": 1, "orderby": "id"})
    feed_server.add(f"/wp-json/wp/v2/comments?{query}", json.dumps(odd).encode(), "application/json")
    report = fetch(db, tmp_path, url)
    assert report.error is None, report.error
    stored = {c.key: (c.author, c.parent_key, c.text) for c in db.content.iter_comments()}
    assert stored == {"1": ("12345", None, "a plain string, not an object"), "2": ("Anonymous", "1", "reply"),
                      "3": ("C", None, "")}
    assert report.skipped == {"no id": 2}
    assert "2 items skipped: no id" in report.summary()


def test_an_id_longer_than_the_column_is_stored_under_its_hash(db, feed_server, tmp_path):
    long_id = "tag:example.org,2017:" + "x" * 600
    feed = f"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>
<entry><id>{long_id}</id><title>Long</title><link href="/a-post"/><updated>2017-10-27T09:00:00Z</updated>
<content type="html">hello</content></entry></feed>"""
    feed_server.add("/atom.xml", feed.encode())
    report = fetch(db, tmp_path, f"{feed_server.base_url}/atom.xml")
    assert report.error is None, report.error
    (post,) = list(db.content.iter_posts())
    assert post.key.startswith("sha1:") and len(post.key) == 45 and post.url == f"{feed_server.base_url}/a-post"
    assert post.original_key == long_id                                                 # kept beside, in full
    assert fetch(db, tmp_path, f"{feed_server.base_url}/atom.xml").posts_new == 0       # the same key again


class Exploding(MirrorTransport):
    """A transport that fails in a way digest does not know (a bug, a library surprise)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise ValueError("unknown url type: '/wp-json/wp/v2/comments?post=1'")


def test_an_unforeseen_error_fails_that_source_alone(tmp_path: Path, db_url: str) -> None:
    from digest.read.fetch import Fetcher
    db = Database.open(db_url)
    settings = make_settings(tmp_path, [{"name": "broken", "url": "https://broken.example/feed"}])
    with Fetcher(settings.fetch, transport=Exploding(tmp_path)) as fetcher:
        report = ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW, fetcher=fetcher)
    assert report.failed and report.error.startswith("unexpected ValueError (unknown url type")
    assert "\n" not in report.error
    overview = {row["name"]: row for row in db.content.source_overview()}
    assert overview["broken"]["last_fetch_at"] is not None and overview["broken"]["last_error"] == report.error
    db.close()


def _comment(key: str, parent: str | None, text: str = "words") -> Comment:
    return Comment(key=key, post_key="p", author=f"Reader {key}", author_uri=None, published=NOW, updated=NOW,
                   url=f"https://example.org/p#c{key}", html=text, text=text, parent_key=parent)


def test_replies_at_any_depth_join_their_top_comment_and_cycles_are_broken(db):
    source = db.content.source_id("s", "https://example.org", "feed")
    db.content.save_posts(source, [Post(key="p", title="t", url="https://example.org/p", published=NOW,
                                        updated=NOW, author="a", html="", text="", comments_total=7,
                                        comments_feed=None)])
    db.content.save_comments(source, [
        _comment("1", None), _comment("2", "1"), _comment("3", "2"), _comment("4", "3"),   # 1 <- 2 <- 3 <- 4
        _comment("5", "6"), _comment("6", "5"),                                            # a cycle
        _comment("7", "missing"),                                                          # parent never seen
    ])
    orphans = db.content.rethread(source, ["p"])
    threaded = {c.key: (c.parent_key, c.orphan) for c in db.content.iter_comments(source)}
    assert threaded == {"1": (None, False), "2": ("1", False), "3": ("1", False), "4": ("1", False),
                        "5": (None, True), "6": (None, True), "7": (None, True)}
    assert orphans == 3
    (found,) = db.content.discussions(NOW - timedelta(days=1), NOW + timedelta(days=1))
    answers = {c.key: c.reply_to for c in found.comments}
    assert answers == {"1": None, "2": None, "3": "Reader 2", "4": "Reader 3", "5": None, "6": None, "7": None}


def test_a_comment_feed_cut_by_max_pages_deletes_nothing_and_a_comment_seen_again_comes_back(db, feed_server,
                                                                                             tmp_path):
    blog = Blog(feed_server, tmp_path / "small-pages", onprobation(), page_size=5)    # every thread spans pages
    settings = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 0}])
    ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)
    assert db.content.totals() == {"posts": 9, "comments": 74}
    fantasy = blog.post("A Fantasy World")
    stored = next(c for c in db.content.iter_comments() if c.post_key == fantasy["id"])
    cut = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": 0}],
                        fetch={"retries": 1, "backoff": 0, "timeout": 5, "max_pages": 1})
    report = ingest(cut.sources[0], cut.fetch, db, tmp_path, NOW, full=True)
    assert any("[fetch].max_pages" in w for w in report.warnings)
    assert db.content.totals() == {"posts": 9, "comments": 74}          # nothing marked deleted
    with db.engine.begin() as connection:                                # deleted by an earlier bug
        from digest.db.tables import comments
        connection.execute(comments.update().where(comments.c.key == stored.key).values(deleted=True))
    assert db.content.totals() == {"posts": 9, "comments": 73}
    source = db.content.source_id("op", blog.posts_url, None)
    seen = Comment(key=stored.key, post_key=stored.post_key, author=stored.author, author_uri=stored.author_uri,
                   published=stored.published, updated=stored.updated, url=stored.url, html=stored.html,
                   text=stored.text, removed=stored.removed, parent_key=stored.declared_parent)
    db.content.save_comments(source, [seen])                             # the feed lists it again
    assert db.content.totals() == {"posts": 9, "comments": 74}          # seen again: not deleted any more


def test_two_lists_due_at_the_same_minute_both_send_twenty_times_out_of_twenty(tmp_path: Path) -> None:
    """Each trial: a new database (migrated: tests/test_db.py races two processes on an empty
    one), two scheduled runs started together at a barrier; both fetch (one waits for the
    other's fetch lock), neither dies on a duplicate row."""
    from digest import schedule as scheduling
    root = Path(__file__).resolve().parent.parent / "examples"
    outcomes = []
    for trial in range(20):
        folder = tmp_path / f"trial{trial}"
        TEMPLATES.copy_sqlite("migrated", migrate, folder / "digest.db")       # a new database, at the head
        data = _two_lists(root, folder)
        settings = config.from_dict(data, root=root)
        barrier, results = threading.Barrier(2), {}

        def run(name: str, settings: config.Settings = settings, barrier: threading.Barrier = barrier,
                results: dict = results) -> None:
            with Database.open(settings.database_url()) as db:
                barrier.wait(timeout=30)
                try:
                    results[name] = scheduling._run(settings, db, name, datetime(2017, 11, 1, 7, tzinfo=UTC))
                except Exception as error:  # noqa: BLE001 - recorded for the assertion below
                    results[name] = f"FAILED {error!r}"

        threads = [threading.Thread(target=run, args=(name,)) for name in ("weekly", "weekly-too")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        outcomes.append(results)
    assert all(r["weekly"].startswith("recipients 3, accepted 3") for r in outcomes), outcomes
    assert all(r["weekly-too"].startswith("recipients 3, accepted 3") for r in outcomes), outcomes


def _two_lists(root: Path, folder: Path) -> dict:
    import tomllib
    data = tomllib.loads((root / "config.toml").read_text(encoding="utf-8"))
    data["database"] = {"url": f"sqlite:///{folder / 'digest.db'}"}
    data["sending"]["outbox"] = {"dir": str(folder / "outbox")}
    data["lists"].append({**data["lists"][0], "name": "weekly-too"})
    return data


def test_fetch_lock_serialises_two_fetches_instead_of_failing(tmp_path: Path, db_url: str) -> None:
    root = Path(__file__).resolve().parent.parent / "examples"
    settings = config.from_dict({**_two_lists(root, tmp_path), "database": {"url": db_url}}, root=root)
    barrier, results = threading.Barrier(2), []

    def run() -> None:
        with Database.open(settings.database_url()) as db:
            barrier.wait(timeout=30)
            results.append(actions.fetch(settings, db, list(settings.sources), NOW, wait=_seconds(60)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2 and all(not r[0].failed for r in results), results
    assert sum(r[0].posts_new for r in results) == 9                  # stored once, by whichever came first


def _seconds(n: float):  # noqa: ANN202
    from datetime import timedelta
    return timedelta(seconds=n)


def test_a_source_whose_path_does_not_exist_is_listed_with_its_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/d.db"\n\n'
                           '[[sources]]\nname = "gone"\nurl = "no/such/folder"\n', encoding="utf-8")
    fetched = CliRunner().invoke(cli, ["--config", str(config_file), "fetch"])
    assert fetched.exit_code == 1 and "gone: FAILED: no/such/folder: no such file or folder" in fetched.output
    listed = CliRunner().invoke(cli, ["--config", str(config_file), "sources"])
    assert listed.output.startswith("gone: 0 posts, 0 comments") and "FAILED: no/such/folder" in listed.output


def test_a_failed_last_request_is_counted(db, feed_server, tmp_path):
    url = wordpress.publish(feed_server)
    feed_server.fail("/feed/", Fault(status=404))
    report = fetch(db, tmp_path, url)
    assert report.failed and report.requests == 1


def test_wordpress_without_rest_or_atom_comments_reads_the_rss_comment_feed(db, feed_server, tmp_path):
    url = wordpress.publish(feed_server, api=False)
    base = feed_server.base_url
    del feed_server.extra["/probation-news/feed/atom/"]                 # this blog has no Atom comment feed
    items = "".join(f"""<item><title>By: {who}</title><link>{base}/probation-news/#comment-{n}</link>
      <guid isPermaLink="false">{base}/probation-news/#comment-{n}</guid><dc:creator>{who}</dc:creator>
      <pubDate>Fri, 27 Oct 2017 0{n}:00:00 +0000</pubDate><description>Comment {n}</description>
      <content:encoded><![CDATA[<p>Comment number {n} from {who}.</p>]]></content:encoded></item>"""
                    for n, who in ((1, "Reader A"), (2, "Reader B")))
    rss = f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
      xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel><title>Comments on: Probation news</title><link>{base}/probation-news/</link>{items}</channel></rss>"""
    feed_server.add("/probation-news/feed/", rss.encode(), "application/rss+xml")
    report = fetch(db, tmp_path, url)
    assert report.error is None, report.error
    assert {c.key: (c.author, c.text) for c in db.content.iter_comments()} == {
        "1": ("Reader A", "Comment number 1 from Reader A."), "2": ("Reader B", "Comment number 2 from Reader B.")}


def test_an_atom_posts_feed_names_each_post_s_comment_feed():
    from digest.read import parse
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://wp.example/">
      <title>t</title><generator uri="https://wordpress.org/">WordPress</generator>
      <entry><id>https://wp.example/?p=7</id><title>A post</title><link rel="alternate" href="a-post/"/>
      <link rel="replies" type="application/atom+xml" href="a-post/feed/atom/"/>
      <updated>2017-10-27T09:00:00Z</updated></entry></feed>"""
    page = parse.posts_page(parse.read(atom, "https://wp.example/feed/atom/"), "wordpress")
    assert [(p.key, p.url, p.comments_feed) for p in page.posts] == [
        ("7", "https://wp.example/a-post/", "https://wp.example/a-post/feed/atom/")]


def test_items_a_database_cannot_hold_are_made_storable_not_fatal(db, feed_server, tmp_path):
    entries = "".join(f"""<entry><id>tag:x,2017:{n}</id><title>{title}</title><link href="/p{n}"/>
      <published>{published}</published><updated>2017-10-27T09:00:00Z</updated>{extra}</entry>"""
                      for n, title, published, extra in (
                          (1, "Good", "2017-10-27T09:00:00Z", ""),
                          (2, "Huge count", "2017-10-27T09:00:00Z", "<thr:total>99999999999999999999999</thr:total>"),
                          (3, "Year one", "0001-01-01T00:00:00+01:00", ""),
                          (4, "&#xD800;x", "2017-10-27T09:00:00Z", "")))
    feed = f"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"
      xmlns:thr="http://purl.org/syndication/thread/1.0"><title>t</title><id>f</id>{entries}</feed>"""
    feed_server.add("/odd.xml", feed.encode())
    report = fetch(db, tmp_path, f"{feed_server.base_url}/odd.xml")
    assert report.error is None, report.error
    stored = {p.title: p for p in db.content.iter_posts()}
    assert len(stored) == 4 and stored["Huge count"].comments_total is None


def test_a_next_link_that_loops_stops_with_a_warning(db, feed_server, tmp_path):
    base = feed_server.base_url
    feed = f"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>
      <link rel="next" href="{base}/loop.xml"/><entry><id>tag:x,2017:1</id><title>Only</title>
      <link href="/only"/><updated>2017-10-27T09:00:00Z</updated></entry></feed>"""
    feed_server.add("/loop.xml", feed.encode())
    report = fetch(db, tmp_path, f"{base}/loop.xml")
    assert report.error is None and report.requests == 1
    assert any("loop" in w for w in report.warnings)


def test_a_wordpress_comment_feed_that_lists_only_the_newest_deletes_nothing(db, feed_server, tmp_path):
    url = wordpress.publish(feed_server)
    assert fetch(db, tmp_path, url).comments_new == 4                   # through the REST API: all of them
    query = urlencode({"post": 101, "per_page": 100, "page": 1, "orderby": "id"})
    feed_server.fail(f"/wp-json/wp/v2/comments?{query}", Fault(status=401))
    newest = [dict(p) for p in wordpress.POSTS]
    newest[0] = {**newest[0], "comments": newest[0]["comments"][-1:] + [
        {"id": 5, "parent": 0, "author": "Reader E", "date": "2017-10-28T09:00:00", "text": "A fifth one."}]}
    feed_server.add("/probation-news/feed/atom/", wordpress._atom(feed_server.base_url, newest[0]).encode())
    rss = feed_server.extra["/feed/"][0].decode().replace("<slash:comments>4<", "<slash:comments>5<")
    feed_server.add("/feed/", rss.encode(), "application/rss+xml")
    fetch(db, tmp_path, url)
    assert db.content.totals()["comments"] == 5                          # four kept, one new, none deleted


def test_markup_too_deep_to_sanitise_quickly_is_kept_as_text():
    from digest.sanitize import clean_html
    assert clean_html("<div>" * 6000 + "x<script>alert(1)</script>") == "<p>x alert(1)</p>"


def test_a_broken_mirror_manifest_fails_that_source_alone(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"urls": 5}', encoding="utf-8")
    examples = Path(__file__).resolve().parent.parent / "examples" / "onprobation"
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/d.db"\n\n'
                           f'[[sources]]\nname = "broken"\nurl = "{broken}"\n\n'
                           f'[[sources]]\nname = "good"\nurl = "{examples}"\nbackfill_days = 0\n', encoding="utf-8")
    fetched = CliRunner().invoke(cli, ["--config", str(config_file), "fetch"])
    assert fetched.exit_code == 1 and "Traceback" not in fetched.output
    assert "broken: FAILED:" in fetched.output and "good: posts 9 new" in fetched.output


def test_a_compressed_response_is_bounded_by_what_it_unpacks_to(feed_server):
    import gzip

    from digest.config import Fetch
    from digest.read.errors import FetchError
    from digest.read.fetch import Fetcher
    small = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
    feed_server.fail("/ok", Fault(status=200, body=gzip.compress(small), headers={"Content-Encoding": "gzip"}))
    feed_server.fail("/bomb", Fault(status=200, body=gzip.compress(b"\0" * 20_000_000),
                                    headers={"Content-Encoding": "gzip"}))
    feed_server.fail("/stacked", Fault(status=200, body=gzip.compress(gzip.compress(b"\0" * 1000)),
                                       headers={"Content-Encoding": "gzip, gzip"}))
    with Fetcher(Fetch(retries=0, max_bytes=1_000_000)) as client:
        assert client.get(feed_server.base_url + "/ok").content == small
        with pytest.raises(FetchError, match="response larger than 1000000 bytes"):
            client.get(feed_server.base_url + "/bomb")                  # 20 kB on the wire, 20 MB unpacked
        with pytest.raises(FetchError, match="Content-Encoding 'gzip, gzip', which digest did not ask for"):
            client.get(feed_server.base_url + "/stacked")
