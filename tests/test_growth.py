"""Growing the list: titles, the phone-friendly subscribe page, the form pasted into the
blog (posting from another origin), the welcome email, the archive's prompt and feed,
and a test copy's "View on the web" link."""

from __future__ import annotations

import email
import email.policy
import html
import re
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.serving import make_server

from digest import config
from digest.actions import send_edition
from digest.web import create_app, public

from .support import smtp_server
from .support.world import World, sent

PASSWORD = "growth editor password"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "growth-7Gq2-VxP9-mN4t-wR8k-hZ3c")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    return sent(make_world(db_url))


def outbox(world: World, pattern: str) -> list[email.message.EmailMessage]:
    paths = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def retitled(world: World, **values: str) -> config.Settings:
    data = {**world.data, "lists": [{**world.data["lists"][0], **values}]}
    return config.from_dict(data, root=world.folder)


def smtp_settings(world: World, port: int) -> config.Settings:
    """The world's settings with a real relay: links signed with a real secret (a relay
    never sends a link anyone could forge), the rest as the demo has it."""
    data = {**world.data, "sending": {**world.data["sending"], "backend": "smtp",
                                      "smtp": {"host": "127.0.0.1", "port": port}},
            "web": {**world.data["web"], "insecure_dev_mode": False}}
    return config.from_dict(data, root=world.folder)


def visible(page: str) -> str:
    """What a reader reads: the title and the body's text, without tags and attributes."""
    text = re.sub(r"<style.*?</style>|<[^>]+>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(text).split())


# ------------------------------------------------------------------ titles

def test_the_list_title_and_description_come_from_config(world):
    settings = retitled(world, title="Pick of the Week <b>", description="Seven days of comments & replies.")
    client = create_app(settings, world.db).test_client()
    for path in ("/subscribe/weekly", "/", "/archive/weekly/", "/subscribe/weekly/embed"):
        page = client.get(path).get_data(as_text=True)
        assert "Pick of the Week &lt;b&gt;" in page and "<b>" not in page, path
        assert "Seven days of comments &amp; replies." in page, path
    assert "Pick of the Week" in client.get("/archive/weekly/feed.atom").get_data(as_text=True)


def test_without_a_title_readers_see_the_site_not_the_internal_name(world):
    client = create_app(retitled(world, title="", description=""), world.db).test_client()
    for path in ("/subscribe/weekly", "/", "/archive/weekly/"):
        page = visible(client.get(path).get_data(as_text=True))
        assert "The On Probation digest" in page and "weekly" not in page.lower(), path
        assert "in one email a week" in page


def test_subscribe_page_links_a_sample_edition(client):
    page = client.get("/subscribe/weekly").get_data(as_text=True)
    sample = re.search(r'<a href="http://localhost:8000(/archive/weekly/[\d-]+)">Read the latest edition', page)
    assert sample and client.get(sample.group(1)).status_code == 200


def test_a_long_or_multiline_title_is_refused(world):
    with pytest.raises(config.ConfigError, match=r"lists.*title"):
        retitled(world, title="x" * 201)
    with pytest.raises(config.ConfigError, match=r"lists.*description"):
        retitled(world, description="one\nline")


# ------------------------------------------------------------------ the form on the blog

def test_embed_page_shows_the_snippet_to_paste(client):
    page = client.get("/subscribe/weekly/embed").get_data(as_text=True)
    shown = html.unescape(re.search(r'<textarea[^>]*id="snippet"[^>]*>(.*?)</textarea>', page, re.DOTALL).group(1))
    assert 'action="http://localhost:8000/subscribe/weekly/from-blog"' in shown
    assert 'name="csrf"' not in shown and 'name="website"' in shown and "font-size:16px" in shown
    assert "min-height:44px" in shown and "HTML/JavaScript" in page and "Custom HTML" in page


def test_the_blog_form_needs_no_csrf_and_only_sends_a_confirmation(world, client):
    answer = client.post("/subscribe/weekly/from-blog", data={"email": "Blog.Reader@example.org"},
                         headers={"Origin": "https://probationmatters.blogspot.com"})
    assert answer.status_code == 200 and "Check your inbox" in answer.get_data(as_text=True)
    assert [str(m["To"]) for m in outbox(world, "confirm-*/*.eml")] == ["Blog.Reader@example.org"]
    assert not world.db.lists.is_active("weekly", "Blog.Reader@example.org")      # double opt-in
    assert client.post("/subscribe/weekly", data={"email": "x@example.org"}).status_code == 400  # ours keeps CSRF


def test_the_blog_form_honeypot_and_bad_address(world, client):
    robot = client.post("/subscribe/weekly/from-blog", data={"email": "bot@example.org", "website": "spam"})
    assert robot.status_code == 200 and outbox(world, "confirm-*/*.eml") == []
    bad = client.post("/subscribe/weekly/from-blog", data={"email": "<script>x</script>"})
    assert bad.status_code == 400 and "<script>x" not in bad.get_data(as_text=True)


def test_the_blog_form_is_limited_per_client_and_in_all(world, client, monkeypatch):
    codes = [client.post("/subscribe/weekly/from-blog", data={"email": f"a{n}@example.org"}).status_code
             for n in range(public.EMBED_PER_CLIENT + 1)]
    assert codes == [200] * public.EMBED_PER_CLIENT + [429]
    monkeypatch.setattr(public, "EMBED_GLOBAL", public.EMBED_PER_CLIENT + 3)
    others = [client.post("/subscribe/weekly/from-blog", data={"email": f"b{n}@example.org"},
                          environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}).status_code for n in range(4)]
    assert others == [200, 200, 200, 429]          # the whole-site limit counts every client
    assert len(outbox(world, "confirm-*/*.eml")) == public.EMBED_PER_CLIENT + 3


