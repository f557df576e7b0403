"""WordPress: RSS2 posts, threaded comments from the REST API or the Atom comment feed."""

from __future__ import annotations

import pytest

from digest.read.ingest import ingest

from .conftest import NOW, make_settings
from .support import wordpress


def fetch(db, tmp_path, url):
    settings = make_settings(tmp_path, [{"name": "wp", "url": url, "backfill_days": 0}])
    return ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)


def threads(db) -> dict[str, tuple[str, str | None, str]]:
    return {r.key: (r.post_key, r.parent_key, r.text) for r in db.content.iter_comments()}


@pytest.mark.parametrize("api", [True, False], ids=["rest-api", "atom-comments"])
def test_wordpress_comments_are_threaded(db, feed_server, tmp_path, api):
    url = wordpress.publish(feed_server, api=api)
    report = fetch(db, tmp_path, url)
    assert report.error is None, report.error
    assert (report.posts_new, report.comments_new) == (2, 4)
    assert threads(db) == {
        "1": ("101", None, "A long first comment about the news."),
        "2": ("101", "1", "A reply to the first."),
        "3": ("101", None, "Bold second thread"),
        "4": ("101", "3", "Answering C."),
    }
    assert {p.key: p.comments_total for p in db.content.iter_posts()} == {"101": 4, "102": 0}
    used = [r.path for r in feed_server.requests]
    assert any(p.startswith("/wp-json/") for p in used)
    assert any(p.endswith("/feed/atom/") for p in used) != api
    assert not any("quiet-post" in p or "post=102" in p for p in used)   # no comments, nothing read


def test_wordpress_second_fetch_reads_no_comments(db, feed_server, tmp_path):
    url = wordpress.publish(feed_server)
    fetch(db, tmp_path, url)
    feed_server.reset_log()
    report = fetch(db, tmp_path, url)
    assert (report.posts_new, report.comments_new) == (0, 0)
    assert [r.path for r in feed_server.requests] == ["/feed/"]
