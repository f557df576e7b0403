"""One line for every error: a catalogue of bad inputs, each run through the real CLI
(click's runner) or the web app (Flask's test client), each its own test.

For the CLI every entry must give exactly one line on stderr starting with `Error: `,
the documented exit code (2 for usage and configuration, 1 for run failures) and no
traceback. For a fetch, the failing source's summary line says FAILED with a one-line
reason and the other source is still fetched. For the web, a 4xx page, never a 500, and
no traceback in the body. Everywhere, nothing stored is lost: the rows counted below are
the same before and after.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import sqlite3
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import got_request_exception

from digest import actions, config
from digest.cli import cli
from digest.db import Database, database
from digest.web import create_app

from .support import wordpress
from .support.feedserver import FeedServer
from .support.world import World

SECRET = "test-secret-key-for-the-catalogue"
PASSWORD = "catalogue editor password"
EDITOR_PAGE = "/editor/weekly?since=2017-10-25&until=2017-11-01"
COUNTED = {
    "posts": "SELECT count(*) FROM posts",
    "comments": "SELECT count(*) FROM comments",
    "subscribers": "SELECT count(*) FROM subscribers",
    "active subscribers": "SELECT count(*) FROM subscribers WHERE active",
    "suppressions": "SELECT count(*) FROM suppressions",
    "editions": "SELECT count(*) FROM editions",
    "deliveries": "SELECT count(*) FROM deliveries",
    "picks": "SELECT count(*) FROM picks",
}


# ------------------------------------------------------------------ the site every entry starts from

@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Built once: the On Probation sample stored in SQLite, three subscribers, one
    edition sent (its ledger), one pin waiting. Each test gets its own copy."""
    base = tmp_path_factory.mktemp("catalogue")
    world = World(base, "sqlite:///digest.db", 3)
    try:
        actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        pinned = next(row.key for row in world.db.content.iter_comments() if not row.removed)
        actions.pin(world.db, world.weekly, pinned, datetime.now(UTC))
    finally:
        world.close()
    return base, pinned


class Site:
    """A copy of the template: config.toml (as data, rewritten at will), digest.db, the list file."""

    def __init__(self, template: Path, tmp_path: Path, pinned: str) -> None:
        shutil.copytree(template, tmp_path / "site")
        self.folder = tmp_path / "site" / "examples"
        self.config = self.folder / "config.toml"
        self.database = self.folder / "digest.db"
        self.pinned = pinned
        self.data = config_data(self.config)

    def write_config(self) -> None:
        self.config.write_text(toml(self.data), encoding="utf-8")

    def counts(self) -> dict[str, int]:
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return {what: db.execute(query).fetchone()[0] for what, query in COUNTED.items()}
        finally:
            db.close()


@pytest.fixture
def site(template: tuple[Path, str], tmp_path: Path) -> Site:
    return Site(template[0], tmp_path, template[1])


