"""Cost grows with what is new, not with the archive: requests counted on a big blog."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from digest.read.ingest import ingest

from .conftest import make_settings
from .support.blog import Blog, generated, new_comment


@pytest.fixture
def big_blog(feed_server, tmp_path) -> Blog:
    return Blog(feed_server, tmp_path / "big", generated(posts=400, comments=4000))


def fetch(db, blog, tmp_path, now):
    settings = make_settings(tmp_path, [{"name": "big", "url": blog.posts_url, "backfill_days": 0}])
    settings = settings.model_copy(update={"fetch": settings.fetch.model_copy(update={"max_pages": 500})})
    blog.server.reset_log()
    report = ingest(settings.sources[0], settings.fetch, db, tmp_path, now)
    assert report.error is None, report.error
    return report


def test_second_fetch_and_one_new_comment_cost_a_few_requests(db, big_blog, tmp_path):
    comments = len(big_blog.all_comments())
    assert comments > 3000 and len(big_blog.data["posts"]) == 400
    now = datetime.fromisoformat("2018-01-01T00:00:00+00:00")

    first = fetch(db, big_blog, tmp_path, now)
    assert (first.posts_new, first.comments_new) == (400, comments)

    again = fetch(db, big_blog, tmp_path, now)
    assert again.requests <= 4 and (again.posts_new, again.comments_new) == (0, 0)

    old = next(p for p in reversed(big_blog.data["posts"]) if p["comments"])   # early 2010
    parent = old["comments"][0]
    when = now + timedelta(days=1)
    new_comment(big_blog.data, old, "Years later, still true.", when, parent)
    big_blog.publish()
    late = fetch(db, big_blog, tmp_path, when + timedelta(hours=1))
    assert late.requests <= 6
    assert (late.comments_new, late.comments_updated) == (1, 0)
    row = next(r for r in db.content.iter_comments() if r.key == "999000000000000001")
    assert (row.post_key, row.parent_key) == (old["id"], parent["id"])
