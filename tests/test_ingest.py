"""Ingest of On Probation's real feeds, served on loopback, into SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from digest.db import Database
from digest.models import SourceReport
from digest.read.ingest import ingest

from .conftest import NOW, make_settings
from .support.blog import Blog, new_comment, onprobation
from .support.feedserver import Fault


def run(db: Database, blog: Blog, tmp_path, backfill: int = 0, now=NOW, full: bool = False,
        **fetch: object) -> SourceReport:
    settings = make_settings(tmp_path, [{"name": "op", "url": blog.posts_url, "backfill_days": backfill}])
    if fetch:
        settings = settings.model_copy(update={"fetch": settings.fetch.model_copy(update=fetch)})
    return ingest(settings.sources[0], settings.fetch, db, tmp_path, now, full=full)


def stored(db: Database) -> dict[str, dict]:
    return {row.key: dict(row._mapping) for row in db.content.iter_comments()}


def test_every_post_and_comment_is_stored_with_its_parent(db, blog, tmp_path):
    report = run(db, blog, tmp_path)
    assert report.error is None, report.error
    assert (report.posts_new, report.comments_new) == (9, 74)
    rows = stored(db)
    assert len(rows) == 74
    for post, comment, parent in blog.all_comments():
        row = rows[comment["id"]]
        assert row["post_key"] == post["id"]
        assert row["parent_key"] == (parent["id"] if parent else None)
        assert row["author"] == comment["author"]
        assert row["removed"] == comment.get("removed", False)
    counts = {p.key: p.comments_total for p in db.content.iter_posts()}
    assert counts == {p["id"]: sum(1 + len(c["replies"]) for c in p["comments"]) for p in blog.data["posts"]}


def test_removed_comments_are_kept_as_nodes_without_content(db, blog, tmp_path):
    run(db, blog, tmp_path)
    removed = [r for r in stored(db).values() if r["removed"]]
    assert len(removed) == 2
    assert all(r["text"] == "" and r["html"] == "" for r in removed)


def test_comment_text_keeps_paragraphs_and_decodes_entities(db, blog, tmp_path):
    run(db, blog, tmp_path)
    rows = stored(db)
    for _, comment, _ in blog.all_comments():
        if not comment.get("removed"):
            expected = "\n\n".join(" ".join(p.replace("\u00a0", " ").split()) for p in comment["paragraphs"])
            assert rows[comment["id"]]["text"] == expected


def test_second_fetch_is_conditional_and_stores_nothing(db, blog, tmp_path):
    run(db, blog, tmp_path)
    blog.server.reset_log()
    report = run(db, blog, tmp_path)
    assert (report.posts_new, report.comments_new, report.comments_updated) == (0, 0, 0)
    assert report.requests == len(blog.server.requests) <= 2
    assert all("if-none-match" in r.headers for r in blog.server.requests)
    assert all(r.status == 304 for r in blog.server.requests)


def test_user_agent_is_our_own(db, blog, tmp_path):
    run(db, blog, tmp_path)
    assert all(r.headers["user-agent"].startswith("digest/") for r in blog.server.requests)


def test_new_reply_is_stored_under_its_parent(db, blog, tmp_path):
    run(db, blog, tmp_path)
    post = blog.post("A Fantasy World")
    parent = post["comments"][0]
    new_comment(blog.data, post, "A late reply to an old thread.", NOW - timedelta(hours=1), parent)
    blog.publish()
    report = run(db, blog, tmp_path)
    assert (report.comments_new, report.comments_updated) == (1, 0)
    row = stored(db)["999000000000000001"]
    assert (row["post_key"], row["parent_key"]) == (post["id"], parent["id"])


def test_edited_post_and_comment_are_updated_not_duplicated(db, blog, tmp_path):
    run(db, blog, tmp_path)
    post = blog.post("Reaction To Panorama")
    post["body"][0] = "An edited first paragraph."
    post["updated"] = "2017-10-31T20:00:00.000+00:00"
    newest = max((c for _, c, _ in blog.all_comments()), key=lambda c: c["published"])
    newest["paragraphs"] = ["Edited text."]
    blog.publish()
    report = run(db, blog, tmp_path)
    assert (report.posts_new, report.posts_updated) == (0, 1)
    assert (report.comments_new, report.comments_updated) == (0, 1)
    assert stored(db)[newest["id"]]["text"] == "Edited text."
    assert next(p for p in db.content.iter_posts() if p.key == post["id"]).text.startswith("An edited first")
    assert db.content.totals() == {"posts": 9, "comments": 74}


def test_comment_removed_later_keeps_its_replies_attached(db, blog, tmp_path):
    run(db, blog, tmp_path)
    post = blog.post("Reaction To Panorama")
    parent = next(c for c in post["comments"] if c["replies"])
    parent["removed"] = True
    blog.publish()
    run(db, blog, tmp_path, full=True)
    rows = stored(db)
    assert rows[parent["id"]]["removed"] and rows[parent["id"]]["text"] == ""
    assert all(rows[r["id"]]["parent_key"] == parent["id"] for r in parent["replies"])


def test_per_post_feeds_are_paged_when_counts_differ(db, feed_server, tmp_path):
    """With the blog-wide feed gone, every post's own feed is read through all its pages."""
    blog = Blog(feed_server, tmp_path / "blog10", onprobation(),
                page_size=10)
    feed_server.fail("/feeds/comments/default", Fault(status=404))
    report = run(db, blog, tmp_path)
    assert report.error is None and report.comments_new == 74
    fantasy = blog.post("A Fantasy World")["id"]
    paths = [r.path for r in feed_server.requests if r.path.startswith(f"/feeds/{fantasy}/")]
    assert paths == [f"/feeds/{fantasy}/comments/default",
                     f"/feeds/{fantasy}/comments/default?start-index=11&max-results=10",
                     f"/feeds/{fantasy}/comments/default?start-index=21&max-results=10"]
    assert stored(db)[blog.post("A Fantasy World")["comments"][0]["id"]]["parent_key"] is None


