"""The web app against a stranger's abuse: confirmation emails used as a weapon (text of
theirs in our mail, one mailbox bombed through +tags, no cap in all), a NUL character in
a form or a query, a day at the end of the calendar, and a confirmation made while a long
list sync holds SQLite's write lock."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from digest.models import Subscriber
from digest.web import create_app, public
from digest.web.limits import RateLimit

from .support.world import World

PASSWORD = "abuse-editor-password"
BASE = "http://localhost:8000"
PHISH = "URGENT verify your bank account now or lose it"


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "abuse-test-secret-key-0123456789")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    return make_world(db_url, 3)


@pytest.fixture
def lite(tmp_path, monkeypatch):
    """SQLite only: for what does not depend on the database, or only on SQLite's lock."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", "abuse-test-secret-key-0123456789")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    made = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 3)
    yield made
    made.close()


def app_for(world: World):
    app = create_app(world.settings, world.db)
    app.config["PROPAGATE_EXCEPTIONS"] = False        # a 500 is an answer here, not an exception
    return app


def csrf(client, path: str, **kwargs) -> str:
    page = client.get(path, **kwargs).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def confirmations(world: World) -> list[email.message.EmailMessage]:
    paths = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob("confirm-*/*.eml"))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def link_in(message: email.message.EmailMessage) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(rf"{BASE}(/confirm/\S+)", body).group(1)


def on_site(client, address: str, name: str = "", remote: str = "127.0.0.1") -> int:
    env = {"REMOTE_ADDR": remote}
    token = csrf(client, "/subscribe/weekly", environ_base=env)
    return client.post("/subscribe/weekly", data={"csrf": token, "email": address, "name": name},
                       environ_base=env).status_code


def from_blog(client, address: str, name: str = "", remote: str = "127.0.0.1") -> int:
    return client.post("/subscribe/weekly/from-blog", data={"email": address, "name": name},
                       environ_base={"REMOTE_ADDR": remote}).status_code


# ------------------------------------------------------------------ 1. confirmation emails as a weapon

@pytest.mark.parametrize("form", [on_site, from_blog])
def test_the_unverified_name_is_not_in_the_confirmation_but_is_kept_after_it(world, form):
    client = app_for(world).test_client()
    assert form(client, "reader@example.org", PHISH) == 200
    [message] = confirmations(world)
    assert str(message["To"]) == "reader@example.org"             # no display name of theirs
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert "URGENT" not in part.get_content() and "bank" not in part.get_content()
    assert "URGENT" not in message.as_string() and "bank" not in message.as_string()
    link = link_in(message)
    assert client.post(link, data={"csrf": csrf(client, link)}).status_code == 200
    [row] = [r for r in world.db.lists.listing("weekly") if r["email"] == "reader@example.org"]
    assert row["name"] == PHISH                                   # the owner confirmed: the name stands


def test_plus_tags_and_case_do_not_multiply_mails_to_one_mailbox(lite):
    """Per client the blog form allows 10 an hour; each from its own client, and both
    forms, the +tag spellings of one mailbox still share its 3."""
    client = app_for(lite).test_client()
    spellings = ["victim+1@gmail.com", "Victim+2@Gmail.com", "VICTIM@gmail.com", "victim+3@gmail.com",
                 "victim@GMAIL.COM"]
    codes = [(from_blog if n % 2 else on_site)(client, address, remote=f"10.0.0.{n}")
             for n, address in enumerate(spellings)]
    assert codes == [200, 200, 200, 429, 429]
    assert len(confirmations(lite)) == public.PER_ADDRESS
    assert from_blog(client, "victim.other@gmail.com", remote="10.0.1.1") == 200    # another mailbox


def test_one_cap_in_all_across_both_forms(lite, monkeypatch):
    assert public.SIGNUP_GLOBAL <= 200
    monkeypatch.setattr(public, "SIGNUP_GLOBAL", 6)
    client = app_for(lite).test_client()
    codes = [(on_site if n % 2 else from_blog)(client, f"reader{n}@example.org", remote=f"2001:db8::{n:x}")
             for n in range(8)]
    assert codes == [200] * 6 + [429, 429]
    assert len(confirmations(lite)) == 6


def test_a_refusal_by_one_limit_uses_up_no_other():
    limits = RateLimit()
    assert limits.allow_all([("all", 3), ("address:a", 1)])
    assert not limits.allow_all([("all", 3), ("address:a", 1)])    # refused per address: "all" not counted
    assert limits.allow_all([("all", 3), ("address:b", 1)])
    assert limits.allow_all([("all", 3), ("address:c", 1)])
    assert not limits.allow_all([("all", 3), ("address:d", 1)])
    assert limits.allow_all([("address:d", 1)])                    # nor was "address:d"


# ------------------------------------------------------------------ 2. NUL in a form or a query

def login(client) -> None:
    answer = client.post("/editor/login", data={"csrf": csrf(client, "/editor/login"), "password": PASSWORD})
    assert answer.status_code == 303