def config_data(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def toml(data: dict) -> str:
    """TOML for a config dict; strings as JSON strings (valid TOML basic strings), so a
    value holding a line break or a control character is written escaped, not raw."""
    def literal(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + ", ".join(literal(v) for v in value) + "]"
        return str(value)

    def table(name: str, values: dict) -> str:
        plain = "".join(f"{k} = {literal(v)}\n" for k, v in values.items() if not isinstance(v, dict))
        nested = "".join(table(f"{name}.{k}", v) for k, v in values.items() if isinstance(v, dict))
        return f"[{name}]\n{plain}{nested}"

    parts = []
    for section, values in data.items():
        if isinstance(values, list):
            parts.extend(f"[[{section}]]\n" + "".join(f"{k} = {literal(v)}\n" for k, v in item.items())
                         for item in values)
        else:
            parts.append(table(section, values))
    return "\n".join(parts)


# ------------------------------------------------------------------ running the CLI and judging it

def run(site: Site, *args: str) -> Result:
    """The command as a real process runs it: its logging set up by `cli` goes to the
    runner's stderr (under pytest the root logger already has pytest's handlers, which
    would keep every log line out of the stderr judged here)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        return CliRunner().invoke(cli, ["--config", str(site.config), *args])
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def shown(result: Result) -> str:
    """Everything about a run, for the assertion message (a real process would have
    printed the traceback of an exception the runner caught)."""
    text = f"exit {result.exit_code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += "--- uncaught exception (a Traceback in a real process)\n" + "".join(
            traceback.format_exception(*result.exc_info))
    return text


def assert_no_traceback(result: Result) -> None:
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped and "Traceback" not in result.output, shown(result)


def assert_one_error_line(result: Result, code: int, says: str) -> None:
    assert_no_traceback(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), f"not one Error line on stderr\n{shown(result)}"
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}\n{shown(result)}"
    assert says.lower() in lines[0].lower(), f"the line does not mention {says!r}\n{shown(result)}"


# ------------------------------------------------------------------ the CLI catalogue

@dataclass(frozen=True)
class Entry:
    args: tuple[str, ...]
    code: int
    says: str                                          # the Error line mentions this
    prepare: Callable[[Site], None] = lambda site: None


def setting(section: str, key: str, value: object) -> Callable[[Site], None]:
    """Set one key of config.toml (in the first table of an array of tables) and write it."""
    def prepare(site: Site) -> None:
        found = site.data.setdefault(section, {})
        (found[0] if isinstance(found, list) else found)[key] = value
        site.write_config()
    return prepare


def raw_config(text: str) -> Callable[[Site], None]:
    return lambda site: site.config.write_text(text, encoding="utf-8")


def list_file(content: bytes) -> Callable[[Site], None]:
    return lambda site: (site.folder / "subscribers" / "weekly.csv").write_bytes(content)


def import_file(content: bytes) -> Callable[[Site], None]:
    return lambda site: (site.folder / "import.csv").write_bytes(content)


BIG_FIELD = b'email,name\nbig@example.org,"' + b"x" * (129 * 1024) + b'"\n'
CSV_FILES = {
    "not-utf8": (b"email,name\nzoe@example.org,Zo\xe9 Latin-1\n", "UTF-8"),
    "no-email-column": (b"address,name\nzoe@example.org,Zoe\n", "email"),
    "field-over-128KiB": (BIG_FIELD, "line 2"),
    "unterminated-quote": (b'email,name\n"zoe@example.org,Zoe\nbob@example.org,Bob\n', "line 2"),
}

CLI_CATALOGUE: dict[str, Entry] = {
    # config.toml
    "config-unknown-key": Entry(("sources",), 2, "[fetch].timeuot", setting("fetch", "timeuot", 5)),
    "config-timeout-wrong-type": Entry(("sources",), 2, "[fetch].timeout", setting("fetch", "timeout", "soon")),
    "config-source-url-not-a-url": Entry(("sources",), 2, "[[sources]][0].url",
                                         setting("sources", "url", "htp://example.org/feed")),
    "config-site-url-not-a-url": Entry(("sources",), 2, "[site].url", setting("site", "url", "probation matters")),
    "config-period-trailing-newline": Entry(("sources",), 2, "[[lists]][0].period", setting("lists", "period", "7d\n")),
    "config-period-zero": Entry(("sources",), 2, "[[lists]][0].period", setting("lists", "period", "0h")),
    "config-period-huge": Entry(("sources",), 2, "[[lists]][0].period", setting("lists", "period", "99999999999w")),
    "config-period-years": Entry(("sources",), 2, "[[lists]][0].period", setting("lists", "period", "2y")),
    "config-bad-cron": Entry(("sources",), 2, "[[lists]][0].schedule", setting("lists", "schedule", "0 7 * * mon tue")),
    "config-cron-out-of-range": Entry(("sources",), 2, "[[lists]][0].schedule",
                                      setting("lists", "schedule", "61 25 * * mon")),
    "config-unknown-time-zone": Entry(("sources",), 2, "[[lists]][0].timezone",
                                      setting("lists", "timezone", "Europe/Londinium")),
    "config-from-without-address": Entry(("sources",), 2, "[sending].from", setting("sending", "from", "On Probation")),
    "config-title-with-crlf": Entry(("sources",), 2, "[site].title", setting("site", "title", "On\r\nProbation")),
    "config-database-url-unparsable": Entry(("sources",), 2, "[database].url",
                                            setting("database", "url", "postgresql+psycopg://u:p@h:notaport/db")),
    "config-toml-syntax-error": Entry(("sources",), 2, "TOML",
                                      raw_config('[site]\ntitle = "On Probation\n[database\nurl = 1\n')),
    "config-missing-file": Entry(("sources",), 2, "not found",
                                 lambda site: setattr(site, "config", Path("/nonexistent.toml"))),
    # arguments
    "args-unknown-list": Entry(("preview", "monthly"), 2, "monthly"),
    "args-unknown-source": Entry(("fetch", "no-such-source"), 2, "no-such-source"),
    "args-since-not-a-date": Entry(("preview", "weekly", "--since", "last tuesday"), 2, "--since"),
    "args-since-impossible-date": Entry(("preview", "weekly", "--since", "2017-02-30"), 2, "--since"),
    "args-since-after-until": Entry(("preview", "weekly", "--since", "2017-11-01", "--until", "2017-10-25"), 2,
                                    "--since"),
    "args-since-end-of-calendar": Entry(("preview", "weekly", "--since", "9999-12-31"), 2, "--since"),
    "args-until-start-of-calendar": Entry(("preview", "weekly", "--until", "0001-01-02"), 2, "--until"),
    "args-format-not-a-choice": Entry(("preview", "weekly", "--format", "pdf"), 2, "--format"),
    "args-send-to-not-an-address": Entry(("send", "weekly", "--to", "not-an-address"), 2, "not-an-address"),
    "args-pin-unknown-comment": Entry(("pin", "weekly", "no-such-comment"), 2, "no-such-comment"),
    "args-exclude-unknown-list": Entry(("exclude", "monthly", "123456789"), 2, "monthly"),
    "args-add-bad-address": Entry(("subscribers", "add", "weekly", "bad@"), 2, "bad@"),
    "args-add-name-with-newline": Entry(("subscribers", "add", "weekly", "new@example.org", "--name", "Eve\nBcc: x"),
                                        2, "--name"),
    "args-import-a-folder": Entry(("subscribers", "import", "weekly", "{folder}/subscribers"), 2, "subscribers"),
    "args-import-missing-file": Entry(("subscribers", "import", "weekly", "{folder}/missing.csv"), 2, "missing.csv"),
}
for _name, (_content, _says) in CSV_FILES.items():
    CLI_CATALOGUE[f"csv-import-{_name}"] = Entry(("subscribers", "import", "weekly", "{folder}/import.csv"), 1,
                                                 _says, import_file(_content))
    CLI_CATALOGUE[f"csv-sync-{_name}"] = Entry(("subscribers", "list", "weekly", "--sync"), 1, _says,
                                               list_file(_content))


@pytest.mark.parametrize("name", list(CLI_CATALOGUE))
def test_cli_error_is_one_line(site: Site, name: str) -> None:
    entry = CLI_CATALOGUE[name]
    before = site.counts()
    entry.prepare(site)
    result = run(site, *(a.replace("{folder}", str(site.folder)) for a in entry.args))
    assert_one_error_line(result, entry.code, entry.says)
    assert site.counts() == before


# ------------------------------------------------------------------ feeds through `digest fetch`

GOOD = "on-probation"          # the sample blog's mirror, already stored: fetched again, 304s
HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>On Probation</title></head>
<body><h1>On Probation</h1><p>Welcome to the blog. <a href="/feeds/posts/default">Feed</a></p></body></html>
"""
RELATIVE_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Relative blog</title><id>tag:relative.example,2017:blog</id><updated>2017-10-30T09:00:00Z</updated>
  <link rel="alternate" type="text/html" href="/"/>
  <entry>
    <id>tag:relative.example,2017:post-1</id><title>A post with a relative link</title>
    <link rel="alternate" type="text/html" href="/2017/10/relative-post.html"/>
    <author><name>Editor</name></author>
    <published>2017-10-28T09:00:00Z</published><updated>2017-10-28T09:00:00Z</updated>
    <content type="html">&lt;p&gt;Read &lt;a href="../about.html"&gt;about us&lt;/a&gt;.&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>tag:relative.example,2017:post-2</id><title>Another, link without a slash</title>
    <link rel="alternate" type="text/html" href="2017/10/other-post.html"/>
    <published>2017-10-29T09:00:00Z</published><updated>2017-10-29T09:00:00Z</updated>
    <content type="html">Plain words.</content>
  </entry>
</feed>
"""


def local_file(name: str, content: bytes) -> Callable[[Site, FeedServer], dict]:
    def make(site: Site, server: FeedServer) -> dict:
        (site.folder / name).write_bytes(content)
        return {"name": "bad", "url": name, "backfill_days": 0}
    return make


def served(path: str, content: bytes, kind: str) -> Callable[[Site, FeedServer], dict]:
    def make(site: Site, server: FeedServer) -> dict:
        server.add(path, content, kind)
        return {"name": "bad", "url": server.base_url + path, "backfill_days": 0}
    return make


FAILING_FEEDS: dict[str, Callable[[Site, FeedServer], dict]] = {
    "feed-html-page-file": local_file("page.html", HTML_PAGE),
    "feed-html-page-http": served("/blog/", HTML_PAGE, "text/html; charset=utf-8"),
    "feed-empty-file": local_file("empty.xml", b""),
    "feed-empty-http": served("/empty", b"", "application/atom+xml"),
    "feed-json-file": local_file("feed.json", json.dumps({"version": "https://jsonfeed.org/version/1.1",
                                                          "items": [{"id": "1", "title": "x"}]}).encode()),
    "feed-json-http": served("/wp-json/wp/v2/posts", b'[{"id": 1, "title": {"rendered": "x"}}]', "application/json"),
}


def fetch_config(site: Site, bad: dict) -> None:
    good = next(s for s in site.data["sources"] if s["name"] == GOOD)
    site.data["sources"] = [bad, good]          # the bad one first: the good one must still be read
    site.write_config()


@pytest.mark.parametrize("name", list(FAILING_FEEDS))
def test_fetch_fails_that_source_alone_in_one_line(site: Site, feed_server: FeedServer, name: str) -> None:
    fetch_config(site, FAILING_FEEDS[name](site, feed_server))
    before = site.counts()
    result = run(site, "fetch")
    assert_no_traceback(result)
    assert result.exit_code == 1, shown(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, f"not one summary line per source\n{shown(result)}"
    assert re.fullmatch(r"bad: FAILED: \S.*", lines[0]), shown(result)
    assert lines[1].startswith(f"{GOOD}: posts ") and "FAILED" not in lines[1], shown(result)
    assert "Error:" not in result.stderr and "Traceback" not in result.stderr, shown(result)
    assert site.counts() == before
    listing = run(site, "sources")
    assert listing.exit_code == 0, shown(listing)
    assert any(line.startswith("bad: 0 posts") and "FAILED" in line for line in listing.stdout.splitlines())


def test_fetch_feed_with_relative_links_succeeds(site: Site, feed_server: FeedServer) -> None:
    fetch_config(site, served("/relative/feed", RELATIVE_FEED.encode(), "application/atom+xml")(site, feed_server))
    before = site.counts()
    result = run(site, "fetch")
    assert_no_traceback(result)
    assert result.exit_code == 0, shown(result)
    assert result.stdout.splitlines()[0].startswith("bad: posts 2 new"), shown(result)
    after = site.counts()
    assert after["posts"] == before["posts"] + 2 and after["comments"] == before["comments"]
    db = sqlite3.connect(site.database)
    try:
        urls = sorted(row[0] for row in db.execute(
            "SELECT posts.url FROM posts JOIN sources ON sources.id = posts.source_id WHERE sources.name = 'bad'"))
    finally:
        db.close()
    base = feed_server.base_url
    assert urls == [f"{base}/2017/10/relative-post.html", f"{base}/relative/2017/10/other-post.html"]


def test_fetch_wordpress_rest_answer_that_is_not_a_list_falls_back(site: Site, feed_server: FeedServer) -> None:
    url = wordpress.publish(feed_server)
    for path in list(feed_server.extra):
        if path.startswith("/wp-json/"):
            feed_server.add(path, b'{"code": "rest_no_route", "message": "No route", "data": {"status": 404}}',
                            "application/json")
    fetch_config(site, {"name": "bad", "url": url, "kind": "wordpress", "backfill_days": 0})
    before = site.counts()
    result = run(site, "fetch")
    assert_no_traceback(result)
    assert result.exit_code == 0, shown(result)
    assert result.stdout.splitlines()[0].startswith("bad: posts 2 new, 0 updated; comments 4 new"), shown(result)
    assert "Error:" not in result.stderr, shown(result)
    after = site.counts()
    assert (after["posts"], after["comments"]) == (before["posts"] + 2, before["comments"] + 4)


# ------------------------------------------------------------------ the web app

class Web:
    """The app on the site's database, logged in as the editor when asked, and a
    webhook signer whose public key the app trusts."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = config.load(site.config)
        self.db = Database.open(self.settings.database_url())
        self.app = create_app(self.settings, self.db)
        self.client = self.app.test_client()
        self.crashes: list[str] = []          # exceptions the app turned into a 500 page
        got_request_exception.connect(self._crashed, self.app)
        self.key = ec.generate_private_key(ec.SECP256R1())

    def _crashed(self, sender: object, exception: BaseException, **extra: object) -> None:
        self.crashes.append("".join(traceback.format_exception(exception)))

    @property
    def public_key(self) -> str:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def csrf(self, path: str) -> str:
        page = self.client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def editor(self) -> Web:
        answer = self.client.post("/editor/login", data={"csrf": self.csrf("/editor/login"), "password": PASSWORD})
        assert answer.status_code == 303
        return self

    def pick(self, **form: str) -> object:
        token = self.csrf(EDITOR_PAGE)
        return self.client.post("/editor/weekly/pick", data={"csrf": token, **form})

    def webhook(self, body: str, stamp: str | None = None, signed: bool = True) -> object:
        stamp = str(int(time.time())) if stamp is None else stamp
        headers = {"X-Twilio-Email-Event-Webhook-Timestamp": stamp}
        if signed:
            signature = self.key.sign((stamp + body).encode(), ec.ECDSA(hashes.SHA256()))
            headers["X-Twilio-Email-Event-Webhook-Signature"] = base64.b64encode(signature).decode()
        return self.client.post("/webhooks/sendgrid", data=body, content_type="application/json", headers=headers)

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def web(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    made = Web(site)
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", made.public_key)
    yield made
    made.close()


@dataclass(frozen=True)
class Request:
    send: Callable[[Web], object]
    allowed: frozenset[int] = field(default_factory=lambda: frozenset(range(400, 500)))


def event(**fields: str) -> str:
    return json.dumps([{"email": "reader00001@example.org", "event": "delivered", "sg_event_id": "catalogue-1",
                        **fields}])


WEB_CATALOGUE: dict[str, Request] = {
    "editor-since-after-until": Request(lambda w: w.editor().client.get("/editor/weekly?since=2017-11-01"
                                                                        "&until=2017-10-25")),
    "editor-since-end-of-calendar": Request(lambda w: w.editor().client.get("/editor/weekly?since=9999-12-31")),
    "editor-since-not-a-date": Request(lambda w: w.editor().client.get("/editor/weekly?since=notadate")),
    "editor-email-html-since-after-until": Request(lambda w: w.editor().client.get(
        "/editor/weekly/email.html?since=2017-11-01&until=2017-10-25")),
    "editor-test-send-bad-since": Request(lambda w: w.editor().client.post(
        "/editor/weekly/test?since=9999-12-31", data={"csrf": w.csrf(EDITOR_PAGE), "email": "editor@example.org"})),
    "pick-unknown-comment": Request(lambda w: w.editor().pick(comment="999999999999999999", action="pin")),
    "pick-unknown-action": Request(lambda w: w.editor().pick(comment=w.site.pinned, action="promote")),
    # the pick itself is valid (the comment is pinned already): a 4xx, or a redirect that drops the query
    "pick-crlf-in-query": Request(lambda w: w.editor().pick(comment=w.site.pinned, action="pin",
                                                            query="since=2017-10-25\r\nSet-Cookie: editor=1"),
                                  frozenset(range(400, 500)) | {303}),
    "webhook-missing-signature": Request(lambda w: w.webhook(event(), signed=False)),
    "webhook-timestamp-5000-digits": Request(lambda w: w.webhook(event(), stamp="9" * 5000)),
    # signed and well formed: the event is taken (200) and the edition id that fits no column ignored
    "webhook-30-digit-edition-id": Request(lambda w: w.webhook(event(edition="1" * 30)), frozenset({200})),
    "webhook-body-not-json": Request(lambda w: w.webhook("email=reader00001@example.org&event=bounce")),
    "webhook-body-json-object": Request(lambda w: w.webhook('{"event": "bounce", "email": "x@example.org"}')),
    "confirm-garbage-get": Request(lambda w: w.client.get("/confirm/garbage.not-a-token")),
    "confirm-garbage-post": Request(lambda w: w.client.post("/confirm/garbage.not-a-token",
                                                            data={"csrf": w.csrf("/subscribe/weekly")})),
    "unsubscribe-garbage-get": Request(lambda w: w.client.get("/unsubscribe/garbage.not-a-token")),
    "unsubscribe-garbage-one-click": Request(lambda w: w.client.post(
        "/unsubscribe/garbage.not-a-token", data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded")),
}


@pytest.mark.parametrize("name", list(WEB_CATALOGUE))
def test_web_bad_input_is_a_4xx_page(site: Site, web: Web, name: str) -> None:
    entry = WEB_CATALOGUE[name]
    before = site.counts()
    answer = entry.send(web)
    body = answer.get_data(as_text=True)
    summary = f"HTTP {answer.status_code} Location={answer.headers.get('Location', '')!r}\n"
    summary += "".join(web.crashes) or body[:2000]
    assert answer.status_code != 500 and answer.status_code in entry.allowed, summary
    assert "Traceback" not in body and 'File "' not in body, summary
    location = answer.headers.get("Location", "")
    assert "\r" not in location and "\n" not in location and "Set-Cookie: editor" not in str(answer.headers)
    assert site.counts() == before


# ------------------------------------------------------------------ a database locked by another process

LOCKED: dict[str, tuple[str, ...]] = {
    "locked-subscribers-add": ("subscribers", "add", "weekly", "late@example.org"),
    "locked-pin": ("pin", "weekly", "{pinned}", "--since", "2000-01-01", "--until", "2100-01-01"),  # in its period
}


@pytest.mark.parametrize("name", list(LOCKED))
def test_locked_database_is_one_line(site: Site, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """digest waits BUSY_TIMEOUT_MS (10 s) for another writer, then says so in one line;
    here it waits a second, so that the test does not sit out ten."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 1_000)
    before = site.counts()
    holder = sqlite3.connect(site.database, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        result = run(site, *(a.replace("{pinned}", site.pinned) for a in LOCKED[name]))
    finally:
        took = time.monotonic() - started
        holder.rollback()
        holder.close()
    assert_one_error_line(result, 1, "locked")
    assert 1 <= took < 6, f"took {took:.1f} s"
    assert site.counts() == before

