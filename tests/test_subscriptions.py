"""Subscriptions through the web app, the CLI and provider events: a confirmation link
works once and never undoes an unsubscribe, spellings of one mailbox are one reader,
one-click unsubscribes race safely, and a webhook event is applied whole or not at all."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import make_server

from digest import actions
from digest.actions import plan, send, send_edition
from digest.cli import cli
from digest.db.tables import provider_events, suppressions
from digest.models import EVERY_LIST, Reason, email_key
from digest.web import create_app

from .support.world import World

BASE = "http://localhost:8000"


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-for-subscriptions")
    return make_world(db_url, 3)


def outbox_files(world: World, pattern: str) -> list[Path]:
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))


def read_mail(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def ask(client, address: str, name: str = "") -> int:
    return client.post("/subscribe/weekly", data={"csrf": csrf(client, "/subscribe/weekly"), "email": address,
                                                   "name": name}).status_code


def confirmation_link(world: World, address: str) -> str:
    """The path of the newest confirmation link sent to address."""
    for path in reversed(outbox_files(world, "confirm-*/*.eml")):
        message = read_mail(path)
        if email_key(message["To"].addresses[0].addr_spec) == email_key(address):
            body = message.get_body(("plain",)).get_content()
            return re.search(rf"{BASE}(/confirm/\S+)", body).group(1)
    raise AssertionError(f"no confirmation to {address}")


def confirm(client, link: str):
    answer = client.post(link, data={"csrf": csrf(client, link)})
    return answer.status_code, answer.get_data(as_text=True)


def edition_mail(world: World, edition_id: int) -> list[email.message.EmailMessage]:
    return [read_mail(p) for p in outbox_files(world, f"weekly-{edition_id}/*.eml")]


def unsubscribe_path(world: World, edition_id: int, address: str) -> str:
    for message in edition_mail(world, edition_id):
        if email_key(message["To"].addresses[0].addr_spec) == email_key(address):
            return message["List-Unsubscribe"].strip("<>").replace(BASE, "")
    raise AssertionError(f"{address} got no copy of edition {edition_id}")


def send_again(world: World) -> int:
    return send(world.settings, world.db, plan(world.settings, world.db, world.weekly, world.since, world.until,
                                               again=True)).edition_id


def one_click(client, path: str) -> int:
    return client.post(path, data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code


def run_cli(world: World, *args: str):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args], catch_exceptions=False)


def rows_for(world: World, address: str) -> list[dict]:
    return [r for r in world.db.lists.listing("weekly") if email_key(r["email"]) == email_key(address)]


def suppression_rows(world: World, address: str) -> list[tuple[str, str]]:
    with world.db.engine.connect() as db:
        return sorted((r.list_name, r.reason) for r in db.execute(
            sa.select(suppressions.c.list_name, suppressions.c.reason)
            .where(suppressions.c.email_key == email_key(address))))


# ------------------------------------------------------------------ 1. a confirmation link works once

@pytest.mark.parametrize("how", ["one-click", "action"])
def test_a_confirmation_link_never_undoes_an_unsubscribe(world, client, how):
    address = "new.reader@example.org"
    assert ask(client, address, "New") == 200
    used = confirmation_link(world, address)
    assert ask(client, address, "New Reader") == 200        # a second link, asked for but never used
    unused = confirmation_link(world, address)
    assert unused != used

    status, page = confirm(client, used)
    assert status == 200 and "will get the next edition" in page
    status, page = confirm(client, used)
    assert status == 200
    assert len(rows_for(world, address)) == 1 and world.db.lists.is_active("weekly", address)

    if how == "one-click":
        edition_id = send_edition(world.settings, world.db, world.weekly, world.since, world.until).edition_id
        assert one_click(client, unsubscribe_path(world, edition_id, address)) == 200
    else:
        actions.unsubscribe(world.db, world.weekly, address, "test", datetime.now(UTC))
    assert world.db.lists.is_suppressed("weekly", address)

    status, page = confirm(client, used)
    assert status == 409 and "used already" in page and "will get the next edition" not in page
    assert world.db.lists.is_suppressed("weekly", address)

    status, page = confirm(client, unused)
    assert status == 409 and "unsubscribed after asking" in page and "will get the next edition" not in page
    assert world.db.lists.is_suppressed("weekly", address)
    assert not world.db.lists.is_active("weekly", address)


# ------------------------------------------------------------------ 2. removed or bounced: told the truth

def test_a_removed_address_is_told_why_and_stays_off(world, client):
    address = "reader00001@example.org"
    send_edition(world.settings, world.db, world.weekly, world.since, world.until)      # the file is synced
    result = run_cli(world, "subscribers", "remove", "weekly", address)
    assert result.exit_code == 0, result.output
    assert ask(client, address) == 200
    status, page = confirm(client, confirmation_link(world, address))
    assert status == 409 and "took this address off" in page
    assert "<h1>Subscribed</h1>" not in page and "will get the next edition" not in page
    assert world.db.lists.is_suppressed("weekly", address) and not world.db.lists.is_active("weekly", address)


def test_a_bounced_address_is_told_why_and_stays_off(world, client):
    address = "bounced@example.org"
    world.db.lists.suppress(email_key(address), EVERY_LIST, Reason.BOUNCED, "550 no such user", datetime.now(UTC))
    assert ask(client, address) == 200
    status, page = confirm(client, confirmation_link(world, address))
    assert status == 409 and "bounced" in page
    assert "<h1>Subscribed</h1>" not in page and "will get the next edition" not in page
    assert world.db.lists.is_suppressed("weekly", address) and not world.db.lists.is_active("weekly", address)
    assert suppression_rows(world, address) == [(EVERY_LIST, Reason.BOUNCED.value)]


# ------------------------------------------------------------------ 3. the rate limit counts mailboxes

def test_rate_limit_counts_spellings_of_one_address_as_one(client):
    spellings = ["Victim@example.org", "victim@EXAMPLE.org", "VICTIM@Example.Org", "victim@example.org"]
    assert [ask(client, s) for s in spellings] == [200, 200, 200, 429]


# ------------------------------------------------------------------ 4. one mailbox, one subscriber

@pytest.mark.parametrize("cli_first", [False, True])
def test_file_and_cli_spellings_are_one_subscriber(world, client, cli_first):
    world.write_list(["reader00000@example.org", "John.Smith@example.org"])
    if cli_first:
        assert run_cli(world, "subscribers", "add", "weekly", "john.smith@example.org").exit_code == 0
    assert run_cli(world, "subscribers", "list", "weekly", "--sync").exit_code == 0
    if not cli_first:
        assert run_cli(world, "subscribers", "add", "weekly", "john.smith@example.org").exit_code == 0
    assert len(rows_for(world, "john.smith@example.org")) == 1

    edition_id = send_edition(world.settings, world.db, world.weekly, world.since, world.until).edition_id
    copies = [m for m in edition_mail(world, edition_id)
              if m["To"].addresses[0].addr_spec.lower() == "john.smith@example.org"]
    assert len(copies) == 1
    assert len(rows_for(world, "john.smith@example.org")) == 1     # the send's sync made no second one

    assert one_click(client, copies[0]["List-Unsubscribe"].strip("<>").replace(BASE, "")) == 200
    assert world.db.lists.is_suppressed("weekly", "John.Smith@example.org")
    assert world.db.lists.is_suppressed("weekly", "john.smith@example.org")
    later = send_again(world)
    assert not any(m["To"].addresses[0].addr_spec.lower() == "john.smith@example.org"
                   for m in edition_mail(world, later))
    assert len(edition_mail(world, later)) == 1


# ------------------------------------------------------------------ 5. an address added on purpose stays

def test_a_file_address_added_by_the_cli_is_not_retired_by_the_file(world):
    assert run_cli(world, "subscribers", "list", "weekly", "--sync").exit_code == 0
    assert {r["email"]: r["origin"] for r in world.db.lists.listing("weekly")} == {
        f"reader{n:05d}@example.org": "file" for n in range(3)}
    assert run_cli(world, "subscribers", "add", "weekly", "reader00001@example.org").exit_code == 0
    assert rows_for(world, "reader00001@example.org")[0]["origin"] == "cli"

    world.write_list(["reader00000@example.org"])           # the editor takes 00001 and 00002 off the file
    result = run_cli(world, "subscribers", "list", "weekly", "--sync")
    assert result.exit_code == 0, result.output
    state = {r["email"]: (r["active"], r["origin"]) for r in world.db.lists.listing("weekly")}
    assert state == {"reader00000@example.org": (True, "file"), "reader00001@example.org": (True, "cli"),
                     "reader00002@example.org": (False, "file")}
    assert world.db.lists.is_active("weekly", "reader00001@example.org")


# ------------------------------------------------------------------ 6. 50 one-click unsubscribes at once

def test_fifty_concurrent_one_click_unsubscribes(world):
    address = "reader00002@example.org"
    edition_id = send_edition(world.settings, world.db, world.weekly, world.since, world.until).edition_id
    path = unsubscribe_path(world, edition_id, address)
    server = make_server("127.0.0.1", 0, create_app(world.settings, world.db), threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}{path}"
    barrier = threading.Barrier(50)
    statuses: list[int | str] = []
    lock = threading.Lock()

    def unsubscribe() -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            try:
                status: int | str = http.post(url, content=b"List-Unsubscribe=One-Click", headers={
                    "Content-Type": "application/x-www-form-urlencoded"}).status_code
            except httpx.HTTPError as error:
                status = repr(error)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=unsubscribe) for _ in range(50)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert statuses == [200] * 50
    assert suppression_rows(world, address) == [("weekly", Reason.UNSUBSCRIBED.value)]


# ------------------------------------------------------------------ 7. the webhook

@pytest.fixture
def signing_key(monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public).decode())
    return key


def post_events(client, key, events, stamp: str | None = None):
    stamp = str(int(time.time())) if stamp is None else stamp
    raw = json.dumps(events)
    signature = base64.b64encode(key.sign((stamp + raw).encode(), ec.ECDSA(hashes.SHA256()))).decode()
    return client.post("/webhooks/sendgrid", data=raw, content_type="application/json", headers={
        "X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": stamp})


def dropped(address: str, reason: str, ident: str) -> dict:
    return {"email": address, "event": "dropped", "reason": reason, "sg_event_id": ident, "list": "weekly",
            "subscriber": email_key(address), "timestamp": int(time.time())}


def test_dropped_reasons_suppress_as_they_mean(world, client, signing_key):
    events = [dropped("reader00000@example.org", "Unsubscribed Address", "d1"),
              dropped("reader00001@example.org", "Spam Reporting Address", "d2"),
              dropped("reader00002@example.org", "Bounced Address", "d3"),
              dropped("quota@example.org", "Recipient List over Package Quota", "d4"),
              dropped("content@example.org", "Spam Content (if Spam Checker app is enabled)", "d5")]
    answer = post_events(client, signing_key, events)
    assert answer.status_code == 200
    assert suppression_rows(world, "reader00000@example.org") == [("weekly", "unsubscribed")]
    assert not world.db.lists.is_suppressed("other", "reader00000@example.org")
    assert suppression_rows(world, "reader00001@example.org") == [(EVERY_LIST, "complained")]
    assert suppression_rows(world, "reader00002@example.org") == [(EVERY_LIST, "bounced")]
    assert suppression_rows(world, "quota@example.org") == []
    assert suppression_rows(world, "content@example.org") == []


def seen(world: World, ident: str) -> bool:
    with world.db.engine.connect() as db:
        return db.execute(sa.select(provider_events.c.sg_event_id)
                          .where(provider_events.c.sg_event_id == ident)).first() is not None


def rename(world: World, old: str, new: str) -> None:
    with world.db.engine.begin() as db:
        db.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_an_event_that_fails_is_not_remembered_and_its_retry_applies(world, client, signing_key):
    event = [{"email": "reader00001@example.org", "event": "bounce", "sg_event_id": "atomic-1", "list": "weekly",
              "reason": "550 5.1.1 no such user"}]
    rename(world, "suppressions", "s2")
    try:
        failed = post_events(client, signing_key, event)
    finally:
        rename(world, "s2", "suppressions")
    assert 500 <= failed.status_code < 600
    assert not seen(world, "atomic-1")
    assert not world.db.lists.is_suppressed("weekly", "reader00001@example.org")

    retry = post_events(client, signing_key, event)
    assert retry.status_code == 200 and retry.get_data(as_text=True) == "1 applied"
    assert seen(world, "atomic-1")
    assert suppression_rows(world, "reader00001@example.org") == [(EVERY_LIST, "bounced")]


@pytest.mark.parametrize("edition", ["1" * 30, 10**30, -1, "12.5", "１２", None, ["1"], {"id": 1}])
def test_a_strange_edition_id_is_never_a_500(world, client, signing_key, edition):
    event = [{"email": "reader00001@example.org", "event": "delivered", "sg_event_id": f"odd-{edition!r}",
              "edition": edition}]
    answer = post_events(client, signing_key, event)
    assert answer.status_code == 200 or 400 <= answer.status_code < 500


@pytest.mark.parametrize("stamp", ["9" * 5000, "1" * 13, "-1", "1e9", ""])
def test_a_strange_timestamp_header_is_never_a_500(world, client, signing_key, stamp):
    event = [{"email": "reader00001@example.org", "event": "spamreport", "sg_event_id": "stamp-1"}]
    answer = post_events(client, signing_key, event, stamp=stamp)
    assert 400 <= answer.status_code < 500
    assert not world.db.lists.is_suppressed("weekly", "reader00001@example.org")


# ------------------------------------------------------------------ a stranger's second look (regressions)

def test_an_unsubscribe_said_again_after_a_link_was_asked_for_is_not_lifted_by_it(world, client):
    address = "twice@example.org"
    actions.unsubscribe(world.db, world.weekly, address, "first", datetime(2017, 1, 1, tzinfo=UTC))   # T0
    assert ask(client, address) == 200                                                              # T1
    link = confirmation_link(world, address)
    time.sleep(1.1)                                  # the link's timestamp has a one-second grain
    actions.unsubscribe(world.db, world.weekly, address, "again", datetime.now(UTC))                 # T2
    status, page = confirm(client, link)                                                             # T3
    assert status == 409 and "unsubscribed after asking" in page
    assert world.db.lists.is_suppressed("weekly", address)


def test_a_link_spelled_differently_is_the_same_link(world, client):
    """The signature's last base64 character has spare bits: another spelling decodes to
    the same signature. "Used" is keyed on what the link says, not how it is spelled."""
    address = "spelling@example.org"
    assert ask(client, address) == 200
    link = confirmation_link(world, address)
    assert confirm(client, link)[0] == 200
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = link[:-1] + alphabet[alphabet.index(link[-1]) ^ 1]
    with world.db.engine.begin() as db:                  # the reader left the list since
        from digest.db.tables import subscribers
        db.execute(subscribers.update().where(subscribers.c.email_key == email_key(address)).values(active=False))
    shown = client.get(respelled)                        # a sealed link has one spelling: not ours
    status, page = (400, shown.get_data(as_text=True)) if shown.status_code == 400 else confirm(client, respelled)
    assert status in (400, 409), page                    # refused: a bad signature, or a used link
    assert not world.db.lists.is_active("weekly", address)


def test_a_local_part_is_matched_by_its_ascii_letters_only():
    assert email_key("FINANCE@Example.org") == email_key("finance@example.org")
    assert email_key("\ufb01nance@example.org") != email_key("finance@example.org")      # the ligature fi
    assert email_key("stra\u00dfe@example.org") != email_key("strasse@example.org")
    assert email_key("\u212aim@example.org") != email_key("kim@example.org")             # the Kelvin sign


def test_export_neutralises_formulas_in_addresses_too_and_reads_them_back(world, tmp_path):
    hostile = "=cmd|'/Ccalc.exe'!A0@attacker.example"
    run_cli(world, "subscribers", "add", "weekly", hostile)
    exported = run_cli(world, "subscribers", "export", "weekly").output
    assert f"'{hostile}" in exported and f",{hostile}" not in exported and not exported.count("\n=")
    back = tmp_path / "back.csv"
    back.write_text(exported, encoding="utf-8")
    imported = run_cli(world, "subscribers", "import", "weekly", str(back))
    assert "weekly: 0 added" in imported.output and "0 rows skipped" in imported.output   # the ' came off again
    assert len(rows_for(world, hostile)) == 1
