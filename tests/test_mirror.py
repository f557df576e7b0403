"""Offline sources: a feed file on disk, or a mirror folder with its manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

from digest.read.ingest import ingest

from .conftest import NOW, make_settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def fetch(db, tmp_path, url):
    settings = make_settings(tmp_path, [{"name": "local", "url": url, "backfill_days": 0}])
    return ingest(settings.sources[0], settings.fetch, db, tmp_path, NOW)


def test_mirror_folder_is_read_like_the_blog(db, tmp_path):
    shutil.copytree(EXAMPLES / "onprobation", tmp_path / "mirror")
    report = fetch(db, tmp_path, "mirror")
    assert report.error is None and (report.posts_new, report.comments_new) == (9, 74)
    again = fetch(db, tmp_path, "mirror")
    assert (again.requests, again.not_modified, again.comments_new) == (2, 2, 0)


def test_changed_file_in_the_mirror_is_read_again(db, tmp_path):
    shutil.copytree(EXAMPLES / "onprobation", tmp_path / "mirror")
    fetch(db, tmp_path, "mirror")
    posts = tmp_path / "mirror" / "posts-default.xml"
    posts.write_bytes(posts.read_bytes().replace(b"The Beginning of the End?", b"The Beginning of the End!"))
    report = fetch(db, tmp_path, "mirror")
    assert report.posts_updated == 1
    assert any(p.title == "The Beginning of the End!" for p in db.content.iter_posts())


def test_single_feed_file_without_manifest(db, tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_text("""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:t</id>
      <updated>2017-10-30T00:00:00Z</updated><entry><id>urn:t:1</id><title>Hello</title>
      <link href="https://t.example/1"/><published>2017-10-30T00:00:00Z</published><updated>2017-10-30T00:00:00Z</updated>
      <content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>""", encoding="utf-8")
    report = fetch(db, tmp_path, str(feed))
    assert report.error is None and report.posts_new == 1
    assert [p.title for p in db.content.iter_posts()] == ["Hello"]


def test_missing_local_path_names_the_setting(db, tmp_path):
    report = fetch(db, tmp_path, "nowhere/feed.xml")
    assert report.failed
    assert report.error == "nowhere/feed.xml: no such file or folder; check the source's url ([[sources]].url)"


def test_mirror_does_not_serve_files_outside_its_folder(db, tmp_path):
    shutil.copytree(EXAMPLES / "onprobation", tmp_path / "mirror")
    (tmp_path / "secret.xml").write_text("<feed/>")
    import httpx

    from digest.read.mirror import MirrorTransport
    transport = MirrorTransport(tmp_path / "mirror")
    for url in ("http://mirror.invalid/../secret.xml", "http://mirror.invalid/%2E%2E/secret.xml",
                "https://probationmatters.blogspot.com/../secret.xml"):
        assert transport.handle_request(httpx.Request("GET", url)).status_code == 404
    assert transport.handle_request(httpx.Request("GET", "http://mirror.invalid/posts-default.xml")).status_code == 200
