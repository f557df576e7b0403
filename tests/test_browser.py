"""A real browser (Debian's Chromium, driven by Playwright) against the app on loopback."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from digest.actions import send_edition
from digest.web import create_app

from .conftest import CHROMIUM, FLAGS  # noqa: F401 - tests/test_deploy.py imports them from here
from .support.smtp_server import free_port
from .support.world import World

SHOTS = Path(__file__).resolve().parent / "output"


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "browser-test-secret")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", "editor-pass")
    port = free_port()
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 3, web={"base_url": f"http://127.0.0.1:{port}"})
    send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    server = make_server("127.0.0.1", port, create_app(world.settings, world.db), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield world, f"http://127.0.0.1:{port}"
    server.shutdown()
    world.close()


def eml(world: World, pattern: str) -> list[email.message.EmailMessage]:
    paths = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def test_editor_pins_a_comment_and_sees_it_move(site, browser):
    world, base = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/editor/login")
    page.fill("input[name=password]", "editor-pass")
    page.click("button[type=submit]")
    page.goto(f"{base}/editor/weekly?since=2017-10-25&until=2017-11-01")
    star_before = page.get_attribute("#star .thread", "data-thread")
    last_pin = page.locator("button[data-action=pin]").last
    chosen = last_pin.get_attribute("data-comment")
    assert chosen != star_before
    last_pin.click()
    page.wait_for_url(re.compile(r".*/editor/weekly\?since=2017-10-25&until=2017-11-01$"))
    assert page.get_attribute("#star .thread", "data-thread") == chosen
    assert "pinned" in page.inner_text("#star")
    frame = page.frame_locator("iframe")
    assert "comment of the week" in frame.locator("body").inner_text().lower()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "preview-desktop.png"), full_page=False)
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{base}/editor/weekly/email.html?since=2017-10-25&until=2017-11-01")
    phone.screenshot(path=str(SHOTS / "preview-phone.png"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390     # no sideways scrolling
    assert (SHOTS / "preview-desktop.png").stat().st_size > 10_000
    assert (SHOTS / "preview-phone.png").stat().st_size > 10_000


def test_subscribe_confirm_then_unsubscribe_in_the_browser(site, browser):
    world, base = site
    page = browser.new_page()
    page.goto(f"{base}/subscribe/weekly")
    page.fill("input[name=email]", "browser.reader@example.org")
    page.fill("input[name=name]", "Browser Reader")
    page.click("button[type=submit]")
    assert "Check your inbox" in page.inner_text("h1")
    confirmation = eml(world, "confirm-*/*.eml")[0].get_body(("plain",)).get_content()
    link = re.search(r"(http://127\.0\.0\.1:\d+/confirm/\S+)", confirmation).group(1)
    page.goto(link)
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Subscribed"
    assert any(r["email"] == "browser.reader@example.org" and r["active"] for r in world.db.lists.listing("weekly"))

    message = next(m for m in eml(world, "weekly-*/*.eml") if "reader00001@example.org" in str(m["To"]))
    page.goto(message["List-Unsubscribe"].strip("<>"))
    assert not world.db.lists.is_suppressed("weekly", "reader00001@example.org")   # GET alone does nothing
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Unsubscribed"
    assert world.db.lists.is_suppressed("weekly", "reader00001@example.org")
