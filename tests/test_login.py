"""The editor's login: the password always (insecure dev mode opens nothing), a
server-side session that expires and ends at logout, a throttle with a growing delay,
Secure cookies behind https. Flask's test client with a mocked clock, and a real
Chromium against the app served on loopback."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from digest import config
from digest.db import Database
from digest.db.tables import editor_sessions
from digest.web import create_app
from digest.web.limits import LoginThrottle
from digest.web.login import COOKIE

from .support.smtp_server import free_port

PASSWORD = "correct horse battery staple"
START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class Clock:
    """The app's clock, moved by hand (the only thing mocked)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def locked_out(client) -> bool:
    """The editor is not open to this client: asking for it leads to the login form."""
    answer = client.get("/editor/")
    return answer.status_code == 303 and answer.headers["Location"].startswith("/editor/login")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_app(tmp_path, db: Database, clock: Clock, **web):
    settings = config.from_dict({"web": {"insecure_dev_mode": False, **web}}, root=tmp_path)
    return create_app(settings, db, clock=clock)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "a-long-random-secret-for-login-tests")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)


@pytest.fixture
def app(tmp_path, db, clock, env):
    return make_app(tmp_path, db, clock)


def csrf(client, path: str = "/editor/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def login(client, password: str = PASSWORD):
    return client.post("/editor/login", data={"csrf": csrf(client), "password": password})


def cookie_header(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "="))


# ------------------------------------------------------------------ the password, always

def test_insecure_dev_mode_does_not_open_the_editor(tmp_path, db, clock, monkeypatch):
    monkeypatch.delenv("DIGEST_SECRET_KEY", raising=False)
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    client = make_app(tmp_path, db, clock, insecure_dev_mode=True).test_client()
    assert locked_out(client)
    assert login(client, "guess").status_code == 403
    assert locked_out(client)
    assert login(client).status_code == 303
    assert client.get("/editor/").status_code == 200


def test_no_password_set_opens_nothing_and_says_what_to_set(tmp_path, db, clock, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "a-long-random-secret-for-login-tests")
    monkeypatch.delenv("DIGEST_EDITOR_PASSWORD", raising=False)
    client = make_app(tmp_path, db, clock, insecure_dev_mode=True).test_client()
    refused = login(client, "")
    assert refused.status_code == 403 and "export DIGEST_EDITOR_PASSWORD" in refused.get_data(as_text=True)
    assert locked_out(client)


# ------------------------------------------------------------------ sessions

def test_the_cookie_holds_a_random_token_and_the_row_its_sha256(app, db):
    client = app.test_client()
    answer = login(client)
    assert answer.status_code == 303 and answer.headers["Location"] == "/editor/"
    header = cookie_header(answer)
    token = header.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/editor" in header
    assert "Secure" not in header                       # http base_url: a Secure cookie would never come back
    assert "Max-Age=43200" in header                    # 12 hours by default
    with db.engine.connect() as connection:
        ids = connection.execute(sa.select(editor_sessions.c.id)).scalars().all()
    assert ids == [hashlib.sha256(token.encode()).hexdigest()]
    other = app.test_client()
    assert cookie_header(login(other)).split(";")[0] != header.split(";")[0]       # a fresh token each login


def test_secure_cookies_when_the_site_is_https(tmp_path, db, clock, env):
    client = make_app(tmp_path, db, clock, base_url="https://digest.onprobation-digest.org").test_client()
    answer = login(client)
    assert "Secure" in cookie_header(answer)
    assert all("Secure" in h for h in answer.headers.getlist("Set-Cookie"))    # Flask's own (CSRF) cookie too


def test_a_session_expires_after_twelve_hours(app, clock):
    client = app.test_client()
    login(client)
    clock.advance(hours=11, minutes=59)
    assert client.get("/editor/").status_code == 200
    clock.advance(minutes=2)
    assert locked_out(client)


def test_session_hours_is_configurable(tmp_path, db, clock, env):
    client = make_app(tmp_path, db, clock, session_hours=1).test_client()
    assert "Max-Age=3600" in cookie_header(login(client))
    clock.advance(minutes=59)
    assert client.get("/editor/").status_code == 200
    clock.advance(minutes=2)
    assert locked_out(client)