def test_comment_deleted_from_the_blog_is_marked_deleted(db, blog, tmp_path):
    run(db, blog, tmp_path)
    post = blog.post("Reaction To Panorama")
    gone = post["comments"].pop()
    blog.publish()
    run(db, blog, tmp_path, full=True)
    rows = stored(db)
    assert rows[gone["id"]]["deleted"]
    assert db.content.totals()["comments"] == 74 - 1 - len(gone["replies"])


def test_first_fetch_reads_only_the_backfill_window(db, blog, tmp_path):
    report = run(db, blog, tmp_path, backfill=30)
    assert report.error is None
    titles = {p.title for p in db.content.iter_posts()}
    assert "A Fantasy World" not in titles and "Damning Probation Report 3" not in titles
    assert len(titles) == 7
    assert report.comments_new == 36
    assert not any(r.path.startswith("/feeds/comments/default?start-index=51") for r in blog.server.requests)


def test_new_comment_on_a_post_older_than_the_window_brings_its_thread(db, blog, tmp_path):
    run(db, blog, tmp_path, backfill=30)
    post = blog.post("A Fantasy World")
    parent = post["comments"][1]
    new_comment(blog.data, post, "Still relevant in 2017.", NOW - timedelta(hours=2), parent)
    blog.publish()
    report = run(db, blog, tmp_path, backfill=30, now=NOW + timedelta(days=1))
    assert report.error is None
    rows = stored(db)
    assert rows["999000000000000001"]["parent_key"] == parent["id"]
    old = next(p for p in db.content.iter_posts() if p.key == post["id"])
    assert (old.title, old.stub) == ("A Fantasy World", False)
    assert report.comments_new == 25   # the new reply, and the thread it belongs to
    titles = {p.title for p in db.content.iter_posts()}
    assert "Damning Probation Report 3" not in titles   # older than the window, no new activity


