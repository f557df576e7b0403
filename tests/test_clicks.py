"""Clicks, counted per edition and link, never per reader: every kind of link in a sent
edition goes through `digest serve` and back to exactly where it pointed; a token that
does not verify is an error page, never a redirect; HEAD, scanners' bursts and repeats do
not count; the counts reach `editions --format json`, the dashboard and the past edition."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import actions
from digest.cli import cli
from digest.send.signing import click_token
from digest.signals.clicks import BURST_LINKS, BURST_SECONDS, QUIET_SECONDS, REPEAT_SECONDS, ClickRule
from digest.web import create_app, services

from .support.world import World

SECRET = "clicks-test-secret-0123456789abcdef"
PASSWORD = "clicks editor password"


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    return make_world(db_url, 3, web={"base_url": "https://digest.onprobation-digest.org"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sent(world: World) -> tuple[int, email.message.EmailMessage]:
    actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    edition = world.db.ledger.latest("weekly", world.since, world.until)
    outbox = (world.folder / ".." / "demo" / "outbox").resolve()
    first = sorted(outbox.glob(f"weekly-{edition.id}/*.eml"))[0]
    return edition.id, email.message_from_bytes(first.read_bytes(), policy=email.policy.default)


def hrefs(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'<a\b[^>]*\shref="([^"]*)"', page)]


def app_and_rule(world: World) -> tuple[object, Clock]:
    app = create_app(world.settings, world.db)
    clock = Clock()
    app.extensions["digest"] = replace(services(app), clicks=ClickRule(clock=clock))
    return app, clock


def path_of(url: str, world: World) -> str:
    return url.removeprefix(world.settings.web.base_url)


def test_every_link_to_the_blog_goes_through_digest_and_lands_exactly_where_it_pointed(world):
    edition_id, message = sent(world)
    mailed = message.get_body(("html",)).get_content()
    stored = world.db.ledger.edition(edition_id).html                  # as frozen: the direct links
    base = world.settings.web.base_url
    direct = [h for h in hrefs(stored) if h.startswith("http") and not h.startswith(base)]
    assert direct and not any("/c/" in h for h in hrefs(stored))
    tracked = [h for h in hrefs(mailed) if h.startswith(f"{base}/c/")]
    own = [h for h in hrefs(mailed) if h.startswith(base) and "/c/" not in h]      # unsubscribe, the archive
    assert own and all("/unsubscribe/" in h or "/archive/" in h for h in own)
    assert not [h for h in hrefs(mailed) if h.startswith("http") and not h.startswith(base)]   # nothing direct
    app, _ = app_and_rule(world)
    client = app.test_client()
    landed = []
    for link in tracked:
        answer = client.get(path_of(link, world), environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert answer.status_code == 302 and answer.headers["Cache-Control"] == "no-store"
        landed.append(answer.headers["Location"])
    assert landed == direct                                   # the same links, in the same order, exactly
    kinds = {"post": r"\.html$", "comment": r"showComment=\d+#c\d+$", "blog": r"blogspot\.com/?$"}
    for kind, pattern in kinds.items():
        assert any(re.search(pattern, url) for url in landed), f"no {kind} link was tracked"
    context = world.db.ledger.links(edition_id)
    assert {link.url for link in context} == set(direct)
    threads = [link for link in context if link.thread]
    assert threads and min(link.position for link in threads) == 1
    text = message.get_body(("plain",)).get_content()
    assert "/c/" not in text and any(url in text for url in direct)       # the plain-text part: direct links


def test_the_read_the_rest_and_more_replies_links_go_through_digest_too(world):
    world.data["email"] = {"max_comment_words": 20}                      # long comments are cut: "read the rest"
    world.data["selection"] = {"replies_per_thread": 1}                   # threads with more: "+N more replies"
    world.reload()
    edition_id, message = sent(world)
    stored = world.db.ledger.edition(edition_id).html
    assert "Read the rest on the blog" in stored and re.search(r"\+\d+ more repl", stored)
    rest = re.findall(r'<a href="([^"]+)"[^>]*>Read the rest on the blog', stored)
    more = re.findall(r'<a href="([^"]+)"[^>]*>\+\d+ more repl', stored)
    mailed = message.get_body(("html",)).get_content()
    assert not re.search(r'<a href="http[^"]*blogspot[^"]*"[^>]*>(Read the rest|\+\d+ more)', mailed)
    numbered = {link.url: link for link in world.db.ledger.links(edition_id)}
    for url in map(html.unescape, rest + more):
        assert numbered[url].thread is not None                          # counted for its thread


def test_a_tampered_or_foreign_token_is_an_error_page_never_a_redirect(world):
    edition_id, _ = sent(world)
    client = app_and_rule(world)[0].test_client()
    good = click_token(SECRET, edition_id, 1)
    forged = [good[:-1] + ("A" if good[-1] != "A" else "B"),            # the MAC changed
              f"{edition_id}.2.{good.split('.')[2]}",                   # another link, the first's MAC
              click_token("another-instance-secret-0123456789", edition_id, 1),
              click_token(SECRET, edition_id, 9999),                    # signed, but no such link
              "1.1", "x" * 500, ".."]
    for token in forged:
        answer = client.get(f"/c/{token}")
        assert answer.status_code == 404 and "Location" not in answer.headers, token
        assert "This link is not valid" in answer.get_data(as_text=True)
    assert client.get("/c/%00").status_code == 400                       # a NUL: refused before anything
    assert client.get(f"/c/{good}").status_code == 302


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"), min_size=1,
               max_size=80))
def test_no_string_a_stranger_makes_up_redirects_anywhere(tmp_path_factory, token):
    client = _shared_client(tmp_path_factory)
    answer = client.get("/c/" + token)
    assert answer.status_code in (400, 404) and "Location" not in answer.headers


_CLIENTS: dict[str, object] = {}


def _shared_client(tmp_path_factory):
    """One world for every example (a send takes a second; the token is all that varies)."""
    if "client" not in _CLIENTS:
        import os
        os.environ.setdefault("DIGEST_SECRET_KEY", SECRET)
        folder = tmp_path_factory.mktemp("hypothesis")
        made = World(folder, f"sqlite:///{folder / 'digest.db'}", 1)
        actions.send_edition(made.settings, made.db, made.weekly, made.since, made.until)
        _CLIENTS["client"] = create_app(made.settings, made.db).test_client()
    return _CLIENTS["client"]


def total(world: World, edition_id: int) -> int:
    return actions.clicks.of_editions(world.db, [edition_id]).get(edition_id, {}).get("clicks", 0)


def test_a_scanner_opening_every_link_at_once_counts_nothing_and_a_reader_counts(world):
    edition_id, message = sent(world)
    tracked = [path_of(h, world) for h in hrefs(message.get_body(("html",)).get_content()) if "/c/" in h]
    distinct = list(dict.fromkeys(tracked))
    app, clock = app_and_rule(world)
    client = app.test_client()
    for path in distinct:                                     # Safe Links: every link within a second or two
        client.get(path, environ_base={"REMOTE_ADDR": "40.94.1.2"})
        clock.now += 0.05
    assert total(world, edition_id) == 0
    clock.now += 60
    for path in distinct[:3]:                                 # still quiet for that client
        client.get(path, environ_base={"REMOTE_ADDR": "40.94.1.2"})
    assert total(world, edition_id) == 0
    for path in distinct[:3]:                                 # a reader: three discussions, seconds apart
        client.get(path, environ_base={"REMOTE_ADDR": "81.2.69.160"})
        clock.now += 3 * BURST_SECONDS / BURST_LINKS + 1
    assert total(world, edition_id) == 3
    client.get(distinct[0], environ_base={"REMOTE_ADDR": "81.2.69.160"})          # the same one again
    client.head(distinct[4], environ_base={"REMOTE_ADDR": "81.2.69.161"})         # a link checker's HEAD
    assert total(world, edition_id) == 3
    assert client.head(distinct[4]).status_code == 302                             # it still gets the redirect


def test_the_rule_in_numbers():
    clock = Clock()
    rule = ClickRule(clock=clock)
    assert rule.judge("a", 1, 1) == [(1, 1)]
    clock.now += 1
    assert rule.judge("a", 1, 2) == [(2, 1)]
    clock.now += 1
    assert rule.judge("a", 1, 3) == [(3, 1)]
    clock.now += 1
    assert sorted(rule.judge("a", 1, 4)) == [(1, -1), (2, -1), (3, -1)]        # the fourth within 5 s: a burst
    assert rule.judge("a", 2, 1) == [(1, 1)]                                     # another edition: counts
    clock.now += QUIET_SECONDS + BURST_SECONDS
    assert rule.judge("a", 1, 1) == [(1, 1)]                                     # quiet over
    clock.now += REPEAT_SECONDS - 1
    assert rule.judge("a", 1, 1) == []                                           # within the hour: one click
    clock.now += 2
    assert rule.judge("a", 1, 1) == [(1, 1)]
    assert rule.judge("b", 1, 1, head=True) == []


def test_counts_reach_the_json_the_dashboard_and_the_past_edition(world):
    edition_id, message = sent(world)
    tracked = [path_of(h, world) for h in hrefs(message.get_body(("html",)).get_content()) if "/c/" in h]
    links = world.db.ledger.links(edition_id)
    by_url = {link.url: link for link in links}
    app, clock = app_and_rule(world)
    client = app.test_client()
    opened = []
    for reader, path in enumerate(list(dict.fromkeys(tracked))[:5]):
        answer = client.get(path, environ_base={"REMOTE_ADDR": f"10.9.0.{reader}"})
        opened.append(by_url[answer.headers["Location"]])
        clock.now += 30
    result = CliRunner().invoke(cli, ["--config", str(world.config_path), "editions", "weekly", "--format", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["clicks"] == 5
    counted = {item["url"]: item["clicks"] for item in row["links"]}
    assert all(counted[link.url] == 1 for link in opened) and sum(counted.values()) == 5
    assert {item["thread"] for item in row["links"] if item["url"] in {o.url for o in opened}} >= \
        {link.thread for link in opened}
    page = client.post("/editor/login", data={"csrf": _csrf(client), "password": PASSWORD})
    dashboard = client.get("/editor/").get_data(as_text=True)
    assert re.search(rf'<tr data-edition="{edition_id}">.*?<td class="clicks">5</td>', dashboard, re.DOTALL)
    past = client.get(f"/editor/weekly/editions/{edition_id}").get_data(as_text=True)
    assert 'id="clicks">5<' in past and 'id="clicked"' in past
    threads = {link.thread for link in opened if link.thread}
    for thread in threads:
        clicks = sum(1 for link in opened if link.thread == thread)
        row = re.search(rf'<tr data-thread="{re.escape(thread)}">(.*?)</tr>', past, re.DOTALL).group(1)
        assert re.findall(r"<td>(.*?)</td>", row, re.DOTALL)[-1] == str(clicks)
    assert page.status_code == 303


def _csrf(client) -> str:
    page = client.get("/editor/login").get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_with_clicks_off_every_link_is_direct_and_nothing_is_stored(world):
    world.data["tracking"] = {"clicks": "off"}
    world.reload()
    edition_id, message = sent(world)
    mailed = message.get_body(("html",)).get_content()
    assert "/c/" not in mailed and world.db.ledger.links(edition_id) == []
    assert any("blogspot" in h for h in hrefs(mailed))


def test_previews_test_copies_and_the_archive_keep_the_direct_links(world, tmp_path: Path):
    edition_id, _ = sent(world)
    client = app_and_rule(world)[0].test_client()
    archive = client.get(f"/archive/weekly/{world.since.astimezone(world.weekly.timezone).date()}")
    assert archive.status_code == 200 and "/c/" not in archive.get_data(as_text=True)
    preview = CliRunner().invoke(cli, ["--config", str(world.config_path), "preview", "weekly", "--since",
                                       "2017-10-25", "--until", "2017-11-01", "--format", "html"])
    assert preview.exit_code == 0 and "/c/" not in preview.output and "blogspot" in preview.output
    copy = CliRunner().invoke(cli, ["--config", str(world.config_path), "send", "weekly", "--since", "2017-10-25",
                                    "--until", "2017-11-01", "--to", "editor@example.net"])
    assert copy.exit_code == 0, copy.output
    outbox = (world.folder / ".." / "demo" / "outbox").resolve()
    test_copies = list(outbox.glob("weekly-test-*/*.eml"))
    assert test_copies and all(b"/c/" not in p.read_bytes() for p in test_copies)
    assert all(b"/c/" in p.read_bytes() for p in outbox.glob(f"weekly-{edition_id}/*.eml"))