def test_logout_ends_the_session_on_the_server(app):
    client = app.test_client()
    token = cookie_header(login(client)).split(";")[0].split("=", 1)[1]
    assert client.get("/editor/").status_code == 200
    assert client.get("/editor/logout").status_code != 303                          # POST only: a GET ends nothing
    assert client.get("/editor/").status_code == 200
    assert client.post("/editor/logout", data={}).status_code == 400                # with the CSRF token
    out = client.post("/editor/logout", data={"csrf": csrf(client)})
    assert out.status_code == 303 and out.headers["Location"] == "/editor/login"
    assert locked_out(client)
    replay = app.test_client()                        # the old cookie, kept by a thief: refused too
    replay.set_cookie(COOKIE, token, path="/editor")
    assert locked_out(replay)


def test_session_store_on_both_databases(db):
    db.sessions.start("token-a", START, START + timedelta(hours=12))
    assert db.sessions.is_live("token-a", START + timedelta(hours=11))
    assert not db.sessions.is_live("token-a", START + timedelta(hours=12))
    assert not db.sessions.is_live("token-b", START)
    assert not db.sessions.is_live("", START)
    assert db.sessions.end("token-a", START + timedelta(hours=1))
    assert not db.sessions.is_live("token-a", START + timedelta(hours=2))
    assert not db.sessions.end("token-a", START + timedelta(hours=2))
    db.sessions.start("token-c", START + timedelta(days=3), START + timedelta(days=3, hours=12))   # purges a's row
    with db.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(editor_sessions)).scalar() == 1


# ------------------------------------------------------------------ the throttle

def test_throttle_delay_grows_per_client_and_forgets():
    throttle = LoginThrottle()
    for _ in range(5):
        assert throttle.wait("a", 0) == 0
        throttle.failed("a", 0)
    assert throttle.wait("a", 0) == 30 and throttle.wait("b", 0) == 0
    throttle.failed("a", 30)
    assert throttle.wait("a", 30) == 60
    throttle.failed("a", 90)
    assert throttle.wait("a", 90) == 120
    for step in range(10):
        throttle.failed("a", 1000 + step)
    assert throttle.wait("a", 1009) == 3600                       # at most an hour
    assert throttle.wait("a", 1009 + 6 * 3600) == 0               # forgotten six hours after the last
    throttle.failed("c", 0)
    throttle.succeeded("c")
    assert throttle.failures.get("c") is None


def test_throttle_is_global_too():
    throttle = LoginThrottle()
    for n in range(20):                                   # a botnet: one guess per address
        throttle.failed(f"10.0.0.{n}", 0)
    assert throttle.wait("10.9.9.9", 0) == 5               # a new address waits as well
    throttle.failed("10.9.9.9", 5)
    assert throttle.wait("10.9.9.10", 5) == 10


def test_throttle_answers_429_and_lets_the_right_password_in_after_the_delay(app, clock):
    client = app.test_client()
    for _ in range(5):
        assert login(client, "guess").status_code == 403
    refused = login(client)                                # even the right password waits
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert "try again in 30 seconds" in refused.get_data(as_text=True)
    assert locked_out(client)
    clock.advance(seconds=29)
    assert login(client).status_code == 429
    clock.advance(seconds=1)
    assert login(client).status_code == 303
    assert client.get("/editor/").status_code == 200


# ------------------------------------------------------------------ in a real browser

@pytest.fixture
def served(tmp_path, clock, env):
    database = Database.open(f"sqlite:///{tmp_path / 'digest.db'}")
    port = free_port()
    server = make_server("127.0.0.1", port, make_app(tmp_path, database, clock), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    database.close()


def submit(page, base: str, password: str) -> int:
    page.goto(f"{base}/editor/login")
    page.fill("input[name=password]", password)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    return navigation.value.status


def test_browser_throttle_then_login_then_logout(served, browser, clock):
    base = served
    page = browser.new_page()
    statuses = [submit(page, base, f"guess {n}") for n in range(5)]
    assert statuses == [403] * 5
    assert submit(page, base, PASSWORD) == 429
    assert "Too many failed logins: try again in 30 seconds" in page.inner_text("[role=alert]")
    clock.advance(seconds=31)
    assert submit(page, base, PASSWORD) == 200                  # 303 to the editor, followed
    assert page.url == f"{base}/editor/"
    cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]

    page.goto(f"{base}/editor/login")
    with page.expect_navigation():
        page.click("#logout")
    assert page.url == f"{base}/editor/login"
    page.goto(f"{base}/editor/")                                 # logged out: the login form, not the editor
    assert page.url == f"{base}/editor/login?next=/editor/"
    thief = browser.new_context()                                # the cookie as it was: refused
    thief.add_cookies([cookie])
    stolen = thief.new_page()
    stolen.goto(f"{base}/editor/")
    assert stolen.url == f"{base}/editor/login?next=/editor/"
    thief.close()
