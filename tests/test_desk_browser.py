"""The editor's desk in a real browser (Debian's Chromium, driven by Playwright) at a
phone's 390 px and a laptop's 1280 px: the dashboard, the readers page (search, remove,
export), the review page (approve, skip, change then approve) and send now. Nothing runs
off the side of a phone; screenshots are kept in tests/output/."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from digest import actions
from digest.models import Reason
from digest.web import create_app

from .support.smtp_server import free_port
from .support.world import World
from .test_browser import SHOTS

PASSWORD = "desk browser password"
RUN_AT = datetime(2017, 11, 1, 7, tzinfo=UTC)
WIDTHS = (390, 1280)


@pytest.fixture
def desk(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "desk-browser-secret-0123456789")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    port = free_port()
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 6, web={"base_url": f"http://127.0.0.1:{port}"})
    world.data["lists"][0].update({"approval": "required", "approve_within": "2d"})
    world.data["editor"] = {"email": "editor@onprobation-digest.org"}
    world.reload()
    clock = {"now": RUN_AT + timedelta(hours=1)}
    server = make_server("127.0.0.1", port, create_app(world.settings, world.db, clock=lambda: clock["now"]),
                         threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield world, f"http://127.0.0.1:{port}", clock
    server.shutdown()
    world.close()


def login(browser_, base: str, width: int):  # noqa: ANN001, ANN201 - Playwright objects
    page = browser_.new_page(viewport={"width": width, "height": 900}, accept_downloads=True)
    page.goto(f"{base}/editor/")                           # logged out: the login form, then back here
    page.fill("input[name=password]", PASSWORD)
    page.click("form.signup button[type=submit]")
    page.wait_for_url(f"{base}/editor/")
    return page


def fits(page, width: int, name: str) -> None:  # noqa: ANN001 - a Playwright page
    SHOTS.mkdir(exist_ok=True)
    page.wait_for_load_state("networkidle")                 # the email in its frame too
    page.screenshot(path=str(SHOTS / f"desk-{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} runs off the side at {width}"


def readers_got(world: World) -> Counter[str]:
    from email import message_from_bytes
    from email.policy import default
    paths = (world.folder.parent / "demo" / "outbox").glob("weekly-*/*.eml")
    return Counter(message_from_bytes(p.read_bytes(), policy=default)["To"].addresses[0].addr_spec for p in paths)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dashboard_and_the_readers_page(desk, browser, width):
    world, base, clock = desk
    world.db.lists.suppress("reader00004@example.org", "*", Reason.BOUNCED, "hard bounce", RUN_AT)
    actions.sync_list(world.settings, world.db, world.weekly, RUN_AT)
    page = login(browser, base, width)
    assert page.inner_text("#confirmed-weekly") == "5" and "Bounced" in page.inner_text("#list-weekly")
    expect(page.locator("svg.growth polyline")).to_have_count(1)
    fits(page, width, "dashboard")
    page.click("#list-weekly a.button:has-text('Readers')")
    page.fill("#filters input[name=q]", "reader0000")
    page.click("#filters button")
    expect(page.locator("#readers tbody tr")).to_have_count(6)
    page.select_option("#filters select[name=state]", "bounced")
    page.click("#filters button")
    expect(page.locator("#readers tbody tr")).to_have_count(1)
    fits(page, width, "readers")
    page.goto(f"{base}/editor/weekly/subscribers")
    page.click("button[aria-label='Remove reader00002@example.org']")
    assert "Removed reader00002@example.org" in page.inner_text(".flash")
    assert world.db.lists.suppression("weekly", "reader00002@example.org").reason == Reason.REMOVED
    with page.expect_download() as download:
        page.click("#export")
    exported = download.value.path().read_text(encoding="utf-8")
    assert exported.startswith("email,name\n") and "reader00002@example.org" not in exported
    assert "reader00001@example.org" in exported
    fits(page, width, "readers-after-remove")


@pytest.mark.parametrize("width", WIDTHS)
def test_review_skip_then_change_and_approve(desk, browser, width):
    world, base, clock = desk
    actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT)
    page = login(browser, base, width)
    assert "Waiting for your approval" in page.inner_text("#list-weekly")
    page.click("#list-weekly .held a")
    assert "held for your approval" in page.inner_text("h1")
    fits(page, width, "review")
    page.click("#skip button")
    assert "Skipped" in page.inner_text(".flash") and readers_got(world) == Counter()

    actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT + timedelta(minutes=10))   # held again
    page.goto(f"{base}/editor/")
    page.click("#list-weekly .held a")
    page.click("#changes summary")
    page.fill("#r-subject", "Changed before it went")
    page.click("#review-voice button[type=submit]")
    assert "built again" in page.inner_text(".flash") and "Changed before it went" in page.inner_text("#subject")
    page.click("#approve button")
    assert re.search(r"/editor/weekly/orders/\d+$", page.url)
    assert page.get_attribute("#order-status", "data-status") == "waiting"
    fits(page, width, "order-waiting")
    actions.tend(world.settings, world.db, RUN_AT + timedelta(hours=1))
    page.reload()
    assert page.get_attribute("#order-status", "data-status") == "done"
    assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(6)})
    fits(page, width, "order-done")


@pytest.mark.parametrize("width", WIDTHS)
def test_send_now(desk, browser, width):
    world, base, clock = desk
    page = login(browser, base, width)
    page.goto(f"{base}/editor/weekly/send?since=2017-10-25&until=2017-11-01")
    assert page.inner_text("#send-recipients").startswith("6 ")
    assert page.locator("#no-scheduler").count() == 1              # no scheduler: said, with the command
    fits(page, width, "send-now")
    page.click("#send-now")
    assert page.get_attribute("#order-status", "data-status") == "waiting"
    actions.tend(world.settings, world.db, RUN_AT + timedelta(hours=1))
    page.reload()
    assert page.get_attribute("#order-status", "data-status") == "done"
    assert sum(readers_got(world).values()) == 6
    page.click("text=The edition as it went out")
    assert "past edition" in page.inner_text("h1")
    expect(page.locator("#voice")).to_have_count(0)
    fits(page, width, "edition-as-sent")

