"""Mail mode end to end, as the On Probation editor runs it with a mailbox and a laptop and
no server: nothing listens for digest (no `digest serve`), and every step is a mail.

A reader subscribes by writing to the sign-up address, confirms by replying, receives the
edition the editor approved by replying from a phone, and leaves through the copy's
List-Unsubscribe mailto; the blog's post-by-email address gets the week's Pick of the Week
once. The mailbox is real IMAP over TLS (dovecot), the relay and the MX a real SMTP server
with STARTTLS and a login (tests/support/provider.py). What each mailbox received is
written to tests/output/mail-mode-walk.txt: the transcript in the issue's closing note."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest import actions
from digest.cli import cli
from digest.db.tables import subscribers, suppressions

from .support import provider
from .support.world import World
from .test_browser import SHOTS

MAILBOX = "pickoftheweek@onprobation-mail.org"
EDITOR = "editor@onprobation.org"
READER = "jo.reader@example.net"
BLOG = "onprobation.secret42@blogger.com"
RUN_AT = datetime(2017, 11, 1, 7, tzinfo=UTC)          # the scheduled run of the week 25-31 October 2017
PASSWORD_ENV = "DIGEST_TEST_PROVIDER_PASSWORD"


@pytest.fixture
def walk(tmp_path, db_url, imap, monkeypatch):
    dovecot = imap(user="pickoftheweek", password="an imap app password")
    mail = provider.start(dovecot, MAILBOX, senders={"onprobation.org", "onprobation-mail.org", "example.net"})
    monkeypatch.setenv(PASSWORD_ENV, mail.password)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", dovecot.password)
    world = World(tmp_path, db_url, subscribers=0, web={"base_url": "http://localhost:8000"}, backend="smtp",
                  smtp={"host": "127.0.0.1", "port": mail.port, "security": "starttls", "username": mail.user,
                        "password_env": PASSWORD_ENV, "ca_file": str(dovecot.pki.ca), "connections": 1})
    world.data["sending"]["from"] = f"On Probation <{MAILBOX}>"
    world.data["mailbox"] = {"address": MAILBOX, "imap_host": "127.0.0.1", "imap_port": dovecot.port,
                             "imap_user": dovecot.user, "imap_ca_file": str(dovecot.pki.ca),
                             "authserv_id": provider.SERVER}
    world.data["editor"] = {"email": EDITOR}
    world.data["publish"] = {"mail_to": BLOG}
    world.data["lists"][0]["approval"] = "required"
    world.reload()
    yield world, mail
    mail.stop()
    world.close()


def digest(world: World, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    result = CliRunner().invoke(cli, ["--config", str(world.config_path), *args])
    assert result.exit_code in ok, result.output
    return result.output


def reply(to: EmailMessage, sender: str, body: str, *, reply_to: str | None = None) -> EmailMessage:
    """A person's reply from a mail app: to the Reply-To, Re: the subject, the original quoted below."""
    answer = EmailMessage()
    answer["From"], answer["To"] = sender, reply_to or str(to["Reply-To"] or to["From"])
    answer["Subject"] = f"Re: {to['Subject']}"
    answer["Message-ID"], answer["In-Reply-To"] = make_msgid(domain=sender.rpartition("@")[2]), str(to["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in _text(to).splitlines()[:40])
    answer.set_content(f"{body}\n\nOn Wed, 1 Nov 2017, On Probation wrote:\n{quoted}\n")
    return answer


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    return part.get_content() if part is not None else ""


def active(world: World) -> set[str]:
    with world.db.engine.connect() as db:
        listed = {row.email_key for row in db.execute(sa.select(subscribers.c.email_key)
                                                      .where(subscribers.c.active.is_(True)))}
        gone = {row.email_key for row in db.execute(sa.select(suppressions.c.email_key))}
    return listed - gone


def test_a_reader_joins_reads_and_leaves_and_the_editor_approves_all_by_mail(walk, browser):
    world, mail = walk
    log: list[str] = []
    checks = {c["check"]: c for c in json.loads(digest(world, "doctor", "--json", ok=(0, 1)))}
    assert all(checks[name]["ok"] for name in ("approval", "mailbox", "limits", "public_url")), checks
    assert "plus addresses arrive" in checks["mailbox"]["detail"]                  # the probe came back

    def said(step: str, output: str = "") -> None:
        log.append(f"$ {step}" if not output else f"$ {step}\n{output.rstrip()}")

    def received(address: str) -> EmailMessage:
        last = mail.provider.inbox(address)[-1]
        log.append(f"  -> {address} received: {last['Subject']}  (Reply-To: {last['Reply-To'] or '-'}; "
                   f"List-Unsubscribe: {last['List-Unsubscribe'] or '-'})")
        return last

    # 1. the reader writes to the sign-up address the blog shows (a mailto link)
    ask = EmailMessage()
    ask["From"], ask["To"], ask["Subject"] = f"Jo Reader <{READER}>", "pickoftheweek+subscribe-weekly@" \
        "onprobation-mail.org", "subscribe"
    ask["Message-ID"] = make_msgid(domain="example.net")
    ask.set_content("Please add me.")
    mail.send(ask)
    said("reader mails pickoftheweek+subscribe-weekly@onprobation-mail.org")
    said("digest mailbox", digest(world, "mailbox"))
    confirmation = received(READER)
    assert READER not in active(world) and "+confirm-" in str(confirmation["Reply-To"])
    assert confirmation["Auto-Submitted"] == "auto-generated"             # RFC 3834: no robot answers it

    # 2. the reader replies to the confirmation: active, and welcomed once
    mail.send(reply(confirmation, READER, "Yes please"))
    said("reader replies to the confirmation")
    said("digest mailbox", digest(world, "mailbox"))
    welcome = received(READER)
    assert READER in active(world) and welcome["Subject"] != confirmation["Subject"]

    # 3. the scheduled run holds the edition and mails the editor the review copy
    actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT)
    said("digest schedule: the weekly run is due (approval = \"required\")")
    review = received(EDITOR)
    assert "+approve-" in str(review["Reply-To"]) and len(mail.provider.inbox(READER)) == 2   # nothing sent yet

    # 4. the editor approves by replying from a phone: the edition goes, once, and to the blog as a post
    mail.send(reply(review, f"The Editor <{EDITOR}>", "Approve"))
    said("editor replies \"Approve\" from a phone")
    said("digest mailbox", digest(world, "mailbox"))
    edition = received(READER)
    assert edition["Subject"] == review["Subject"].removeprefix("[Review] ").strip() or \
        edition["Subject"] in review["Subject"]
    post = received(BLOG)
    assert len(mail.provider.inbox(BLOG)) == 1 and READER not in post.as_string()
    assert "/unsubscribe/" not in _html(post) and "mailto:" not in _html(post)
    said("digest mailbox (again)", digest(world, "mailbox"))
    assert len(mail.provider.inbox(READER)) == 3 and len(mail.provider.inbox(BLOG)) == 1      # nothing twice

    # 5. the reader leaves through the copy's List-Unsubscribe mailto (Gmail's button: an empty mail)
    target = re.search(r"<mailto:([^?>]+)\?subject=([^>]*)>", str(edition["List-Unsubscribe"]))
    assert target is not None and "+unsubscribe-" in target.group(1)
    leave = EmailMessage()
    leave["From"], leave["To"], leave["Subject"] = READER, target.group(1), target.group(2)
    leave["Message-ID"] = make_msgid(domain="example.net")
    leave.set_content("This message was automatically generated by Gmail.")
    mail.send(leave)
    said(f"reader presses Unsubscribe (a mail to {parseaddr(target.group(1))[1]})")
    said("digest mailbox", digest(world, "mailbox"))
    assert READER not in active(world)

    # the confirmation and the review as a phone shows them (390 px)
    SHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    for name, letter in (("confirmation", confirmation), ("review", review)):
        page.set_content(_html(letter))
        page.screenshot(path=str(SHOTS / f"mail-mode-{name}-390.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    page.close()
    out = SHOTS / "mail-mode-walk.txt"
    out.write_text("\n".join(log) + "\n", encoding="utf-8")