def test_nul_in_editor_forms_and_queries_is_a_400_with_a_message(world):
    client = app_for(world).test_client()
    login(client)
    token = csrf(client, "/editor/weekly")
    answers = {
        "search": client.get("/editor/weekly", query_string={"q": "probation\x00"}),
        "pin": client.post("/editor/weekly/pick", data={"csrf": token, "comment": "c1\x00", "action": "pin"}),
        "exclude": client.post("/editor/weekly/pick", data={"csrf": token, "comment": "1\x00", "action": "exclude"}),
        "note": client.post("/editor/weekly/voice", data={"csrf": token, "note": "hi\x00", "subject": ""}),
        "subject": client.post("/editor/weekly/voice", data={"csrf": token, "note": "", "subject": "s\x00"}),
    }
    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 400)
    assert all("NUL character" in a.get_data(as_text=True) for a in answers.values())
    assert client.get("/editor/weekly").status_code == 200
    assert client.get("/editor/weekly", query_string={"q": "probation"}).status_code == 200


def test_nul_in_public_forms_is_a_400(world):
    client = app_for(world).test_client()
    codes = {
        "email": from_blog(client, "a\x00@example.org"),
        "name": from_blog(client, "b@example.org", "B\x00ob"),
        "on-site name": on_site(client, "c@example.org", "C\x00arol"),
        "field name": client.post("/subscribe/weekly/from-blog", data={"email": "d@example.org",
                                                                       "x\x00": "1"}).status_code,
        "path": client.get("/archive/week\x00ly/").status_code,
    }
    assert codes == dict.fromkeys(codes, 400)
    assert confirmations(world) == []


# ------------------------------------------------------------------ 3. the end of the calendar

@pytest.mark.parametrize("day", ["9999-12-31", "9999-12-28", "0001-01-01", "2017-02-30"])
def test_archive_days_past_the_calendar_are_a_404(lite, day):
    answer = app_for(lite).test_client().get(f"/archive/weekly/{day}")
    assert answer.status_code == 404


# ------------------------------------------------------------------ 4. a confirmation during a long sync

def test_a_confirmation_while_a_sync_holds_the_lock_is_a_503_and_the_link_still_works(lite):
    engine = lite.db.engine
    sa.event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA busy_timeout=300"))
    engine.dispose()                                  # every connection from now on waits 0.3 s, not 10
    client = app_for(lite).test_client()
    assert from_blog(client, "reader@myblog.org") == 200
    link = link_in(confirmations(lite)[-1])
    token = csrf(client, link)
    holding, release = threading.Event(), threading.Event()

    def long_sync() -> None:
        with lite.db.lists.syncing("weekly") as run:
            run.merge([Subscriber("someone@myblog.org", "")], datetime.now(UTC))
            holding.set()
            release.wait(20)

    worker = threading.Thread(target=long_sync)
    worker.start()
    try:
        assert holding.wait(5)
        first = client.post(link, data={"csrf": token})
    finally:
        release.set()
        worker.join()
    page = first.get_data(as_text=True)
    assert first.status_code == 503 and first.headers["Retry-After"] == "60"
    assert "busy" in page and "try the link again in a minute" in page
    assert not lite.db.lists.is_active("weekly", "reader@myblog.org")
    second = client.post(link, data={"csrf": token})
    assert second.status_code == 200 and "Subscribed" in second.get_data(as_text=True)
    assert lite.db.lists.is_active("weekly", "reader@myblog.org")


def test_other_database_faults_stay_a_500(lite, monkeypatch):
    from digest.errors import StoreError
    app = app_for(lite)

    def broken(*_args, **_kwargs):
        raise StoreError("database error (disk I/O error); run again, or with --debug to see more")

    monkeypatch.setattr(lite.db.ledger, "sent_editions", broken)
    assert app.test_client().get("/archive/weekly/").status_code == 500
    monkeypatch.setattr(lite.db.ledger, "sent_editions",
                        lambda *_: (_ for _ in ()).throw(StoreError("the database is locked by another digest "
                                                                    "process; try again")))
    busy = app.test_client().get("/archive/weekly/")
    assert busy.status_code == 503 and "try again in a minute" in busy.get_data(as_text=True)



def test_a_confirmation_that_fails_after_using_its_link_leaves_the_link_working(world, monkeypatch):
    """The race the 503 left open: the link is marked used, then the database is busy
    before the reader is added. The link must work again, not say 'used already'."""
    from digest import actions
    from digest.actions import subscribers
    from digest.errors import StoreError
    listed = world.weekly
    asked = datetime(2026, 11, 30, 9, tzinfo=UTC)
    real = subscribers.subscribe
    calls = {"n": 0}

    def busy_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("database is locked (another process is writing); try again in a minute")
        return real(*args, **kwargs)

    monkeypatch.setattr(subscribers, "subscribe", busy_once)
    with pytest.raises(StoreError):
        actions.confirm_subscription(world.settings, world.db, listed, "late@example.net", "", asked, "link-1", asked)
    added = actions.confirm_subscription(world.settings, world.db, listed, "late@example.net", "", asked, "link-1",
                                         asked)
    assert world.db.lists.is_active("weekly", "late@example.net") and added.address == "late@example.net"
