"""The mails that turn a sign-up into a reader share the edition's look: a viewport, 16 px
text, a 44 px button, dark mode, one column on a phone; the welcome says when editions
arrive (in the list's time zone), links the latest one and carries the unsubscribe link it
promises; the confirmation carries no List-Unsubscribe (nobody is subscribed yet)."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime

import pytest

from digest import actions, config
from digest.actions import send_edition
from digest.models import Letter
from digest.web import create_app
from digest.write.listing import arrives

from .support import smtp_server
from .support.world import World
from .test_browser import SHOTS

BASE = "http://localhost:8000"


@pytest.fixture
def mails(tmp_path, monkeypatch):
    """A sign-up confirmed through the web app: (the confirmation, the welcome)."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", "letters-test-secret-0123456789")
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1)
    send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    client = create_app(world.settings, world.db).test_client()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/subscribe/weekly").get_data(as_text=True))
    client.post("/subscribe/weekly", data={"csrf": token.group(1), "email": "new.reader@example.net",
                                          "name": "New Reader"})
    confirmation = _only(world, "confirm-*/*.eml")
    link = re.search(rf"{BASE}(/confirm/\S+)", confirmation.get_body(("plain",)).get_content()).group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(link).get_data(as_text=True))
    assert client.post(link, data={"csrf": token.group(1)}).status_code == 200
    yield confirmation, _only(world, "welcome-*/*.eml")
    world.close()


def _only(world: World, pattern: str) -> email.message.EmailMessage:
    [path] = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_the_welcome_says_when_editions_arrive_links_the_latest_and_can_be_left(mails):
    confirmation, welcome = mails
    assert confirmation["List-Unsubscribe"] is None and "List-Unsubscribe-Post" not in confirmation
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = welcome["List-Unsubscribe"].strip("<>")
    for part in (welcome.get_body(("plain",)).get_content(), welcome.get_body(("html",)).get_content()):
        assert "on Mondays at 07:00 (Europe/London time)" in part
        assert f"{BASE}/archive/weekly/2017-10-25" in part and unsubscribe in part
    html = welcome.get_body(("html",)).get_content()
    assert '<meta name="viewport"' in html and 'name="color-scheme"' in html
    assert "prefers-color-scheme: dark" in html                  # the dark palette stays in the head


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_both_mails_read_on_a_phone_in_light_and_dark(mails, browser, tmp_path, scheme):
    SHOTS.mkdir(exist_ok=True)
    for name, message in zip(("confirm", "welcome"), mails, strict=True):
        path = tmp_path / f"{name}.html"
        path.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
        page = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme=scheme)
        page.goto(path.as_uri())
        page.screenshot(path=str(SHOTS / f"letter-{name}-390-{scheme}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390          # nothing runs off the side
        assert page.evaluate("getComputedStyle(document.querySelector('td.main p')).fontSize") == "16px"
        assert page.locator("a.button").bounding_box()["height"] >= 44
        background = page.evaluate("getComputedStyle(document.querySelector('td.main')).backgroundColor")
        assert background == ("rgb(30, 30, 30)" if scheme == "dark" else "rgb(255, 255, 255)")
        page.close()


def _list(schedule: str, zone: str = "Europe/London") -> config.MailingList:
    return config.from_dict({"lists": [{"name": "l", "file": "l.csv", "schedule": schedule,
                                        "timezone": zone}]}).lists[0]


def test_when_editions_arrive_is_said_from_the_schedule_in_the_lists_time_zone():
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert arrives(_list("0 7 * * mon"), now) == "on Mondays at 07:00 (Europe/London time)"
    assert arrives(_list("30 6 * * *", "America/New_York"), now) == "every day at 06:30 (America/New_York time)"
    assert arrives(_list("0 9 1 * *"), now) == "next on Friday 1 January at 09:00 (Europe/London time)"
    assert arrives(_list("0 7 30 2 *"), now) == "when the editor sends one"          # a cron line that never fires


def test_a_letter_goes_as_written_to_a_real_smtp_server(tmp_path, monkeypatch):
    """A one-off letter is its own kind of mail: the mailer sends its subject and parts as
    they are (nothing substituted), with the List-Id of the list it is about."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", "letters-test-secret-0123456789")
    controller, recorder = smtp_server.start()
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1, backend="smtp",
                  smtp={"host": "127.0.0.1", "port": controller.port})
    letter = Letter("weekly", "A word from the editor", "<p>Fish &amp; chips [[greeting]]</p>", "Fish & chips\n")
    try:
        actions.mail_one(world.settings, actions.mailer(world.settings), actions.signing_key(world.settings),
                         world.weekly, "reader@example.net", "A Reader", letter, "note", datetime.now(UTC),
                         unsubscribe=False)
    finally:
        controller.stop()
        world.close()
    [message] = recorder.messages
    assert message["Subject"] == "A word from the editor" and message["To"] == "A Reader <reader@example.net>"
    assert message["List-Id"].startswith("<weekly.") and message["List-Unsubscribe"] is None
    assert message.get_body(("plain",)).get_content().splitlines() == ["Fish & chips"]
    assert message.get_body(("html",)).get_content().splitlines() == ["<p>Fish &amp; chips [[greeting]]</p>"]
