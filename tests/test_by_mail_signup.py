"""Subscribe by mail, double opt-in by reply (issue 31, item 4): a mail to
`LOCAL+subscribe-LIST@DOMAIN` gets a confirmation in the edition's look whose Reply-To is
the request's tokened confirm address; a reply to it (or the mail its button opens)
subscribes the asker and the welcome goes once. Automatic mail is never answered and
never subscribes; the web form's limits hold (per mailbox, Gmail's dots folded); a
token that does not read, or comes too late, confirms nobody. The blog gets a mailto
sign-up and a snippet for it.

The mailbox is a Maildir read in-process (`read_mailbox`, and `digest mailbox` through
the CLI runner); what digest sends is the outbox's .eml files."""

from __future__ import annotations

import email
import email.policy
import html
import re
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from digest import actions, config
from digest.actions.by_mail.subscribe import subscribe
from digest.actions.inbox import Desk, Inbound, parse, read_mailbox
from digest.cli import cli
from digest.db.tables import mail_signups, subscribers
from digest.live import mail_checks
from digest.models import Reason, email_key
from digest.oneline import unsafe_characters
from digest.send.mailers import MailerError
from digest.send.signing import MAIL_CONFIRM, MAIL_UNSUBSCRIBE, address_token, read_address_token
from digest.signals.addresses import route
from digest.signals.bounces import message_key
from digest.web import create_app

from .support import smtp_server
from .support.processes import start_digest
from .support.smtp_server import free_port
from .support.world import World
from .test_email_look import ARTIFACTS

MAILBOX = "pickoftheweek@gmail.com"
NOW = datetime.now(UTC).replace(microsecond=0)      # `digest mailbox` reads at the real time
TOKEN = r"[0-9a-z]{1,7}-[a-z2-7]{12}"
CONFIRM_TO = re.compile(rf"pickoftheweek\+confirm-({TOKEN})@gmail\.com")


@dataclass
class Signups:
    """The sample world in mail mode: a [mailbox] address on a Maildir, base_url on this machine."""

    world: World
    maildir: Path

    @property
    def outbox(self) -> Path:
        return self.world.folder.parent / "demo" / "outbox"

    @property
    def key(self) -> str:
        return actions.signing_key(self.world.settings)

    def deliver(self, raw: bytes, name: str | None = None) -> str:
        """Into new/ as a delivery agent does it (tmp/, then renamed)."""
        name = name or uuid.uuid4().hex
        (self.maildir / "tmp" / name).write_bytes(raw)
        (self.maildir / "tmp" / name).replace(self.maildir / "new" / name)
        return name

    def read(self, now: datetime = NOW, dry_run: bool = False) -> list[tuple[str, str, str]]:
        """`digest mailbox` once, in this process: (kind, address, outcome) per new message."""
        report = read_mailbox(self.world.settings, self.world.db, now, dry_run)
        return [(line.kind, line.address, line.outcome) for line in report.lines]

    def letters(self, kind: str) -> list[EmailMessage]:
        """The outbox's letters of a kind (confirm, welcome), oldest first."""
        return [_message(path.read_bytes()) for path in sorted(self.outbox.glob(f"{kind}-*/*.eml"))]

    def flags(self) -> dict[str, str]:
        """Each message read, by its name: its Maildir flags (S read, F kept for the editor)."""
        return dict(path.name.split(":2,", 1) for path in (self.maildir / "cur").iterdir())

    def unread(self) -> list[str]:
        return sorted(path.name for path in (self.maildir / "new").iterdir())

    def rows(self) -> list[sa.Row]:
        with self.world.db.engine.connect() as db:
            return list(db.execute(sa.select(mail_signups).order_by(mail_signups.c.id)))

    def active(self, address: str) -> bool:
        return self.world.db.lists.is_active("weekly", address)

    def name(self, address: str) -> str:
        """The name weekly's subscribers row holds for address."""
        query = sa.select(subscribers.c.name).where(subscribers.c.list_name == "weekly",
                                                    subscribers.c.email_key == email_key(address))
        with self.world.db.engine.connect() as db:
            return db.execute(query).scalar_one()


def signups_world(tmp_path: Path, db_url: str, mailbox: dict | None = None, web: dict | None = None,
                  **sending: object) -> Signups:
    maildir = tmp_path / "mailbox"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    world = World(tmp_path, db_url, 2, **sending)  # type: ignore[arg-type]
    world.data["web"].update({"base_url": "http://localhost:8000", **(web or {})})
    world.data["mailbox"] = {"address": MAILBOX, "maildir": str(maildir), **(mailbox or {})}
    world.reload()
    return Signups(world, maildir)


@pytest.fixture
def made(tmp_path, db_url):
    """Mail mode on SQLite and on PostgreSQL."""
    found = signups_world(tmp_path, db_url)
    assert found.world.settings.mail_mode
    yield found
    found.world.close()


@pytest.fixture
def lite(tmp_path):
    """Mail mode on SQLite alone (the costlier tests: one database is enough for what they show)."""
    found = signups_world(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}")
    yield found
    found.world.close()


