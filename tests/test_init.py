"""`digest init URL`: finds the feed of a Blogger blog (the offline sample, served on
loopback), a WordPress blog (a local WordPress-like server) or a plain feed, writes a
config that digest itself loads and fetches with, and an empty list file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import config
from digest.cli import cli
from digest.db import Database

from .support import wordpress
from .support.feedserver import FeedServer

BLOGGER_HOME = """<!DOCTYPE html><html><head><title>On Probation</title>
<link rel="alternate" type="application/atom+xml" title="On Probation - Atom" href="{base}/feeds/posts/default" />
<link rel="alternate" type="application/rss+xml" title="On Probation - RSS" href="{base}/feeds/posts/default?alt=rss" />
<link rel="service.post" type="application/atom+xml" title="On Probation - Atom"
 href="https://www.blogger.com/feeds/1/posts/default" />
</head><body>posts</body></html>"""

BLOGGER_POST = """<!DOCTYPE html><html><head>
<link rel="alternate" type="application/atom+xml" title="On Probation - Comments"
 href="{base}/feeds/9/comments/default" />
<link rel="alternate" type="application/atom+xml" title="On Probation - Atom" href="/feeds/posts/default" />
</head><body>a post</body></html>"""

WORDPRESS_HOME = """<!DOCTYPE html><html lang="en-GB"><head><meta charset="UTF-8">
<link rel="alternate" type="application/rss+xml" title="WP blog &raquo; Comments Feed" href="{base}/comments/feed/" />
<link rel="alternate" type="application/rss+xml" title="WP blog &raquo; Feed" href="{base}/feed/" />
<link rel="https://api.w.org/" href="{base}/wp-json/" />
</head><body>home</body></html>"""


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def init(config_path: Path, url: str, *extra: str):
    return run("--config", str(config_path), "init", url, *extra)


def fetch_everything(config_path: Path) -> list[dict]:
    """`digest fetch` with the written config (its backfill opened to the sample's 2017)."""
    path = config_path
    path.write_text(path.read_text(encoding="utf-8").replace("backfill_days = 30", "backfill_days = 0"),
                    encoding="utf-8")
    result = run("--config", str(path), "fetch")
    assert result.exit_code == 0, result.output
    settings = config.load(path)
    with Database.open(settings.database_url()) as db:
        return db.content.source_overview()


def test_blogger_sample_from_its_home_page(blog, feed_server, tmp_path):
    base = feed_server.base_url
    feed_server.add("/", BLOGGER_HOME.format(base=base).encode(), "text/html; charset=UTF-8")
    path = tmp_path / "site" / "config.toml"
    result = init(path, f"{base}/")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Found the blogger feed of On Probation: {base}/feeds/posts/default"
    assert lines[-4:] == ["Next:", f"  digest --config {path} fetch",
                          f"  digest --config {path} subscribers add weekly you@example.org",
                          f"  digest --config {path} preview weekly --out preview.html"]
    settings = config.load(path)                          # digest's own loader
    source = settings.sources[0]
    assert (source.url, source.kind, source.name) == (f"{base}/feeds/posts/default", "blogger", "127-0-0-1")
    assert settings.site.title == "On Probation" and settings.lists[0].title == "The On Probation digest"
    assert (tmp_path / "site" / "subscribers" / "weekly.csv").read_text(encoding="utf-8") == "email,name\n"
    assert "# " in path.read_text(encoding="utf-8")        # commented
    as_written = tmp_path / "as-written" / "config.toml"      # another folder: its own database
    as_written.parent.mkdir()
    as_written.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert run("--config", str(as_written), "fetch").exit_code == 0     # the last 30 days: none of 2017 here
    overview = fetch_everything(path)
    assert overview[0]["posts"] >= 5 and overview[0]["comments"] > 50


def test_a_post_page_leads_to_the_posts_feed_not_its_comments(blog, feed_server, tmp_path):
    feed_server.add("/2017/10/a-post.html", BLOGGER_POST.format(base=feed_server.base_url).encode(), "text/html")
    result = init(tmp_path / "config.toml", f"{feed_server.base_url}/2017/10/a-post.html")
    assert result.exit_code == 0, result.output
    assert config.load(tmp_path / "config.toml").sources[0].url == f"{feed_server.base_url}/feeds/posts/default"


def test_the_url_may_be_the_feed_itself(blog, feed_server, tmp_path):
    result = init(tmp_path / "config.toml", f"{feed_server.base_url}/feeds/posts/default")
    assert result.exit_code == 0, result.output
    assert config.load(tmp_path / "config.toml").sources[0].kind == "blogger"


@pytest.fixture
def wordpress_server():
    server = FeedServer().start()
    wordpress.publish(server)
    yield server
    server.stop()


def test_wordpress_blog_from_its_home_page(wordpress_server, tmp_path):
    base = wordpress_server.base_url
    wordpress_server.add("/", WORDPRESS_HOME.format(base=base).encode(), "text/html; charset=UTF-8")
    path = tmp_path / "config.toml"
    result = init(path, base)
    assert result.exit_code == 0, result.output
    assert "Found the wordpress feed of WP blog" in result.output
    settings = config.load(path)
    assert (settings.sources[0].url, settings.sources[0].kind) == (f"{base}/feed/", "wordpress")
    assert settings.site.url == base
    overview = fetch_everything(path)
    assert overview[0]["posts"] == 2 and overview[0]["comments"] == 4


def test_a_page_without_feed_links_is_tried_at_the_usual_places(wordpress_server, tmp_path):
    wordpress_server.add("/", b"<!DOCTYPE html><html><head></head><body>no links</body></html>", "text/html")
    result = init(tmp_path / "config.toml", wordpress_server.base_url + "/")
    assert result.exit_code == 0, result.output
    assert config.load(tmp_path / "config.toml").sources[0].url == f"{wordpress_server.base_url}/feed/"


def test_no_feed_anywhere_is_one_error_line(feed_server, tmp_path):
    feed_server.add("/", b"<!DOCTYPE html><html><body>nothing</body></html>", "text/html")
    result = init(tmp_path / "config.toml", feed_server.base_url + "/")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "found no RSS or Atom feed" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "config.toml").exists()