# ------------------------------------------------------------------ welcome

def confirm_link(world: World, address: str) -> str:
    message = next(m for m in outbox(world, "confirm-*/*.eml") if address in str(m["To"]))
    return re.search(r"http://localhost:8000(/confirm/\S+)", message.get_body(("plain",)).get_content()).group(1)


def test_welcome_once_after_confirmation_with_the_latest_edition(world, client):
    client.post("/subscribe/weekly/from-blog", data={"email": "welcome@example.org"})
    link = confirm_link(world, "welcome@example.org")
    assert outbox(world, "welcome-*/*.eml") == []
    for _ in range(2):
        assert client.post(link, data={"csrf": csrf(client, link)}).status_code == 200
    welcomes = outbox(world, "welcome-*/*.eml")
    assert len(welcomes) == 1 and str(welcomes[0]["To"]) == "welcome@example.org"
    assert welcomes[0]["Subject"] == f"Welcome to {world.weekly.title}"
    text = welcomes[0].get_body(("plain",)).get_content()
    assert "http://localhost:8000/archive/weekly/2017-10-25" in text
    assert 'href="http://localhost:8000/archive/weekly/2017-10-25"' in welcomes[0].get_body(("html",)).get_content()
    assert welcomes[0]["List-Unsubscribe"]
    assert world.db.welcomes.sent("weekly", "welcome@example.org")


def test_a_welcome_that_fails_is_tried_again_on_the_next_click(world):
    controller, recorder = smtp_server.start()
    try:
        client = create_app(smtp_settings(world, controller.port), world.db).test_client()
        client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"),
                                               "email": "retry@example.org"})
        body = recorder.messages[0].get_body(("plain",)).get_content()
        link = re.search(r"http://localhost:8000(/confirm/\S+)", body).group(1)
        recorder.on_rcpt = lambda n: "550 no such user"
        assert client.post(link, data={"csrf": csrf(client, link)}).status_code == 200
        assert world.db.lists.is_active("weekly", "retry@example.org")
        assert not world.db.welcomes.sent("weekly", "retry@example.org")
        recorder.on_rcpt = lambda n: None
        client.post(link, data={"csrf": csrf(client, link)})
        assert [m["Subject"] for m in recorder.messages].count(f"Welcome to {world.weekly.title}") == 1
    finally:
        controller.stop()


