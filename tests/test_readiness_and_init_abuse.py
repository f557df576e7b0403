"""A stranger's attack on the safe first send, `digest init` and the config: base URLs
readers cannot open, guessable secrets, hostile site and feed links, a broken
Content-Location, infinite weights and a From with two addresses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import config
from digest.cli import cli
from digest.errors import ConfigError
from digest.live import setup
from digest.read.parse import read
from digest.send.readiness import NotReady, check_ready_to_send, problems_for_real_mail, secret_problem

from .support.feedserver import FeedServer

STRONG = "Kq3v9xPz1LmN7bRt5YwA2cE8"


def settings_for(tmp_path: Path, base_url: str) -> config.Settings:
    return config.from_dict({"sending": {"backend": "smtp", "from": "Blog <digest@myblog.org>"},
                             "web": {"base_url": base_url}}, root=tmp_path)


def base_url_problem(tmp_path: Path, base_url: str) -> str | None:
    return next((fix for key, fix in problems_for_real_mail(settings_for(tmp_path, base_url).send_settings())
                 if key == "[web].base_url"), None)


# ------------------------------------------------------------------ base_url

LOOPBACK = ["http://127.1:8000", "http://0:8000", "http://2130706433:8000", "http://0x7f.1:8000",
            "http://0177.0.0.1:8000", "http://127.0.0.1.:8000", "http://[::ffff:127.0.0.1]:8000",
            "http://localhost.:8000", "http://[::1]:8000"]
PRIVATE = ["http://192.168.1.10:8000", "http://10.0.0.5", "http://172.16.3.4", "http://172.31.255.1",
           "http://[fc00::1]:8000", "http://[fd12:3456::1]", "http://[::ffff:192.168.1.10]", "http://100.64.0.1",
           "http://digest:8000", "http://digest.:8000", "http://my-laptop.lan:8000", "http://foo.internal",
           "http://nas.home.arpa", "http://box.localdomain", "http://MY-LAPTOP.LAN"]


@pytest.mark.parametrize("base_url", LOOPBACK)
def test_every_spelling_of_a_loopback_address_is_local(tmp_path, monkeypatch, base_url):
    monkeypatch.setenv("DIGEST_SECRET_KEY", STRONG)
    assert base_url_problem(tmp_path, base_url) == (
        f"{base_url} is a local address readers cannot open; set it to the public address of `digest serve` "
        "(e.g. https://digest.yourblog.org)")


@pytest.mark.parametrize("base_url", PRIVATE)
def test_a_private_network_address_or_name_is_refused(tmp_path, monkeypatch, base_url):
    monkeypatch.setenv("DIGEST_SECRET_KEY", STRONG)
    problem = base_url_problem(tmp_path, base_url)
    assert problem is not None and problem.startswith(f"{base_url} is a private-network address readers cannot open")


@pytest.mark.parametrize("base_url", ["https://digest.myblog.org", "http://8.8.8.8:8000", "https://[2606:4700::1111]",
                                      "https://digest.myblog.org.", "https://lan.myblog.org", "https://internal.io"])
def test_a_public_address_is_accepted(tmp_path, monkeypatch, base_url):
    monkeypatch.setenv("DIGEST_SECRET_KEY", STRONG)
    assert problems_for_real_mail(settings_for(tmp_path, base_url).send_settings()) == []


def test_the_refusal_is_one_line_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", STRONG)
    with pytest.raises(NotReady) as refused:
        check_ready_to_send(settings_for(tmp_path, "http://192.168.1.10:8000").send_settings())
    message = str(refused.value)
    assert "\n" not in message and "[web].base_url: http://192.168.1.10:8000 is a private-network address" in message


# ------------------------------------------------------------------ secrets

@pytest.mark.parametrize(("secret", "problem"), [
    ("1234567890123456", "is too easy to guess (only digits)"),
    ("98765432109876543210", "is too easy to guess (only digits)"),
    ("abababab-cdcdcdcd", "is too easy to guess (only 5 different characters, at least 10)"),
    ("aAbBcCdD-aAbBcCdD", "is too easy to guess (only 9 different characters, at least 10)"),
    ("password12345678", "is too easy to guess (mostly a common word or a run such as abcdef or 123456)"),
    ("abcdefghijklmnop", "is too easy to guess (mostly a common word or a run such as abcdef or 123456)"),
    ("ZYXWVUTSRQPONMLK", "is too easy to guess (mostly a common word or a run such as abcdef or 123456)"),
    ("qwertyuiopasdfgh", "is too easy to guess (mostly a common word or a run such as abcdef or 123456)"),
    ("Passw0rd!Qwerty#2024", "is too easy to guess (mostly a common word or a run such as abcdef or 123456)"),
])
def test_an_obvious_secret_is_refused(secret, problem):
    assert secret_problem(secret) == problem


@pytest.mark.parametrize("secret", [STRONG, "kX3vQ9zL2mN8pR4tW6yB", "a-test-signing-secret-of-real-length-0123456789",
                                    "hhxKLkH_QpbH5Zz1RVV1vaSWDYsIoXxxFUZ9qQIuQ7g",      # token_urlsafe(32) with "Xxx"
                                    "8f14e45fceea167a5a36dedd4bea2543"])              # token_hex(16)
def test_a_random_secret_is_accepted(secret):
    assert secret_problem(secret) == ""


# ------------------------------------------------------------------ digest init

FEED = ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Evil</title><id>x</id>'
        '<updated>2017-01-01T00:00:00Z</updated><link rel="alternate" href="{site}"/>'
        '<entry><id>1</id><title>t</title><updated>2017-01-01T00:00:00Z</updated><content>hi</content></entry></feed>')
FEED_URL = "https://blog.example.net/feed"


@pytest.mark.parametrize("site", ["http://[::1", "http://[::1/home", "javascript:alert(1)", "JavaScript:alert(1)",
                                  "data:text/html,hi", "mailto:a@b.org", "http://", "https://blog.example.net\x0b/x"])
def test_a_site_link_that_is_not_a_web_page_falls_back_to_the_feed_origin(tmp_path, site):
    blog = setup._as_feed(FEED.format(site=site).encode(), FEED_URL, {})
    assert blog is not None and blog.site_url == "https://blog.example.net"
    setup.write(blog, tmp_path / "config.toml")
    assert config.load(tmp_path / "config.toml").site.url == "https://blog.example.net"


def test_a_site_link_on_another_host_is_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="digest.live.setup"):
        blog = setup._as_feed(FEED.format(site="https://my-bank.example.com/login").encode(), FEED_URL, {})
    assert blog is not None and blog.site_url == "https://blog.example.net"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{FEED_URL}: the feed names its site on another host (https://my-bank.example.com/login); "
                        "using https://blog.example.net instead"]


@pytest.mark.parametrize(("site", "expected"), [("/", "https://blog.example.net"),
                                                ("http://blog.example.net/home/", "http://blog.example.net/home"),
                                                ("https://www.blog.example.net/", "https://www.blog.example.net")])
def test_a_site_link_on_the_feeds_host_is_kept(site, expected, caplog):
    blog = setup._as_feed(FEED.format(site=site).encode(), FEED_URL, {})
    assert blog is not None and blog.site_url == expected and not caplog.records


@pytest.mark.parametrize("href", ["http://[::1/feed", "http://[::1]:x/feed", "javascript:alert(1)"])
def test_a_page_whose_feed_link_is_broken_names_no_feed(href):
    page = f'<html><head><link rel="alternate" type="application/atom+xml" href="{href}"></head></html>'
    assert setup._feed_links(page, "https://blog.example.net/") == []


def test_a_page_whose_base_is_broken_resolves_against_its_own_address():
    page = ('<html><head><base href="http://[::1"><link rel="alternate" type="application/atom+xml" '
            'href="/feed"></head></html>')
    assert setup._feed_links(page, "https://blog.example.net/") == ["https://blog.example.net/feed"]


def test_init_on_a_page_with_a_broken_feed_link_is_one_error_line(feed_server: FeedServer, tmp_path):
    feed_server.add("/", b'<html><head><link rel="alternate" type="application/atom+xml" href="http://[::1/feed">'
                         b'</head></html>', "text/html")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "init", feed_server.base_url + "/"])
    assert result.exit_code == 2 and result.output.startswith("Error: "), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_init_on_a_feed_whose_site_is_a_broken_link_writes_a_config(feed_server: FeedServer, tmp_path):
    feed_server.add("/feed", FEED.format(site="http://[::1").encode())
    path = tmp_path / "config.toml"
    result = CliRunner().invoke(cli, ["--config", str(path), "init", feed_server.base_url + "/feed"])
    assert result.exit_code == 0, result.output
    assert config.load(tmp_path / "config.toml").site.url == feed_server.base_url


# ------------------------------------------------------------------ parse.read

@pytest.mark.parametrize("location", ["http://[::1", "http://[::1/feed", "http://[zz]/x"])
def test_a_broken_content_location_is_ignored(location):
    feed = FEED.format(site="/home").encode()
    parsed = read(feed, FEED_URL, {"content-location": location})
    assert parsed["digest_base"] == FEED_URL


def test_a_good_content_location_is_still_the_base():
    parsed = read(FEED.format(site="/home").encode(), FEED_URL, {"content-location": "/2017/feed"})
    assert parsed["digest_base"] == "https://blog.example.net/2017/feed"


# ------------------------------------------------------------------ config

WEIGHTS = ["words_weight", "reply_weight", "reply_words_weight", "replier_weight", "response_weight",
           "responder_weight", "quoted_weight"]


@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("value", ["inf", "nan", "+inf"])
def test_a_selection_weight_must_be_finite(tmp_path, weight, value):
    path = tmp_path / "config.toml"
    path.write_text(f"[selection]\n{weight} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        config.load(path)
    assert str(refused.value).strip() == f"config.toml [selection].{weight}: Input should be a finite number"


def test_a_finite_weight_still_loads():
    assert config.from_dict({"selection": {"words_weight": 2.5, "quoted_weight": 0}}).selection.words_weight == 2.5


@pytest.mark.parametrize("sender", ["Blog <a@myblog.org>, spoof@bank.com", "a@myblog.org; spoof@bank.com",
                                    "Blog <a@myblog.org> <spoof@bank.com>", "a@myblog.org, b@myblog.org"])
def test_the_from_holds_exactly_one_address(sender):
    with pytest.raises(ConfigError) as refused:
        config.from_dict({"sending": {"from": sender}})
    assert str(refused.value).strip() == ("config.toml [sending].from: holds more than one address; use one, "
                                          "e.g. 'Name <address@example.org>'")


@pytest.mark.parametrize("sender", ['"Blog, Inc." <digest@myblog.org>', "digest@myblog.org",
                                    "Blog <digest@myblog.org>"])
def test_one_address_with_a_comma_in_its_quoted_name_is_fine(sender):
    assert config.from_dict({"sending": {"from": sender}}).sending.from_ == sender


def test_a_broken_link_in_a_feed_entry_is_no_link_not_a_crash():
    from digest.read.parse import absolute, blogger_comments_direct
    assert absolute("https://b.example/", "http://[::1") is None
    assert absolute("https://b.example/", "http://b.example:99999/x") is None
    assert absolute("https://b.example/", "/x") == "https://b.example/x"
    feed = (b"<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
            b"<id>tag:blogger.com,1999:blog-5.post77..comments</id><generator>Blogger</generator></feed>")
    page = blogger_comments_direct(feed, "https://b.example/f", {"content-location": "http://[::1"})
    assert page is not None and page.comments == []
