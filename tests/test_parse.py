"""Parsing and sanitising: Blogger's quirks, hostile HTML, things that are not feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.read import parse
from digest.read.errors import FeedError
from digest.sanitize import clean_html, to_text

from .support.blog import onprobation
from .support.build_blogger_feeds import build_feeds

HOSTILE = [
    ("<script>alert(1)</script>Hi", "<script", "Hi"),
    ('<img src=x onerror="alert(1)">Hi', "onerror", "Hi"),
    ('<a href="javascript:alert(1)">click</a>', "javascript:", "click"),
    ('<a href="https://example.org" onclick="steal()">ok</a>', "onclick", "ok"),
    ("<style>body{display:none}</style>text", "display:none", "text"),
    ("</textarea></style><script>x()</script>after", "<script", "after"),
    ('<iframe src="https://evil.example"></iframe>words', "iframe", "words"),
    ("<b>unclosed <i>tags", "<b>unclosed <i>tags</i></b>", "unclosed tags"),
    ('<p style="position:fixed">styled</p>', "style=", "styled"),
    ('<svg><script>x()</script></svg>svg', "<svg", "svg"),
    ('<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>', "data:", "d"),
]


@pytest.mark.parametrize("markup, forbidden, text", HOSTILE)
def test_hostile_html_is_neutralised(markup, forbidden, text):
    clean = clean_html(markup)
    if forbidden.startswith("<b>"):
        assert clean == forbidden          # unclosed tags are closed, not cut
    else:
        assert forbidden not in clean
    assert to_text(clean) == text


def test_links_get_safe_rel_and_keep_their_address():
    clean = clean_html('<a href="https://example.org/x?a=1&b=2">x</a>')
    assert 'href="https://example.org/x?a=1&amp;b=2"' in clean and 'rel="nofollow noopener noreferrer"' in clean


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feeds")
    source = out / "threads.json"
    import json
    source.write_text(json.dumps(onprobation()), encoding="utf-8")
    build_feeds(source, out / "feeds")
    return out / "feeds"


def test_blogger_posts_carry_their_counts_and_comment_feeds(feeds):
    parsed = parse.read((feeds / "posts-default.xml").read_bytes(), "https://x/feeds/posts/default")
    assert parse.detect_kind(parsed) == "blogger"
    page = parse.posts_page(parsed, "blogger")
    panorama = next(p for p in page.posts if p.title == "Reaction To Panorama")
    assert panorama.key == "4679021728569442976" and panorama.comments_total == 22
    assert panorama.comments_feed.endswith("/feeds/4679021728569442976/comments/default")
    assert panorama.published.isoformat() == "2017-10-30T06:12:30.561000+00:00"


def test_blogger_author_is_the_name_alone(feeds):
    content = (feeds / "comments-default.xml").read_bytes()
    page = parse.blogger_comments(parse.read(content, "u"), content)
    assert {c.author for c in page.comments} <= {"Anonymous", "Jim Brown", "Getafix"}
    owner = next(c for c in page.comments if c.author == "Jim Brown")
    assert owner.author_uri.startswith("https://www.blogger.com/profile/")


def test_clock_change_keeps_the_true_order(feeds):
    content = (feeds / "1706170121900451828-comments-default.xml").read_bytes()
    page = parse.blogger_comments(parse.read(content, "u"), content)
    reply = next(c for c in page.comments if c.text.startswith("The Dinosaur word"))
    later = next(c for c in page.comments if c.text.startswith("Plenty of negative coverage"))
    assert (later.published - reply.published).total_seconds() == pytest.approx(31 * 60, abs=60)


def test_removed_marker_is_found_although_feedparser_hides_it(feeds):
    content = (feeds / "1954736337346009752-comments-default.xml").read_bytes()
    parsed = parse.read(content, "u")
    assert all(e["gd_extendedproperty"]["name"] != "blogger.contentRemoved" for e in parsed.entries)
    page = parse.blogger_comments(parsed, content)
    assert sum(c.removed for c in page.comments) == 1


def test_removed_marker_is_found_in_malformed_xml(feeds):
    content = (feeds / "1954736337346009752-comments-default.xml").read_bytes()
    broken = content.replace(b"</feed>", b"")
    assert len(parse.removed_ids(broken)) == 1


def test_hostile_comment_in_a_feed_is_sanitised_when_parsed(feeds):
    content = (feeds / "comments-default.xml").read_bytes()
    hostile = b"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    evil = content.replace(b"Firstly, an early", hostile + b"Firstly, an early", 1)
    page = parse.blogger_comments(parse.read(evil, "u"), evil)
    first = page.comments[0]
    assert "<script" not in first.html and "onerror" not in first.html
    assert first.text.startswith("Firstly, an early")


@pytest.mark.parametrize("body, what", [
    (b"", "empty response"),
    (b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>", "got an HTML page"),
])
def test_not_a_feed(body, what):
    with pytest.raises(FeedError, match=f"https://x/feed: not a feed \\({what}\\)"):
        parse.read(body, "https://x/feed", {"content-type": "text/html"})


def test_plain_rss_feed_is_posts_only():
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://t.example/</link>
    <item><title>One &amp; two</title><link>https://t.example/1</link><guid>https://t.example/1</guid>
    <pubDate>Wed, 25 Oct 2017 08:00:00 +0100</pubDate><description>&lt;p&gt;Hello&lt;/p&gt;</description></item>
    </channel></rss>"""
    parsed = parse.read(rss, "https://t.example/feed")
    assert parse.detect_kind(parsed) == "feed"
    post = parse.posts_page(parsed, "feed").posts[0]
    assert (post.title, post.text, post.comments_total) == ("One & two", "Hello", None)
    assert post.published.isoformat() == "2017-10-25T07:00:00+00:00"