# ------------------------------------------------------------------ archive and feed

def test_archive_pages_prompt_to_subscribe(client):
    page = client.get("/archive/weekly/2017-10-25").get_data(as_text=True)
    body = page.split("<body", 1)[1]
    assert body.index('href="/subscribe/weekly"') < body.index("Comment of the week")
    assert 'href="/subscribe/weekly"' in client.get("/archive/weekly/").get_data(as_text=True)


def test_feed_carries_content_author_and_updated(world, client):
    earlier = (world.since - timedelta(days=5), world.since + timedelta(days=2))   # sent last: the newest update
    send_edition(world.settings, world.db, world.weekly, *earlier)
    second = next(r for r in world.db.ledger.sent_editions("weekly") if r.since == earlier[0])
    world.db.ledger.finish(second.id, datetime.now(UTC) + timedelta(hours=1))   # finished last (a resumed send)
    answer = client.get("/archive/weekly/feed.atom")
    assert answer.mimetype == "application/atom+xml"
    feed = ET.fromstring(answer.get_data())
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    finished = {r.since.astimezone(world.weekly.timezone).date().isoformat(): r.finished_at
                for r in world.db.ledger.sent_editions("weekly")}
    for entry in entries:
        day = entry.find(f"{ATOM}id").text.rsplit("/", 1)[1]
        stamp = datetime.fromisoformat(entry.find(f"{ATOM}updated").text)
        assert abs((stamp - finished[day]).total_seconds()) < 1
        content = entry.find(f"{ATOM}content")
        assert content.get("type") == "html" and "<html" not in content.text
        assert "<table" in content.text and len(content.text) > 2000 and "probationmatters" in content.text
        assert "unsubscribe" not in content.text.lower() and "Hello" not in content.text     # no personal parts
        assert f"/archive/weekly/{day}" not in content.text                                   # nor a link to itself
        assert entry.find(f"{ATOM}author/{ATOM}name").text == "On Probation"
    newest = max(datetime.fromisoformat(e.find(f"{ATOM}updated").text) for e in entries)
    assert datetime.fromisoformat(feed.find(f"{ATOM}updated").text) == newest
    assert feed.find(f"{ATOM}author/{ATOM}name").text == "On Probation"
    raw = answer.get_data(as_text=True)
    assert "&lt;table" in raw and "<table" not in raw          # the HTML is escaped, not markup of the feed


def test_a_test_copy_links_to_a_preview_that_works_for_the_editor(world, client):
    query = "since=2017-10-26&until=2017-11-02"
    login = client.post("/editor/login", data={"csrf": csrf(client, "/editor/login"), "password": PASSWORD})
    assert login.status_code == 303
    sent = client.post(f"/editor/weekly/test?{query}", data={"csrf": csrf(client, f"/editor/weekly?{query}"),
                                                             "email": "editor@example.org"})
    assert sent.status_code == 303                          # back to the preview, with what happened
    assert "Test sent: a copy went to editor@example.org" in client.get(sent.headers["Location"]).get_data(as_text=True)
    message = outbox(world, "weekly-test-*/*.eml")[0]
    copy = message.get_body(("plain",)).get_content()
    url = re.search(r"View on the web: http://localhost:8000(/editor/weekly\?[^\s]+)", copy).group(1)
    assert url == f"/editor/weekly?{query}"                 # the editor's preview, not a 404 in the archive
    markup = message.get_body(("html",)).get_content()
    assert f'href="http://localhost:8000/editor/weekly?{query.replace("&", "&amp;")}"' in markup
    assert "/archive/weekly/" not in copy and "/archive/weekly/" not in markup
    assert client.get(url).status_code == 200
    stranger = create_app(world.settings, world.db).test_client()
    assert stranger.get(url).status_code in (302, 303, 403)   # the preview needs the editor's login
    opened = client.get("/archive/weekly/2017-10-26")
    assert opened.status_code == 404                        # not sent: nothing public there...
    preview = re.search(r'<a href="([^"]+)">Editors: open the preview', opened.get_data(as_text=True)).group(1)
    assert html.unescape(preview).startswith("/editor/weekly?")   # ...but the editor is shown the way