def test_a_feed_on_another_host_is_not_followed(feed_server, tmp_path):
    feed_server.add("/", b'<html><head><link rel="alternate" type="application/rss+xml" '
                         b'href="http://feeds.example.net/blog"></head></html>', "text/html")
    result = init(tmp_path / "config.toml", feed_server.base_url + "/")
    assert result.exit_code == 2 and "on another host (http://feeds.example.net/blog)" in result.output
    assert not any(seen.path.startswith("/blog") for seen in feed_server.requests)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed", "not a url"])
def test_only_web_addresses(tmp_path, url):
    result = init(tmp_path / "config.toml", url)
    assert result.exit_code == 2 and result.output.startswith("Error: ")


def test_an_existing_config_needs_force_and_the_list_is_kept(blog, feed_server, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("# mine\n", encoding="utf-8")
    refused = init(path, f"{feed_server.base_url}/feeds/posts/default")
    assert refused.exit_code == 2 and "exists already" in refused.output and "--force" in refused.output
    assert path.read_text(encoding="utf-8") == "# mine\n"
    members = tmp_path / "subscribers" / "weekly.csv"
    members.parent.mkdir()
    members.write_text("email,name\nkept@example.org,Kept\n", encoding="utf-8")
    forced = init(path, f"{feed_server.base_url}/feeds/posts/default", "--force")
    assert forced.exit_code == 0 and f"Kept {members}" in forced.output
    assert config.load(path).sources[0].kind == "blogger"
    assert members.read_text(encoding="utf-8") == "email,name\nkept@example.org,Kept\n"


def test_a_hostile_feed_title_stays_one_escaped_line(feed_server, tmp_path):
    title = 'Evil" \\ title\n[web]\nbase_url = "http://attacker" \x7f \u2028 😀'
    from xml.sax.saxutils import escape
    atom = (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f'<title>{escape(title)}</title><id>urn:x</id><updated>2017-10-27T08:00:00Z</updated>'
            f'<link rel="alternate" href="{feed_server.base_url}/"/>'
            f'<entry><title>A post</title><id>urn:x:1</id><updated>2017-10-27T08:00:00Z</updated>'
            f'<link rel="alternate" href="{feed_server.base_url}/1"/><content type="html">hi</content></entry></feed>')
    feed_server.add("/atom.xml", atom.encode())
    path = tmp_path / "config.toml"
    result = init(path, f"{feed_server.base_url}/atom.xml")
    assert result.exit_code == 0, result.output
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["site"]["title"] == 'Evil" \\ title [web] base_url = "http://attacker" 😀'
    assert data["web"]["base_url"] == "http://localhost:8000" and data["sources"][0]["kind"] == "feed"
    settings = config.load(path)
    assert "attacker" not in settings.web.base_url and "<" not in settings.sending.from_.split("<")[1][:-1]


def test_init_has_help():
    result = run("init", "--help")
    assert result.exit_code == 0 and "--force" in result.output and "URL" in result.output