def _message(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def mail(sender: str, to: str, subject: str = "subscribe", body: str = "Please add me.",
         headers: dict[str, str] | None = None, html_only: bool = False, message_id: str | None = None) -> bytes:
    """A person's mail as it lands in the mailbox (the receiving server's Delivered-To naming
    the address it was sent to). html_only: one text/html part, quoted-printable."""
    message = EmailMessage()
    message["Return-Path"] = f"<{sender.rpartition('<')[2].rstrip('>') or sender}>"
    message["Delivered-To"] = to
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Thu, 2 Nov 2017 08:00:00 +0000"
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@mail.example.net>"
    for name, value in (headers or {}).items():
        del message[name]
        message[name] = value
    if html_only:
        message.set_content(f"<html><body><p>{html.escape(body)}</p><p>Envoy\u00e9 de mon t\u00e9l\u00e9phone "
                            "\u2014 yes \u2713</p></body></html>", subtype="html", cte="quoted-printable")
    else:
        message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


def ask(made: Signups, sender: str = "Ann Reader <ann@example.net>", **options: object) -> str:
    """A request to join weekly, delivered."""
    return made.deliver(mail(sender, "pickoftheweek+subscribe-weekly@gmail.com", **options))  # type: ignore[arg-type]


def reply(confirmation: EmailMessage, sender: str, body: str = "Yes please.", **options: object) -> bytes:
    """A mail app's reply to the confirmation: to its Reply-To, its subject after "Re: ",
    the confirmation quoted below."""
    quoted = "\n".join(f"> {line}" for line in confirmation.get_body(("plain",)).get_content().splitlines())
    return mail(sender, str(confirmation["Reply-To"]), f"Re: {confirmation['Subject']}",
                f"{body}\n\nOn Thu, 2 Nov 2017, digest wrote:\n{quoted}\n", **options)  # type: ignore[arg-type]


def mailto_parts(mailto: str) -> tuple[str, str]:
    parts = urlsplit(mailto)
    assert parts.scheme == "mailto", mailto
    return unquote(parts.path), parse_qs(parts.query).get("subject", [""])[0]


def the_mailto(confirmation: EmailMessage) -> str:
    """The confirm mailto the confirmation's button links to."""
    page = confirmation.get_body(("html",)).get_content()
    [found] = set(re.findall(r'href="(mailto:[^"]+)"', page))
    return html.unescape(found)


def sent_mailto(mailto: str, sender: str, body: str = "", **options: object) -> bytes:
    """The mail a mail app sends for a mailto: link, as is."""
    address, subject = mailto_parts(mailto)
    return mail(sender, address, subject, body, **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the way through

def test_a_reader_asks_by_mail_confirms_by_reply_and_is_welcomed_once(made: Signups):
    ask(made, "Ann Reader <ann@example.net>")
    result = CliRunner().invoke(cli, ["--config", str(made.world.config_path), "mailbox"])
    assert result.exit_code == 0, result.output
    assert re.search(r"subscribe\s+-\s+ann@example\.net\s+weekly\s+confirmation sent \(a reply confirms\)",
                     result.output), result.output
    assert not made.active("ann@example.net")                                   # double opt-in
    [confirmation] = made.letters("confirm")
    assert str(confirmation["To"]) == "ann@example.net"                          # no name a stranger chose
    assert str(confirmation["Subject"]) == f"Confirm your subscription to {made.world.weekly.title}"
    token = CONFIRM_TO.fullmatch(str(confirmation["Reply-To"])).group(1)
    [row] = made.rows()
    assert read_address_token(made.key, MAIL_CONFIRM, token) == row.id
    assert (row.email, row.name, row.email_key, row.confirmed_at) == ("ann@example.net", "Ann Reader",
                                                                     "ann@example.net", None)
    assert row.confirm_sent_at is not None
    assert confirmation["List-Unsubscribe"] is None                             # nobody is subscribed yet
    mailto = the_mailto(confirmation)
    assert mailto == f"mailto:pickoftheweek+confirm-{token}@gmail.com?subject=confirm"
    assert mailto in confirmation.get_body(("plain",)).get_content()
    assert "reply to this message" in confirmation.get_body(("plain",)).get_content()

    made.deliver(reply(confirmation, "Ann Reader <ann@example.net>"), "reply")
    assert made.read() == [("confirm", "ann@example.net", "subscribed; welcome sent")]
    assert made.active("ann@example.net")
    assert made.name("ann@example.net") == "Ann Reader"
    [welcome] = made.letters("welcome")
    assert str(welcome["To"]) == "Ann Reader <ann@example.net>" and str(welcome["Subject"]).startswith("Welcome")
    assert made.rows()[0].confirmed_at is not None

    made.deliver(sent_mailto(mailto, "ann@example.net"), "the button too")        # replayed: a new message
    made.deliver(reply(confirmation, "Ann Reader <ann@example.net>"), "again")
    assert made.read() == [("confirm", "ann@example.net", "confirmed before: nothing changed")] * 2
    assert len(made.letters("welcome")) == 1 and len(made.letters("confirm")) == 1
    assert sorted(made.flags().values()) == ["S"] * 4 and made.unread() == []


def test_the_button_confirms_and_a_reply_from_anyone_confirms_only_whom_the_token_names(made: Signups):
    ask(made, "Ann <ann@example.net>")
    ask(made, "Bob <bob@example.net>")
    made.read()
    letters = {str(m["To"]): m for m in made.letters("confirm")}
    ann, bob = letters["ann@example.net"], letters["bob@example.net"]
    assert ann["Reply-To"] != bob["Reply-To"]
    made.deliver(sent_mailto(the_mailto(ann), "Mallory <mallory@example.org>"), "forged from")
    assert made.read() == [("confirm", "ann@example.net", "subscribed; welcome sent")]
    assert made.active("ann@example.net") and not made.active("bob@example.net")
    assert not made.active("mallory@example.org")
    assert [str(m["To"]) for m in made.letters("welcome")] == ["Ann <ann@example.net>"]


def test_a_reply_after_the_confirmation_expired_confirms_nobody_and_is_kept(made: Signups):
    asked = ask(made)
    made.read()
    [confirmation] = made.letters("confirm")
    made.deliver(reply(confirmation, "ann@example.net"), "late")
    hours = made.world.settings.web.confirm_max_age_hours
    [(kind, address, outcome)] = made.read(NOW + timedelta(hours=hours, minutes=1))
    assert (kind, address) == ("confirm", "ann@example.net") and outcome.startswith("too late")
    assert "`digest subscribers add weekly ann@example.net`" in outcome
    assert not made.active("ann@example.net") and made.letters("welcome") == []
    assert made.flags() == {asked: "S", "late": "F"}


def test_an_unsubscribe_after_confirming_is_never_undone_by_another_reply(made: Signups):
    ask(made)
    made.read()
    [confirmation] = made.letters("confirm")
    made.deliver(reply(confirmation, "ann@example.net"))
    made.read()
    actions.unsubscribe(made.world.db, made.world.weekly, "ann@example.net", "one-click", NOW + timedelta(minutes=5))
    made.deliver(reply(confirmation, "ann@example.net"))
    assert made.read(NOW + timedelta(minutes=10)) == [("confirm", "ann@example.net",
                                                        "confirmed before: nothing changed")]
    assert not made.active("ann@example.net") and len(made.letters("welcome")) == 1


@pytest.mark.parametrize("wrong", ["no such row", "other purpose", "one letter changed", "another digest's"])
def test_a_token_that_does_not_read_confirms_nobody_and_is_kept(made: Signups, wrong: str):
    ask(made)
    made.read()
    [confirmation] = made.letters("confirm")
    token = CONFIRM_TO.fullmatch(str(confirmation["Reply-To"])).group(1)
    number = read_address_token(made.key, MAIL_CONFIRM, token)
    bad = {"no such row": address_token(made.key, MAIL_CONFIRM, number + 1),
           "other purpose": address_token(made.key, MAIL_UNSUBSCRIBE, number),
           "one letter changed": token[:-1] + ("a" if token[-1] != "a" else "b"),
           "another digest's": address_token("another-digest-secret-0123456789abcdef", MAIL_CONFIRM, number)}[wrong]
    name = made.deliver(mail("ann@example.net", f"pickoftheweek+confirm-{bad}@gmail.com", "confirm"))
    [(kind, _, outcome)] = made.read()
    assert kind == "confirm" and outcome.startswith("its token is not one of ours") and "kept" in outcome
    assert not made.active("ann@example.net") and made.flags()[name] == "F"
    assert made.letters("welcome") == [] and made.rows()[0].confirmed_at is None


# ------------------------------------------------------------------ never a mail loop

ROBOTS = {
    "Auto-Submitted": {"Auto-Submitted": "auto-replied"},
    "Precedence bulk": {"Precedence": "bulk"},
    "Precedence list": {"Precedence": "list"},
    "List-Id": {"List-Id": "Friends <friends.lists.example.org>"},
    "empty Return-Path": {"Return-Path": "<>"},
    "X-Autoreply": {"X-Autoreply": "yes"},
    "Outlook's": {"X-Auto-Response-Suppress": "All"},
    "out-of-office subject": {"Subject": "Out of office: back on Monday"},
    "a bounce's subject": {"Subject": "Undeliverable: Confirm your subscription"},
}


def test_automatic_mail_is_never_answered_and_never_subscribes_or_confirms(made: Signups):
    ask(made, "Ann <ann@example.net>")
    made.read()
    [confirmation] = made.letters("confirm")
    for n, (kind, headers) in enumerate(ROBOTS.items()):
        robot = f"robot{n}@example.net"
        made.deliver(mail(robot, "pickoftheweek+subscribe-weekly@gmail.com", headers=headers), f"ask {kind}")
        made.deliver(reply(confirmation, "ann@example.net", headers=headers), f"confirm {kind}")
    made.deliver(mail("MAILER-DAEMON@mx.example.net", "pickoftheweek+subscribe-weekly@gmail.com"), "daemon ask")
    made.deliver(reply(confirmation, "mailer-daemon@example.net"), "daemon confirm")
    made.deliver(_report(str(confirmation["Reply-To"])), "delivery report")
    lines = made.read()
    assert len(lines) == 2 * len(ROBOTS) + 3
    assert all(outcome.startswith("automatic mail (") for _, _, outcome in lines), lines
    assert all(" nothing answered" in outcome for kind, _, outcome in lines if kind == "subscribe")
    assert len(made.letters("confirm")) == 1 and made.letters("welcome") == []
    assert not made.active("ann@example.net") and made.rows()[0].confirmed_at is None
    assert len(made.rows()) == 1 and set(made.flags().values()) == {"S"}


def _report(to: str) -> bytes:
    """A delivery report (multipart/report) that lands on the confirm address."""
    message = EmailMessage()
    message["Delivered-To"] = to
    message["From"] = "Mail Delivery System <system@mx.example.net>"
    message["To"] = to
    message["Subject"] = "Delivery Status Notification"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mx.example.net>"
    message.set_content("The message could not be delivered.")
    message.make_mixed()
    message.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; boundary="b"')
    return message.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize("sender", [MAILBOX, "Pick of the Week <pick.of.the.week+x@googlemail.com>",
                                    "digest@example.org"])
def test_mail_from_our_own_addresses_is_never_answered(made: Signups, sender: str):
    ask(made, sender)
    [(_, _, outcome)] = made.read()
    assert outcome == "from our own address (a mail loop): nothing answered"
    assert made.letters("confirm") == [] and made.rows() == []


# ------------------------------------------------------------------ limits

def test_a_thousand_requests_from_one_sender_give_at_most_the_forms_limit(lite: Signups):
    spellings = ["victim@gmail.com", "v.ictim@gmail.com", "Victim+digest@gmail.com", "vic.tim@googlemail.com"]
    asks = [mail(f"Victim <{spelled}>", "pickoftheweek+subscribe-weekly@gmail.com", message_id="<ID@x>")
            for spelled in spellings]
    for n in range(1000):                                         # each its own Message-ID: its own request
        lite.deliver(asks[n % 4].replace(b"<ID@x>", f"<{n}@x>".encode()), f"{n:04d}")
    lines = lite.read()
    assert len(lines) == 1000
    sent = [line for line in lines if line[2] == "confirmation sent (a reply confirms)"]
    assert len(sent) == actions.PER_MAILBOX_HOUR == len(lite.letters("confirm"))
    assert {line[2] for line in lines} - {sent[0][2]} == {
        f"{actions.PER_MAILBOX_HOUR} confirmations went to this mailbox in the last hour: nothing more answered"}
    assert [r.email_key for r in lite.rows()] == ["victim@gmail.com"] * actions.PER_MAILBOX_HOUR   # no flood of rows
    assert lite.unread() == [] and set(lite.flags().values()) == {"S"}
    for n in range(4):                                           # an hour later: the day's limit
        lite.deliver(mail("v.i.c.t.i.m@gmail.com", "pickoftheweek+subscribe-weekly@gmail.com"), f"later{n}")
    later = lite.read(NOW + timedelta(minutes=61))
    assert [outcome for *_, outcome in later].count("confirmation sent (a reply confirms)") == \
        actions.PER_MAILBOX_DAY - actions.PER_MAILBOX_HOUR
    assert len(lite.letters("confirm")) == actions.PER_MAILBOX_DAY
    lite.deliver(mail("other@example.net", "pickoftheweek+subscribe-weekly@gmail.com"))
    assert lite.read(NOW + timedelta(minutes=62))[0][2] == "confirmation sent (a reply confirms)"   # others still


def test_gmail_spellings_of_one_mailbox_share_its_limit_and_other_lists_too(made: Signups):
    made.world.data["lists"].append({**made.world.data["lists"][0], "name": "monthly"})
    made.world.reload()
    for sender, to in [("a.n.n@gmail.com", "weekly"), ("ANN@googlemail.com", "monthly"), ("ann+x@gmail.com", "weekly"),
                       ("an.n@gmail.com", "monthly"), ("ann@gmail.com", "weekly")]:
        made.deliver(mail(sender, f"pickoftheweek+subscribe-{to}@gmail.com"))
    outcomes = [outcome for *_, outcome in made.read()]
    assert outcomes.count("confirmation sent (a reply confirms)") == actions.PER_MAILBOX_HOUR
    assert len(made.letters("confirm")) == actions.PER_MAILBOX_HOUR


GMAIL_RELAY = {"backend": "smtp", "smtp": {"host": "smtp.gmail.com", "port": 587, "security": "starttls",
                                           "username": MAILBOX}}


def spend(made: Signups, confirmations: int, at: datetime, who: str = "earlier") -> None:
    """That many confirmations sent at `at`, each to its own mailbox (through the store, as a read does)."""
    store = made.world.db.mail_signups
    for n in range(confirmations):
        address = f"{who}{n}@example{n}.net"
        store.confirmation_sent(store.record("weekly", address, address, "", f"<{who}{n}@x>", at).id, at)


@pytest.mark.parametrize(("relay", "provider", "a_day"), [
    ({"host": "smtp.gmail.com", "username": "pick@gmail.com"}, "Gmail", 50),           # 500 a day
    ({"host": "smtp.gmail.com", "username": "pick@onprobation-digest.org"}, "Google Workspace", 200),  # 2,000
    ({"host": "smtp-mail.outlook.com", "username": "pick@hotmail.com"}, "Outlook.com", 30),    # 300
    ({"host": "smtp.mail.me.com", "username": "pick@icloud.com"}, "iCloud Mail", 100),         # 1,000
    ({"host": "smtp.fastmail.com", "username": "pick@fastmail.com"}, "Fastmail", 200),         # none published
    ({"host": "127.0.0.1", "username": ""}, None, 200),                                       # not known
])
def test_the_days_confirmations_are_a_tenth_of_the_relays_daily_limit_and_200_at_most(relay, provider, a_day):
    settings = config.from_dict({"sending": {"backend": "smtp", "from": "Pick <pick@onprobation-digest.org>",
                                             "smtp": relay}})
    found = mail_checks.provider_of(settings)
    assert (found.name if found else None) == provider
    assert mail_checks.confirmations_a_day(settings) == a_day <= actions.SIGNUPS_AN_HOUR
    assert mail_checks.MOST_CONFIRMATIONS == actions.SIGNUPS_AN_HOUR


def test_a_request_the_days_budget_has_no_room_for_is_left_unread_and_a_later_read_answers_it(tmp_path, db_url):
    """Through Gmail (500 a day) 50 confirmations a day go in all: the 51st request, a real
    reader's, is neither answered nor lost nor flagged: it stays unread, and a read after
    the day's window has passed answers it. Sent two hours before, the 50 are not the hour's
    limit (200) at work. The relay is never reached (the test would fail on it)."""
    made = signups_world(tmp_path, db_url, **GMAIL_RELAY)  # type: ignore[arg-type]
    try:
        spend(made, 50, NOW - timedelta(hours=2))
        waiting = ask(made, "Real Reader <real@example.org>")
        said = "the day's 50 confirmations in all went in the last 24 hours"
        assert made.read() == [("subscribe", "real@example.org",
                                f"{said}: nothing answered yet; left unread, a later read answers it")]
        assert made.unread() == [waiting] and made.flags() == {} and made.letters("confirm") == []
        assert made.world.db.inbox.seen(message_key(parse(mail_bytes(made, waiting)), mail_bytes(made, waiting))) \
            is None
        assert made.read(NOW + timedelta(hours=21), dry_run=True) == [
            ("subscribe", "real@example.org", f"dry run: {said}: would leave it unread for a later read")]
        assert made.read(NOW + timedelta(hours=21))[0][2].startswith(said)                # still the same day
        assert made.unread() == [waiting] and made.flags() == {}
    finally:
        made.world.close()


def mail_bytes(made: Signups, name: str) -> bytes:
    return (made.maildir / "new" / name).read_bytes()


def test_a_waiting_request_is_answered_when_the_day_has_room_and_its_reply_works_from_then(lite: Signups):
    """No provider known (the outbox): 200 a day. The request that waited is answered once the
    200 are more than a day old; a reply works for confirm_max_age_hours from the confirmation,
    not from the request; a sender past its own mailbox's limit is read and dropped, as before."""
    spend(lite, actions.SIGNUPS_AN_HOUR, NOW - timedelta(hours=2))
    store = lite.world.db.mail_signups
    for n in range(actions.PER_MAILBOX_HOUR):                # an earlier flood's victim, at its own limit
        store.confirmation_sent(store.record("weekly", "victim@gmail.com", "victim@gmail.com", "", f"<v{n}@x>",
                                             NOW).id, NOW)
    lite.deliver(mail("Real Reader <real@example.org>", "pickoftheweek+subscribe-weekly@gmail.com"), "1-real")
    lite.deliver(mail("v.ictim@gmail.com", "pickoftheweek+subscribe-weekly@gmail.com"), "2-abuse")
    asked = NOW + timedelta(minutes=5)
    assert [outcome for *_, outcome in lite.read(asked)] == [
        "the day's 200 confirmations in all went in the last 24 hours: nothing answered yet; left unread, a later "
        "read answers it",
        "3 confirmations went to this mailbox in the last hour: nothing more answered"]
    assert lite.unread() == ["1-real"] and lite.flags() == {"2-abuse": "S"} and lite.letters("confirm") == []
    later = NOW + timedelta(hours=22, minutes=1)             # the 200 are more than a day old
    assert lite.read(later) == [("subscribe", "real@example.org", "confirmation sent (a reply confirms)")]
    assert lite.unread() == [] and lite.flags() == {"2-abuse": "S", "1-real": "S"}
    [row] = [r for r in lite.rows() if r.email == "real@example.org"]
    assert (row.asked_at, row.confirm_sent_at) == (asked, later)
    [confirmation] = lite.letters("confirm")
    lite.deliver(reply(confirmation, "real@example.org"))
    hours = lite.world.settings.web.confirm_max_age_hours    # past the request's hours, within the confirmation's
    assert lite.read(later + timedelta(hours=hours - 1)) == [("confirm", "real@example.org",
                                                              "subscribed; welcome sent")]


def test_a_request_that_waited_two_days_is_kept_for_the_editor(lite: Signups):
    """A flood that lasts: the request that waited 48 hours is flagged for the editor (nothing lost,
    nothing read again and again)."""
    spend(lite, actions.SIGNUPS_AN_HOUR, NOW)
    waiting = ask(lite, "Real Reader <real@example.org>")
    assert lite.read(NOW)[0][2].endswith("left unread, a later read answers it")
    spend(lite, actions.SIGNUPS_AN_HOUR, NOW + timedelta(hours=30), "next")    # the next day's spent as well
    [(_, _, outcome)] = lite.read(NOW + timedelta(hours=48))
    assert outcome.startswith("the day's 200 confirmations in all went in the last 24 hours, and it has waited "
                              "since ") and outcome.endswith("nothing answered; kept for you (flagged, unread)")
    assert lite.unread() == [] and lite.flags() == {waiting: "F"} and lite.letters("confirm") == []
    assert lite.read(NOW + timedelta(hours=49)) == []                                   # not read again


def test_every_message_of_one_read_gets_its_own_letter(made: Signups):
    """One read is one moment: two confirmations, and two welcomes, still two letters each."""
    for who in ("ann", "bob"):
        made.deliver(mail(f"{who}@example.net", "pickoftheweek+subscribe-weekly@gmail.com"))
    made.read()
    for confirmation in made.letters("confirm"):
        made.deliver(reply(confirmation, str(confirmation["To"])))
    assert [outcome for *_, outcome in made.read()] == ["subscribed; welcome sent"] * 2
    assert sorted(str(m["To"]) for m in made.letters("welcome")) == ["ann@example.net", "bob@example.net"]


# ------------------------------------------------------------------ what cannot be done

def test_a_list_there_is_not_is_kept_for_the_editor_and_nothing_answered(made: Signups):
    name = made.deliver(mail("ann@example.net", "pickoftheweek+subscribe-nosuchlist@gmail.com"))
    [(kind, _, outcome)] = made.read()
    assert kind == "subscribe" and outcome.startswith("asks for a list there is not (nosuchlist)")
    assert made.flags() == {name: "F"} and made.letters("confirm") == [] and made.rows() == []


def test_a_from_that_is_no_address_is_kept_and_a_bounced_address_gets_nothing(made: Signups):
    made.world.db.lists.suppress("gone@example.net", "weekly", Reason.BOUNCED, "550", NOW)
    bad = made.deliver(b"From: <not an address>\r\nDelivered-To: pickoftheweek+subscribe-weekly@gmail.com\r\n"
                       b"Subject: subscribe\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n")
    gone = ask(made, "gone@example.net")
    lines = made.read()
    assert [kind for kind, *_ in lines] == ["subscribe", "subscribe"]
    assert made.flags() == {bad: "F", gone: "F"} and made.letters("confirm") == []
    assert any("the address is bounced on this list" in outcome for *_, outcome in lines)


def test_html_only_and_quoted_printable_mails_ask_and_confirm(made: Signups):
    ask(made, "=?utf-8?q?Ren=C3=A9e_Lef=C3=A8vre?= <renee@example.fr>", html_only=True, body="Inscrivez-moi")
    made.read()
    [confirmation] = made.letters("confirm")
    made.deliver(reply(confirmation, "renee@example.fr", body="Oui \u2014 merci", html_only=True))
    assert made.read() == [("confirm", "renee@example.fr", "subscribed; welcome sent")]
    assert made.active("renee@example.fr")
    assert made.name("renee@example.fr") == "Ren\u00e9e Lef\u00e8vre"


def test_a_dry_run_changes_nothing_and_sends_nothing(made: Signups):
    ask(made)
    made.read()
    [confirmation] = made.letters("confirm")
    made.deliver(reply(confirmation, "ann@example.net"))
    ask(made, "bob@example.net")
    result = CliRunner().invoke(cli, ["--config", str(made.world.config_path), "mailbox", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert re.search(r"confirm\s+-\s+ann@example\.net\s+weekly\s+dry run: would subscribe and welcome", result.output)
    assert re.search(r"subscribe\s+-\s+bob@example\.net\s+weekly\s+dry run: would send a confirmation", result.output)
    assert "(dry run: nothing changed)" in result.output
    assert len(made.unread()) == 2 and len(made.rows()) == 1 and len(made.letters("confirm")) == 1
    assert not made.active("ann@example.net") and made.letters("welcome") == []


def test_read_again_after_a_crash_once_sent_sends_nothing_more(made: Signups):
    """The dispatcher applies, then records: a crash between them reads the message again;
    the request's row says its confirmation went."""
    raw = mail("ann@example.net", "pickoftheweek+subscribe-weekly@gmail.com")
    desk = Desk(made.world.settings, made.world.db, made.key, NOW)
    message = parse(raw)
    inbound = Inbound(raw, message, message_key(message, raw), route(message, made.world.settings.mailbox))
    assert subscribe(desk, inbound).outcome == "confirmation sent (a reply confirms)"
    again = subscribe(desk, inbound)
    assert again.outcome == "confirmation sent before: nothing more sent" and not again.kept
    assert len(made.rows()) == 1 and len(made.letters("confirm")) == 1


def test_over_smtp_a_relay_down_loses_nothing_and_a_refused_address_is_kept(tmp_path):
    """The confirmation on the wire (a real SMTP relay): its Reply-To and nothing to
    unsubscribe from. A relay that does not answer stops the read, the request stays
    unread and goes at the next read; one that refuses that one address leaves it flagged."""
    made = signups_world(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", backend="smtp",
                         smtp={"host": "127.0.0.1", "port": free_port()})
    try:
        waiting = ask(made, "Ann <ann@example.net>")
        with pytest.raises(MailerError, match="not reachable"):
            made.read()
        assert made.unread() == [waiting] and made.rows()[0].confirm_sent_at is None
        controller, recorder = smtp_server.start()
        recorder.on_address = lambda command, address: "550 5.1.1 no such user" if address.startswith("gone") \
            else None
        made.world.data["sending"]["smtp"]["port"] = controller.port
        made.world.reload()
        gone = ask(made, "gone@example.net")
        lines = made.read()
        controller.stop()
        assert sorted(outcome.partition(" (")[0] for *_, outcome in lines) == [
            "confirmation sent", "the relay did not take the confirmation"]
        assert made.flags() == {waiting: "S", gone: "F"}
        [wire] = recorder.messages
        assert recorder.received[0].rcpt_tos == ["ann@example.net"] and str(wire["To"]) == "ann@example.net"
        assert CONFIRM_TO.fullmatch(str(wire["Reply-To"])) and wire["List-Unsubscribe"] is None
        assert [r.confirm_sent_at is not None for r in made.rows()] == [True, False]
    finally:
        made.world.close()


def test_without_plus_addressing_the_token_travels_in_the_subject(tmp_path, db_url):
    made = signups_world(tmp_path, db_url, mailbox={"plus_addresses": False})
    try:
        made.deliver(mail("Ann <ann@example.net>", MAILBOX, "Re: subscribe weekly"))
        made.read()
        [confirmation] = made.letters("confirm")
        assert str(confirmation["Reply-To"]) == MAILBOX
        token = re.fullmatch(rf"Confirm your subscription to .+ \(confirm ({TOKEN})\)",
                             str(confirmation["Subject"])).group(1)
        assert the_mailto(confirmation) == f"mailto:{MAILBOX}?subject=confirm%20{token}"
        assert f"confirm {token}" in confirmation.get_body(("plain",)).get_content()
        made.deliver(reply(confirmation, "ann@example.net"))
        assert made.read() == [("confirm", "ann@example.net", "subscribed; welcome sent")]
        made.deliver(sent_mailto(the_mailto(confirmation), "ann@example.net"))
        assert made.read() == [("confirm", "ann@example.net", "confirmed before: nothing changed")]
        assert made.active("ann@example.net") and len(made.letters("welcome")) == 1
        assert actions.signup_mailto(made.world.settings, made.world.weekly) == \
            f"mailto:{MAILBOX}?subject=subscribe%20weekly"
    finally:
        made.world.close()


# ------------------------------------------------------------------ strangers' From

FROM_NAMES = st.one_of(
    st.text(max_size=120),
    st.sampled_from(["URGENT: verify your bank at http://evil.example", "Bob\r\nBcc: all@example.org",
                     '"quoted" <x@evil.example>', "=?utf-8?b?Qm9iDQpCY2M6IGFsbEBleGFtcGxlLm9yZw==?=",
                     "\u202eevil\u202c", "a" * 500, "<", "\x00\x07"]))
FROM_ADDRESSES = st.one_of(
    st.emails(),
    st.builds(lambda local, domain: f"{local}@{domain}", st.text(max_size=40), st.sampled_from(
        ["example.net", "gmail.com", "b\u00fccher.de", "x", "[127.0.0.1]", "exa mple.org"])),
    st.text(max_size=60))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=FROM_NAMES, address=FROM_ADDRESSES, raw=st.booleans())
def test_no_from_a_stranger_writes_breaks_the_reader_or_gets_into_a_header(lite: Signups, name, address, raw):
    header = f"{name} <{address}>" if raw or not address.isascii() else email.utils.formataddr((name, address))
    message_id = f"<{uuid.uuid4().hex}@h.example>"
    data = ("Delivered-To: pickoftheweek+subscribe-weekly@gmail.com\r\nFrom: " + header.replace("\r\n", " ")
            + f"\r\nSubject: subscribe\r\nMessage-ID: {message_id}\r\n\r\nhi\r\n").encode("utf-8", "surrogateescape")
    before = set(lite.outbox.glob("confirm-*/*.eml"))
    message = parse(data)
    found = route(message, lite.world.settings.mailbox) if message is not None else None
    if found is None:                        # the email package could not take it apart: a bounce's business
        return
    handled = subscribe(Desk(lite.world.settings, lite.world.db, lite.key, datetime.now(UTC)),
                        Inbound(data, message, message_key(message, data), found))
    written = set(lite.outbox.glob("confirm-*/*.eml")) - before
    event(handled.outcome.partition("(")[0])
    if handled.outcome != "confirmation sent (a reply confirms)":
        assert not written
        return
    [path] = written
    sent = email.message_from_string(path.read_bytes().decode("utf-8"), policy=email.policy.default)   # SMTPUTF8
    to = sent["To"].addresses
    assert len(to) == 1 and to[0].display_name == "" and email_key(to[0].addr_spec) == email_key(handled.address)
    assert sent["Bcc"] is None and sent["Cc"] is None and CONFIRM_TO.fullmatch(str(sent["Reply-To"]))
    row = next(r for r in lite.rows() if r.message_id == message_key(message, data))
    assert not unsafe_characters(row.name) and len(row.name) <= 100 and row.name == row.name.strip()


# ------------------------------------------------------------------ the blog's sign-up

def test_the_embed_page_offers_the_mailto_signup_instead_of_the_form_in_mail_mode(made: Signups):
    page = create_app(made.world.settings, made.world.db).test_client().get("/subscribe/weekly/embed")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="snippet"' not in text and "/from-blog" not in text
    shown = html.unescape(re.search(r'<textarea[^>]*id="snippet-by-mail"[^>]*>(.*?)</textarea>', text,
                                    re.DOTALL).group(1))
    assert shown == actions.signup_snippet(made.world.settings, made.world.weekly)
    assert 'href="mailto:pickoftheweek+subscribe-weekly@gmail.com?subject=subscribe"' in shown
    assert "HTML/JavaScript" in text and "Custom HTML" in text
    address, subject = mailto_parts(actions.signup_mailto(made.world.settings, made.world.weekly))
    made.deliver(mail("Ann <ann@example.net>", address, subject))          # the mail the link opens
    assert made.read() == [("subscribe", "ann@example.net", "confirmation sent (a reply confirms)")]


def test_with_a_public_address_the_form_and_the_mailto_stand_side_by_side(tmp_path):
    made = signups_world(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}",
                         web={"base_url": "https://digest.onprobation-digest.org"})
    try:
        assert not made.world.settings.mail_mode
        text = create_app(made.world.settings, made.world.db).test_client().get(
            "/subscribe/weekly/embed").get_data(as_text=True)
        assert 'id="snippet"' in text and 'id="snippet-by-mail"' in text
        assert "https://digest.onprobation-digest.org/subscribe/weekly/from-blog" in html.unescape(text)
    finally:
        made.world.close()


def test_the_snippet_escapes_what_the_config_says(made: Signups):
    made.world.data["lists"][0].update({"title": 'Pick <script>alert(1)</script> & "co"',
                                        "description": "One <b>email</b> a week & more"})
    made.world.reload()
    snippet = actions.signup_snippet(made.world.settings, made.world.weekly)
    assert "<script>" not in snippet and "<b>" not in snippet
    assert "Pick &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;co&#34;" in snippet
    assert snippet.count("<a ") == 1 and snippet.count("href=") == 1


# ------------------------------------------------------------------ in a real browser

def test_the_confirmation_fits_a_phone_and_shows_its_confirm_button(lite: Signups, browser):
    ask(lite)
    lite.read()
    [confirmation] = lite.letters("confirm")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_content(confirmation.get_body(("html",)).get_content(), wait_until="load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    button = page.locator(f'a[href="{the_mailto(confirmation)}"]').first
    assert button.is_visible() and button.inner_text() == "Yes, subscribe me"
    assert button.bounding_box()["height"] >= 44
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "confirm-by-mail-390.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_two_mailbox_reads_at_once_send_each_confirmation_once(tmp_path, db_url):
    """The scheduler's read and one by hand, as two real processes started together: one
    reads, the other is refused in one line (or finds nothing left); each request gets one
    confirmation on the wire, and none is lost."""
    controller, recorder = smtp_server.start()
    made = signups_world(tmp_path, db_url, backend="smtp", smtp={"host": "127.0.0.1", "port": controller.port})
    try:
        asked = [ask(made, f"Reader {n} <reader{n}@example{n}.net>") for n in range(12)]
        command = ["--config", str(made.world.config_path), "mailbox"]
        both = [start_digest(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        said = [process.communicate(timeout=120) for process in both]
        codes = sorted(process.returncode for process in both)
        assert codes in ([0, 0], [0, 1]), said
        refused = [err for (_, err), process in zip(said, both, strict=True) if process.returncode == 1]
        assert all(err.strip().splitlines() == [err.strip()] and "mailbox is already running" in err
                   for err in refused), refused
        assert sorted(recorder.recipients()) == sorted(f"reader{n}@example{n}.net" for n in range(12))
        assert made.unread() == [] and sorted(made.flags()) == sorted(asked)
        assert all(row.confirm_sent_at is not None for row in made.rows()) and len(made.rows()) == 12
    finally:
        controller.stop()
        made.world.close()


@pytest.mark.parametrize("message_id", ["<", "<a@[>", '<"?]<,.@"\t@['])
def test_a_message_id_the_email_package_breaks_on_stops_nothing(made, message_id):
    """A stranger's `Message-ID: <` broke the email package's parser and stopped every read
    after it; read raw, it is a key like any other and the rest of the mailbox is read."""
    raw = (f"From: Ann <ann@example.net>\r\nTo: pickoftheweek+subscribe-weekly@gmail.com\r\n"
           f"Message-ID: {message_id}\r\nSubject: subscribe\r\n\r\nplease\r\n").encode()
    made.deliver(raw, "0001")
    made.deliver(mail("Bob <bob@example.net>", "pickoftheweek+subscribe-weekly@gmail.com"), "0002")
    result = CliRunner().invoke(cli, ["--config", str(made.world.config_path), "mailbox"])
    assert result.exit_code == 0, result.output
    assert made.unread() == [] and len(made.letters("confirm")) == 2


HEADERS = st.sampled_from(["From", "To", "Cc", "Subject", "Message-ID", "Content-Type", "Content-Disposition",
                           "Content-Transfer-Encoding", "Auto-Submitted", "Precedence", "Return-Path", "Reply-To",
                           "Authentication-Results", "In-Reply-To", "MIME-Version"])


TRICKY = ["<", "<a@[>", "a;\x00*", "a; b*=''", "=?utf-8?q?=?=", "(", '"', "multipart/mixed; boundary=", ">", "<>",
          "text/plain; charset=utf-7", "x@y@z", "=?x?b?====?="]      # values the email package has broken on


@given(kind=st.sampled_from(["subscribe-weekly", "confirm-1-aaaaaaaaaaaa", "unsubscribe-1-aaaaaaaaaaaa",
                             "approve-1-aaaaaaaaaaaa"]),
       headers=st.lists(st.tuples(HEADERS, st.one_of(st.text(max_size=80), st.sampled_from(TRICKY))), max_size=8),
       body=st.binary(max_size=400))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_a_stranger_writes_to_a_plus_address_is_read_or_kept_never_a_traceback(lite, kind, headers, body):
    """Every message ends read or flagged for the editor; the read never stops on one."""
    head = "".join(f"{name}: {''.join(c for c in value if c not in chr(13) + chr(10))}\r\n" for name, value in headers)
    raw = f"Delivered-To: pickoftheweek+{kind}@gmail.com\r\n{head}\r\n".encode("utf-8", "surrogateescape") + body
    lite.deliver(raw)
    lite.read()
    assert lite.unread() == []