# ------------------------------------------------------------------ in a real browser, from another origin

class Blog(BaseHTTPRequestHandler):
    """The blog: another origin, serving one page with the snippet pasted into it."""

    page = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "browser-growth-4Tz8-Lq2m-Vx7c")
    controller, recorder = smtp_server.start()
    port = smtp_server.free_port()
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 3, web={"base_url": f"http://127.0.0.1:{port}"})
    send_edition(world.settings, world.db, world.weekly, world.since, world.until)      # to the outbox
    settings = smtp_settings(world, controller.port)          # the web app's mail goes to the real SMTP server
    app = make_server("127.0.0.1", port, create_app(settings, world.db), threaded=True)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    yield world, f"http://127.0.0.1:{port}", recorder
    app.shutdown()
    controller.stop()
    world.close()


def blog_with(snippet: str) -> tuple[ThreadingHTTPServer, str]:
    handler = type("PastedBlog", (Blog,), {"page": (
        "<!DOCTYPE html><html><head><meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>On Probation</title></head><body><h1>On Probation</h1><aside>" + snippet +
        "</aside></body></html>").encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def subjects(recorder, address: str) -> list[str]:
    return [str(m["Subject"]) for m in recorder.messages if address in str(m["To"])]


def test_the_form_on_the_blog_subscribes_from_another_origin(served, browser):
    world, base, recorder = served
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{base}/subscribe/weekly/embed")
    blog, blog_url = blog_with(page.input_value("#snippet"))
    try:
        page.goto(blog_url)
        assert page.evaluate("getComputedStyle(document.querySelector('input[type=email]')).fontSize") == "16px"
        assert page.locator("button[type=submit]").bounding_box()["height"] >= 44
        page.fill("input[type=email]", "blog.reader@example.org")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/subscribe/weekly/from-blog")
        assert page.inner_text("h1") == "Check your inbox"
        assert subjects(recorder, "blog.reader@example.org") == [f"Confirm your subscription to {world.weekly.title}"]
        body = recorder.messages[-1].get_body(("plain",)).get_content()
        link = re.search(r"(http://127\.0\.0\.1:\d+/confirm/\S+)", body).group(1)
        for _ in range(2):                              # a second click changes nothing, sends nothing
            page.goto(link)
            page.click("button[type=submit]")
            assert page.inner_text("h1") == "Subscribed"
        assert world.db.lists.is_active("weekly", "blog.reader@example.org")
        assert subjects(recorder, "blog.reader@example.org").count(f"Welcome to {world.weekly.title}") == 1
        welcome = next(m for m in recorder.messages if str(m["Subject"]).startswith("Welcome"))
        latest = re.search(r"(http://127\.0\.0\.1:\d+/archive/weekly/[\d-]+)",
                           welcome.get_body(("plain",)).get_content()).group(1)
        page.goto(latest)
        assert "Subscribe" in page.inner_text(".digest-subscribe-prompt")
    finally:
        blog.shutdown()


def test_the_subscribe_page_fits_a_phone(served, browser):
    _, base, _ = served
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{base}/subscribe/weekly")
    for field in ("#email", "#name"):
        assert float(page.evaluate(f"getComputedStyle(document.querySelector('{field}')).fontSize")[:-2]) >= 16
        assert page.locator(field).bounding_box()["height"] >= 44
    assert page.locator("form.signup button").bounding_box()["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("a", has_text="Read the latest edition").count() == 1
    assert "weekly" not in page.inner_text("h1").lower()
