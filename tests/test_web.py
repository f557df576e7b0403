"""The web app through Flask's test client: every route and every bad input."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.actions import plan, send
from digest.web import create_app

from .support.world import World, sent

PASSWORD = "correct horse battery staple"


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-for-the-web")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    return sent(make_world(db_url))


def outbox_files(world: World, pattern: str) -> list[Path]:
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))


def csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def unsubscribe_url(world: World, address: str) -> str:
    for path in outbox_files(world, "weekly-*/*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"].addresses[0].addr_spec == address:
            return message["List-Unsubscribe"].strip("<>")
    raise AssertionError(address)


# ------------------------------------------------------------------ pages and headers

def test_security_headers_and_no_dev_banner(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Insecure dev mode" not in response.get_data(as_text=True)


def test_dev_mode_says_so_on_every_page(world, monkeypatch):
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    dev = create_app(world.settings, world.db).test_client()
    for path in ("/", "/subscribe/weekly", "/archive/weekly/", "/editor/login"):
        assert "Insecure dev mode" in dev.get(path).get_data(as_text=True)


def test_archive_index_edition_and_feed(client):
    index = client.get("/archive/weekly/").get_data(as_text=True)
    assert 'href="/archive/weekly/2017-10-25"' in index
    page = client.get("/archive/weekly/2017-10-25")
    assert page.status_code == 200 and "Comment of the week" in page.get_data(as_text=True)
    assert "[[digest-" not in page.get_data(as_text=True)
    feed = client.get("/archive/weekly/feed.atom")
    assert feed.mimetype == "application/atom+xml"
    assert "<id>http://localhost:8000/archive/weekly/2017-10-25</id>" in feed.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/archive/monthly/", "/archive/weekly/2017-01-01", "/subscribe/monthly",
                                  "/archive/monthly/feed.atom"])
def test_unknown_list_or_day_is_404(client, path):
    assert client.get(path).status_code == 404


# ------------------------------------------------------------------ subscribe

def test_subscribe_sends_a_confirmation_and_only_the_confirmation_subscribes(world, client):
    token = csrf(client, "/subscribe/weekly")
    answer = client.post("/subscribe/weekly", data={"csrf": token, "email": "New.Reader@Example.org", "name": "New"})
    assert answer.status_code == 200 and "Check your inbox" in answer.get_data(as_text=True)
    assert not any(r["email"] == "New.Reader@example.org" for r in world.db.lists.listing("weekly"))
    mail = outbox_files(world, "confirm-*/*.eml")
    assert len(mail) == 1
    message = email.message_from_bytes(mail[0].read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"http://localhost:8000(/confirm/\S+)", body).group(1)
    page = client.get(link)
    assert page.status_code == 200 and "Yes, subscribe me" in page.get_data(as_text=True)
    assert not any(r["email"] == "New.Reader@example.org" for r in world.db.lists.listing("weekly"))
    confirmed = client.post(link, data={"csrf": csrf(client, link)})
    assert confirmed.status_code == 200 and "will get the next edition" in confirmed.get_data(as_text=True)
    again = client.post(link, data={"csrf": csrf(client, link)})
    assert again.status_code == 200
    rows = [r for r in world.db.lists.listing("weekly") if r["email"] == "New.Reader@example.org"]
    assert len(rows) == 1 and rows[0]["active"] and rows[0]["origin"] == "web"


def test_subscribe_without_csrf_is_refused(client):
    assert client.post("/subscribe/weekly", data={"email": "a@example.org"}).status_code == 400


def test_honeypot_looks_fine_but_sends_nothing(world, client):
    answer = client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"),
                                                     "email": "bot@example.org", "website": "http://spam"})
    assert answer.status_code == 200 and outbox_files(world, "confirm-*/*.eml") == []


def test_bad_address_is_shown_escaped(client):
    answer = client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"),
                                                     "email": "<script>x</script>"})
    assert answer.status_code == 400 and "<script>x</script>" not in answer.get_data(as_text=True)
    assert "&lt;script&gt;" in answer.get_data(as_text=True)


def test_rate_limit_per_address(client):
    token = csrf(client, "/subscribe/weekly")
    codes = [client.post("/subscribe/weekly", data={"csrf": token, "email": "same@example.org"}).status_code
             for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_forged_and_expired_confirmations_are_harmless(world, client, monkeypatch):
    assert client.get("/confirm/not-a-token").status_code == 400
    from itsdangerous import URLSafeTimedSerializer
    signer = URLSafeTimedSerializer("test-secret-key-for-the-web", salt="digest-subscribe")
    monkeypatch.setattr(time, "time", lambda: 1_000_000_000.0)
    old = signer.dumps(["weekly", "late@example.org", ""])
    monkeypatch.undo()
    response = client.get(f"/confirm/{old}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    forged = URLSafeTimedSerializer("another-key", salt="digest-subscribe").dumps(["weekly", "x@example.org", ""])
    assert client.get(f"/confirm/{forged}").status_code == 400


# ------------------------------------------------------------------ unsubscribe

def test_get_does_not_unsubscribe_but_one_click_post_does(world, client):
    url = unsubscribe_url(world, "reader00001@example.org").replace("http://localhost:8000", "")
    page = client.get(url)
    assert page.status_code == 200 and "Unsubscribe" in page.get_data(as_text=True)
    assert not world.db.lists.is_suppressed("weekly", "reader00001@example.org")
    answer = client.post(url, data="List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert world.db.lists.is_suppressed("weekly", "reader00001@example.org")


def test_one_click_multipart_and_bad_requests(world, client):
    url = unsubscribe_url(world, "reader00002@example.org").replace("http://localhost:8000", "")
    answer = client.post(url, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data")
    assert answer.status_code == 200 and world.db.lists.is_suppressed("weekly", "reader00002@example.org")
    assert client.post(url, data="nothing=here", content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post(url[:-3] + "xyz", data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 400


def test_unsubscribed_address_is_skipped_by_the_next_send(world, client):
    url = unsubscribe_url(world, "reader00000@example.org").replace("http://localhost:8000", "")
    client.post(url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    report = send(world.settings, world.db, plan(world.settings, world.db, world.weekly, world.since, world.until,
                                                 again=True))
    assert report.counts == {"accepted": 2}
    latest = sorted(outbox_files(world, f"weekly-{report.edition_id}/*.eml"))
    assert b"reader00000@example.org" not in b"".join(p.read_bytes() for p in latest)


# ------------------------------------------------------------------ webhook

@pytest.fixture
def signing_key(monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public).decode())
    return key


def post_events(client, key, events, stamp=None, body=None):
    stamp = str(int(time.time()) if stamp is None else stamp)
    raw = body if body is not None else json.dumps(events)
    signature = base64.b64encode(key.sign((stamp + raw).encode(), ec.ECDSA(hashes.SHA256()))).decode()
    return client.post("/webhooks/sendgrid", data=raw, content_type="application/json", headers={
        "X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": stamp})


def test_webhook_bounce_suppresses_and_delivered_updates_the_ledger(world, client, signing_key):
    events = [{"email": "reader00001@example.org", "event": "bounce", "sg_event_id": "e1", "list": "weekly",
               "edition": "1"},
              {"email": "reader00002@example.org", "event": "delivered", "sg_event_id": "e2", "edition": "1"},
              {"email": "reader00000@example.org", "event": "dropped", "reason": "Bounced Address",
               "sg_event_id": "e3"}]
    answer = post_events(client, signing_key, events)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "3 applied"
    lists = world.db.lists
    assert lists.is_suppressed("weekly", "reader00001@example.org")
    assert lists.is_suppressed("other", "reader00001@example.org")
    assert lists.is_suppressed("weekly", "reader00000@example.org")
    assert not lists.is_suppressed("weekly", "reader00002@example.org")
    import sqlalchemy as sa

    from digest.db.tables import deliveries
    with world.db.engine.connect() as db:
        assert db.execute(sa.select(deliveries.c.event).where(
            deliveries.c.email_key == "reader00002@example.org")).scalar() == "delivered"
    replay = post_events(client, signing_key, events)
    assert replay.status_code == 200 and replay.get_data(as_text=True) == "0 applied"


def test_webhook_forged_stale_malformed_and_unconfigured(world, client, signing_key, monkeypatch):
    event = [{"email": "reader00001@example.org", "event": "spamreport", "sg_event_id": "x1"}]
    other = ec.generate_private_key(ec.SECP256R1())
    assert post_events(client, other, event).status_code == 403
    assert post_events(client, signing_key, event, stamp=int(time.time()) - 3600).status_code == 403
    assert client.post("/webhooks/sendgrid", json=event).status_code == 403
    assert post_events(client, signing_key, None, body="{not json").status_code == 400
    assert not world.db.lists.is_suppressed("weekly", "reader00001@example.org")
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY")
    assert post_events(client, signing_key, event).status_code == 503


# ------------------------------------------------------------------ editor

def login(client, password=PASSWORD):
    return client.post("/editor/login", data={"csrf": csrf(client, "/editor/login"), "password": password})


def test_editor_pages_need_a_login(client):
    """A page asked for while logged out is the login form, which comes back to it (issue 23:
    no bare 403); a form posted while logged out is refused."""
    for path in ("/editor/", "/editor/weekly", "/editor/weekly/email.html", "/editor/weekly/email.txt",
                 "/editor/weekly/subscribers", "/editor/weekly/send"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["Location"].startswith("/editor/login?next=/editor/")
    assert client.post("/editor/weekly/send", data={}).status_code in (400, 403)
    assert client.post("/editor/weekly/subscribers/remove", data={"email": "reader00001@example.org"}
                       ).status_code in (400, 403)
    assert login(client, "wrong").status_code == 403
    token = csrf(client, "/editor/login?next=/editor/weekly/subscribers")
    back = client.post("/editor/login", data={"csrf": token, "password": PASSWORD,
                                              "next": "/editor/weekly/subscribers"})
    assert back.status_code == 303 and back.headers["Location"] == "/editor/weekly/subscribers"
    assert client.get("/editor/weekly?since=2017-10-25&until=2017-11-01").status_code == 200
    elsewhere = client.post("/editor/login", data={"csrf": csrf(client, "/editor/login"), "password": PASSWORD,
                                                   "next": "https://evil.example/"})
    assert elsewhere.headers["Location"] == "/editor/"                 # never sent off the site


def test_editor_sees_why_pins_and_sends_a_test(world, client):
    login(client)
    query = "since=2017-10-25&until=2017-11-01"
    page = client.get(f"/editor/weekly?{query}").get_data(as_text=True)
    assert "Why:" not in page and "score " in page and "bytes of HTML, budget 102000" in page
    chosen = re.findall(r'data-action="pin" data-comment="(\d+)"', page)[-1]
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    moved = client.post("/editor/weekly/pick", data={"csrf": token, "comment": chosen, "action": "pin", "query": query})
    assert moved.status_code == 303 and moved.headers["Location"] == f"/editor/weekly?{query}"
    after = client.get(f"/editor/weekly?{query}").get_data(as_text=True)
    star = after.split('<div id="star">')[1].split("</div>")[0]
    assert f'data-thread="{chosen}"' in star and "pinned" in star
    evil = client.post("/editor/weekly/pick", data={"csrf": token, "comment": chosen, "action": "clear",
                                                     "query": "next=//evil.example"})
    assert evil.headers["Location"] == "/editor/weekly"
    assert client.post("/editor/weekly/pick", data={"comment": chosen, "action": "pin"}).status_code == 400
    sent = client.post(f"/editor/weekly/test?{query}", data={"csrf": token, "email": "editor@example.org"},
                       follow_redirects=True)
    page = sent.get_data(as_text=True)
    assert sent.status_code == 200 and "nothing was recorded" in page        # back at the desk (issue 23)
    assert 'id="period-label">25' in page
    assert len(outbox_files(world, "weekly-test-*/*.eml")) == 1
    assert len(world.db.ledger.history()) == 1
    email_html = client.get(f"/editor/weekly/email.html?{query}").get_data(as_text=True)
    assert email_html.startswith("<!DOCTYPE html>") and "Why: " not in email_html   # as subscribers get it


def test_library_errors_become_one_page_with_their_own_status(world, client):
    """One handler for every DigestError: a wrong request is a 400 page saying what to do,
    a forged webhook a 403, an unconfigured one a 503; nothing is half done."""
    login(client)
    query = "since=2017-10-25&until=2017-11-01"
    token = csrf(client, f"/editor/weekly?{query}")
    bad = client.post(f"/editor/weekly/test?{query}", data={"csrf": token, "email": "not an address"})
    assert bad.status_code == 400 and "is not a valid address" in bad.get_data(as_text=True)
    assert outbox_files(world, "weekly-test-*/*.eml") == []
    long = client.post("/editor/weekly/voice", data={"csrf": token, "subject": "s" * 201, "note": "kept?"})
    page = long.get_data(as_text=True)
    assert long.status_code == 400 and "keep it under 200" in page and "<title>" in page
    assert world.db.drafts.get("weekly").note == "kept?"          # the note went in before the subject failed
    unset = client.post("/webhooks/sendgrid", data=b"[]")                       # no verification key set
    assert unset.status_code == 503 and "set SENDGRID_WEBHOOK_PUBLIC_KEY" in unset.get_data(as_text=True)


def test_the_editors_home_shows_the_last_doctor_result(world, client):
    from datetime import UTC, datetime

    from digest import actions
    login(client)
    assert "Not checked yet: run <code>digest doctor</code>" in client.get("/editor/").get_data(as_text=True)
    found = [actions.Check("config", True, "fine"), actions.Check("spf", False, "no SPF record", 'publish "v=spf1"')]
    actions.keep_checks(world.settings, [actions.Check("database", True, "up to date"), *found], "schedule",
                        datetime(2026, 12, 6, 7, tzinfo=UTC))
    page = client.get("/editor/").get_data(as_text=True)
    assert "2 of 3 checks pass" in page and "06 Dec 2026, 07:00 UTC" in page and "digest schedule" in page
    assert "✗ spf</strong>: no SPF record" in page and "Fix: publish &#34;v=spf1&#34;" in page


def test_without_a_secret_the_app_starts_only_in_dev_mode(world, monkeypatch):
    from digest.send.signing import SecretMissing
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    web = world.settings.web.model_copy(update={"insecure_dev_mode": False})
    secure = world.settings.model_copy(update={"web": web})
    with pytest.raises(SecretMissing, match="DIGEST_SECRET_KEY is not set"):
        create_app(secure, world.db)


def test_digest_serve_answers_over_http(world):
    import os
    import subprocess
    import sys
    import urllib.request

    from .support.smtp_server import free_port
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "digest.cli", "--config", str(world.config_path), "serve",
                                "--port", str(port)], env=dict(os.environ),
                               stderr=subprocess.PIPE, text=True)
    try:
        assert "Serving on http://127.0.0.1:" in process.stderr.readline()
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/archive/weekly/", timeout=2) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        assert "/archive/weekly/2017-10-25" in page
    finally:
        process.terminate()
        process.wait(timeout=10)