def test_orphan_reply_becomes_top_level_and_is_counted(db, blog, tmp_path):
    feeds = blog.folder / "feeds"
    post = blog.post("Napo Responds To Panorama")
    parent = next(c for c in post["comments"] if c["replies"])
    for file in feeds.glob("*.xml"):
        text = file.read_text(encoding="utf-8")
        file.write_text(text.replace(f"/comments/default/{parent['id']}\"", "/comments/default/1\""), encoding="utf-8")
    report = run(db, blog, tmp_path)
    assert report.orphans == len(parent["replies"])
    rows = stored(db)
    assert all(rows[r["id"]]["parent_key"] is None and rows[r["id"]]["orphan"] for r in parent["replies"])
    assert "orphan" in report.summary()


# ------------------------------------------------------------------ bad input

def test_server_error_is_reported_and_nothing_stored_is_lost(db, blog, tmp_path):
    run(db, blog, tmp_path)
    blog.server.fail("/feeds/posts/default", Fault(status=500))
    report = run(db, blog, tmp_path)
    assert report.failed and "HTTP 500" in report.error and "/feeds/posts/default" in report.error
    assert db.content.totals() == {"posts": 9, "comments": 74}


def test_blog_wide_feed_failing_part_way_falls_back_to_each_posts_feed(db, blog, tmp_path):
    blog.server.fail("/feeds/comments/default?start-index=51&max-results=25", Fault(status=503))
    report = run(db, blog, tmp_path)
    assert report.error is None
    assert db.content.totals() == {"posts": 9, "comments": 74}


def test_failure_part_way_saves_no_validators_so_the_next_run_rereads(db, blog, tmp_path):
    """One post's comment feed failing does not fail the source: the rest is stored, the
    gap is reported, and nothing is marked read, so the next run reads it again."""
    fantasy = blog.post("A Fantasy World")["id"]
    blog.server.fail("/feeds/comments/default", Fault(status=404))
    blog.server.fail(f"/feeds/{fantasy}/comments/default", Fault(status=503))
    report = run(db, blog, tmp_path)
    assert not report.failed and any("HTTP 503" in w and "fantasy-world" in w for w in report.warnings)
    assert db.content.totals()["comments"] == 74 - 24
    blog.server.faults.clear()
    blog.server.reset_log()
    report = run(db, blog, tmp_path)
    assert report.error is None and report.comments_new == 24
    assert blog.server.requests[0].status == 200
    assert db.content.totals() == {"posts": 9, "comments": 74}


def test_html_page_instead_of_feed_is_a_clear_error(db, blog, tmp_path):
    blog.server.add("/feeds/posts/default", b"<!doctype html><html><body>Blog moved</body></html>", "text/html")
    report = run(db, blog, tmp_path)
    assert report.failed and "not a feed" in report.error and "HTML page" in report.error


def test_malformed_xml_keeps_what_parsed_and_warns(db, blog, tmp_path):
    page = (blog.folder / "feeds" / "comments-default.xml").read_bytes()
    cut = page.index(b"</entry>", len(page) // 2) + len(b"</entry>")
    blog.server.add("/feeds/comments/default", page[:cut] + b"\n<entry><id>broken")
    report = run(db, blog, tmp_path)
    assert report.warnings and "malformed feed" in report.warnings[0]
    assert report.comments_new > 0


def test_redirect_to_another_host_is_refused(db, blog, tmp_path):
    blog.server.fail("/feeds/posts/default", Fault(status=301, headers={"Location": "http://evil.example/feed"}))
    report = run(db, blog, tmp_path)
    assert report.failed and "another host" in report.error


def test_response_over_the_size_cap_is_refused(db, blog, tmp_path):
    report = run(db, blog, tmp_path, max_bytes=2000)
    assert report.failed and "larger than 2000 bytes" in report.error
    assert db.content.totals() == {"posts": 0, "comments": 0}
