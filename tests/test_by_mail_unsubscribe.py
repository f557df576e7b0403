"""Unsubscribe by mail (issue 31, item 3): every reader mail carries a List-Unsubscribe
mailto naming its reader by a sealed token; the mail a reader (or Gmail's unsubscribe
button) sends to it takes that reader off that list, whatever its From says, once, and
nothing is ever sent back. A mail without a valid token unsubscribes nobody and stays
flagged for the editor with the command that applies it. In mail mode a send to real
readers is no longer refused for a base_url nobody outside can reach.

The copies are the ones an edition really sent (the outbox's .eml files, an SMTP sink,
the SendGrid stand-in); the mailbox is a Maildir read by `digest mailbox`."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import actions, config
from digest.actions.by_mail.unsubscribe import handle, plain_request
from digest.actions.inbox import Desk, Inbound, read_mailbox
from digest.cli import cli
from digest.db.tables import mail_messages, suppressions
from digest.models import Origin
from digest.send.mailers import make_mailer
from digest.send.message import recipient, unsubscribe_mailto
from digest.send.readiness import NotReady, check_ready_for_a_test, check_ready_to_send
from digest.send.signing import MAIL_APPROVE, MAIL_UNSUBSCRIBE, address_token, read_address_token, secret_key
from digest.signals.addresses import Route, route
from digest.signals.mailbox import MailboxError

from .support import smtp_server
from .support.sendgrid_server import SendGridStandIn
from .support.unsubscribe_mail import (
    MAILBOX,
    MailWorld,
    answer,
    list_unsubscribe_mailto,
    mail_world,
    mailto_parts,
)
from .support.world import World
from .test_spam_score import score, spamassassin  # noqa: F401 - the fixture

TOKENED = re.compile(r"mailto:pickoftheweek\+unsubscribe-([0-9a-z]{1,7}-[a-z2-7]{12})@gmail\.com\?subject=unsubscribe")


@pytest.fixture
def made(tmp_path, db_url):
    """Mail mode with the outbox: the sample week's edition sent to four readers."""
    world = mail_world(tmp_path, db_url)
    actions.send_edition(world.world.settings, world.world.db, world.world.weekly, world.world.since,
                         world.world.until)
    yield world
    world.world.close()


def reader(n: int) -> str:
    return f"reader{n:05d}@example.org"


def run(world: World, *args: str):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])


def suppressed(world: World) -> dict[str, str]:
    with world.db.engine.connect() as db:
        return {row.email_key: row.reason for row in db.execute(sa.select(suppressions))}


def recorded(world: World) -> list[tuple[str, bool]]:
    with world.db.engine.connect() as db:
        return sorted((row.kind, row.kept) for row in db.execute(sa.select(mail_messages)))


def subscriber_id(world: World, address: str) -> int:
    found = world.db.lists.subscriber_id("weekly", address)
    assert found is not None
    return found


# ------------------------------------------------------------------ a reader leaves by mail

def test_a_reader_leaves_by_sending_the_mail_their_copy_offers_whatever_its_from(made: MailWorld):
    world, copies = made.world, made.copies()
    sent_before = sorted(made.outbox.rglob("*.eml"))
    own = list_unsubscribe_mailto(copies[reader(1)])
    assert TOKENED.fullmatch(own), own
    forged = list_unsubscribe_mailto(copies[reader(2)])
    made.deliver(answer(own, reader(1)), "1.own")
    made.deliver(answer(forged, "Someone Else <prankster@example.net>", body="<b>keep me subscribed!</b>"),
                 "2.forged-from")
    result = run(world, "mailbox")
    assert result.exit_code == 0, result.output
    assert re.search(rf"unsubscribe\s+-\s+{re.escape(reader(1))}\s+weekly\s+unsubscribed", result.output)
    assert re.search(rf"unsubscribe\s+-\s+{re.escape(reader(2))}\s+weekly\s+unsubscribed", result.output)
    assert result.output.splitlines()[-1] == f"mailbox {made.maildir}: 2 new message(s): unsubscribe 2"
    assert suppressed(world) == {reader(1): "unsubscribed", reader(2): "unsubscribed"}
    assert not world.db.lists.is_active("weekly", reader(1)) and world.db.lists.is_active("weekly", reader(0))
    assert made.flags() == {"1.own": "S", "2.forged-from": "S"} and made.unread() == []
    assert sorted(made.outbox.rglob("*.eml")) == sent_before                  # no reply, ever
    assert recorded(world) == [("unsubscribe", False), ("unsubscribe", False)]
    with world.db.engine.connect() as db:                                     # the one-click link's suppression
        assert {row.detail for row in db.execute(sa.select(suppressions))} == {"by mail"}


def test_the_footer_offers_the_same_mailto_and_the_next_edition_skips_who_left(made: MailWorld):
    world = made.world
    copy = made.copies()[reader(3)]
    mailto = list_unsubscribe_mailto(copy)
    html, text = copy.get_body(("html",)).get_content(), copy.get_body(("plain",)).get_content()
    assert f'<a href="{mailto}"' in html and f"Unsubscribe: {mailto}" in text
    assert "http://localhost:8000/unsubscribe/" not in html + text + str(copy["List-Unsubscribe"])
    made.deliver(answer(mailto, reader(3)), "3.footer")
    assert run(world, "mailbox").exit_code == 0
    before = set(made.outbox.rglob("*.eml"))
    assert run(world, "send", "weekly", "--since", "2017-10-26", "--until", "2017-11-02", "--yes").exit_code == 0
    newest = set(made.outbox.rglob("*.eml")) - before
    assert len(newest) == 3 and reader(3) not in "".join(path.read_text(encoding="utf-8") for path in newest)


def test_replaying_the_mail_changes_nothing(made: MailWorld):
    world = made.world
    mailto = list_unsubscribe_mailto(made.copies()[reader(0)])
    raw = answer(mailto, reader(0), message_id="<replayed@mail.gmail.com>")
    made.deliver(raw, "1.first")
    assert run(world, "mailbox").exit_code == 0
    with world.db.engine.connect() as db:
        first = db.execute(sa.select(suppressions)).all()
    made.deliver(raw, "2.same-message-again")                                # the same message, delivered twice
    made.deliver(answer(mailto, "attacker@example.net"), "3.same-token-new-message")
    second = run(world, "mailbox")
    assert second.exit_code == 0, second.output
    assert "1 message(s) recorded before and now marked read" in second.output
    assert re.search(rf"{re.escape(reader(0))}\s+weekly\s+already off the list \(unsubscribed\): nothing changed",
                     second.output)
    with world.db.engine.connect() as db:
        assert db.execute(sa.select(suppressions)).all() == first             # the same row, the same moment
    assert made.unread() == [] and set(made.flags().values()) == {"S"}


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(made: MailWorld):
    mailto = list_unsubscribe_mailto(made.copies()[reader(1)])
    made.deliver(answer(mailto, reader(1)), "1.unsubscribe")
    made.deliver(answer(mailto, reader(1), to=MAILBOX, subject="Unsubscribe"), "2.plain")
    result = run(made.world, "mailbox", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: would unsubscribe" in result.output and "dry run: would keep it for you" in result.output
    assert "(dry run: nothing changed)" in result.output
    assert suppressed(made.world) == {} and recorded(made.world) == [] and made.unread() == ["1.unsubscribe",
                                                                                             "2.plain"]


def test_without_plus_addressing_the_token_travels_in_the_subject(tmp_path, db_url):
    made = mail_world(tmp_path, db_url, mailbox={"plus_addresses": False})
    world = made.world
    try:
        actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        mailto = list_unsubscribe_mailto(made.copies()[reader(2)])
        address, subject = mailto_parts(mailto)
        assert address == MAILBOX and re.fullmatch(r"unsubscribe [0-9a-z]{1,7}-[a-z2-7]{12}", subject)
        made.deliver(answer(mailto, "forged@example.net"), "1.subject")
        made.deliver(answer(mailto, reader(3), subject=f"Re: {subject.upper()}"), "2.reply-upper-case")
        result = run(world, "mailbox")
        assert result.exit_code == 0, result.output
        assert suppressed(world) == {reader(2): "unsubscribed"}
        assert made.flags() == {"1.subject": "S", "2.reply-upper-case": "S"}
    finally:
        world.close()


# ------------------------------------------------------------------ no valid token: nobody leaves

def test_a_token_that_does_not_read_unsubscribes_nobody_and_is_kept_for_the_editor(made: MailWorld):
    world, key = made.world, secret_key(made.world.settings.send_settings())
    number = subscriber_id(world, reader(1))
    genuine = address_token(key, MAIL_UNSUBSCRIBE, number)
    bad = {
        "forged": f"{number:x}-{'a' * 12}",                                          # the right shape, no MAC
        "other-instance": address_token("another digest's secret, long enough 0123456789", MAIL_UNSUBSCRIBE,
                                        number),
        "other-purpose": address_token(key, MAIL_APPROVE, number),
        "another-reader": genuine.split("-")[0] + "-" + address_token(key, MAIL_UNSUBSCRIBE, number + 1)
        .split("-")[1],
        "cut": genuine[:-3],
    }
    for name, token in bad.items():
        made.deliver(answer(f"mailto:pickoftheweek+unsubscribe-{token}@gmail.com?subject=unsubscribe", reader(1)),
                     name)
    result = run(world, "mailbox")
    assert result.exit_code == 0, result.output
    assert suppressed(world) == {}
    assert made.flags() == {name: "F" for name in bad} and made.unread() == []
    assert result.output.count("its token is not one of ours (forged, cut, or another digest's): nobody "
                               "unsubscribed; kept for you") == 4
    assert result.output.count("a plain unsubscribe with no token of ours") == 1     # the cut one reads as none
    assert result.output.count(f"run `digest subscribers remove weekly {reader(1)}`") == 5
    assert recorded(world) == [("unsubscribe", True)] * 5


def test_a_plain_unsubscribe_is_kept_with_the_one_command_that_applies_it(made: MailWorld):
    world = made.world
    made.deliver(answer(f"mailto:{MAILBOX}?subject=unsubscribe", f"Reader One <{reader(1)}>", body="unsubscribe"),
                 "1.plain")
    made.deliver(answer(f"mailto:{MAILBOX}?subject=Re:%20Unsubscribe%20me", "stranger@example.net"), "2.stranger")
    made.deliver(answer(f"mailto:{MAILBOX}?subject=unsubscribe", reader(2)).replace(
        b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:"), "3.robot")
    made.deliver(answer(f"mailto:{MAILBOX}?subject=UNSUBSCRIBE", "Reader Three <READER00003@Example.ORG>"),
                 "4.shouting")
    result = run(world, "mailbox")
    assert result.exit_code == 0, result.output
    assert suppressed(world) == {}
    line = next(line for line in result.output.splitlines() if reader(1) in line)
    assert "a plain unsubscribe with no token of ours: nobody unsubscribed; kept for you (flagged, unread); " \
           "anyone can write its From; if reader00001@example.org asked, run " \
           "`digest subscribers remove weekly reader00001@example.org`" in line
    assert "its From is on no list" in result.output
    assert re.search(rf"auto-reply\s+-\s+{re.escape(reader(2))}.*change nothing", result.output)   # not a request
    assert "run `digest subscribers remove weekly reader00003@example.org`" in result.output    # as the list has it
    assert made.flags() == {"1.plain": "F", "2.stranger": "F", "3.robot": "S", "4.shouting": "F"}
    command = re.search(r"`digest (subscribers remove weekly \S+)`", line).group(1).split()
    assert run(world, *command).exit_code == 0                                # the one command
    assert suppressed(world) == {reader(1): "removed"}


def test_the_editors_desk_lists_a_plain_unsubscribe_with_one_click_to_apply_it(made: MailWorld, monkeypatch):
    """One click on the dashboard (the desk runs on the editor's own machine in mail mode)."""
    from digest.web import create_app
    world = made.world
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", "a-desk-password-for-this-test")
    made.deliver(answer(f"mailto:{MAILBOX}?subject=unsubscribe", f"Reader One <{reader(1)}>"), "1.plain")
    made.deliver(answer(f"mailto:{MAILBOX}?subject=unsubscribe", "stranger@example.net"), "2.stranger")
    assert run(world, "mailbox").exit_code == 0 and suppressed(world) == {}
    client = create_app(world.settings, world.db).test_client()
    login = client.get("/editor/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', login).group(1)
    assert client.post("/editor/login", data={"csrf": csrf, "password": "a-desk-password-for-this-test"}
                       ).status_code == 303
    home = client.get("/editor/").get_data(as_text=True)
    assert f'data-asked="{reader(1)}"' in home and "stranger@example.net" not in home      # only who is on a list
    csrf = re.search(r'name="csrf" value="([^"]+)"', home).group(1)
    done = client.post("/editor/weekly/subscribers/remove", data={"csrf": csrf, "email": reader(1)})
    assert done.status_code == 303 and suppressed(world) == {reader(1): "removed"}
    assert "Asked to leave by mail" not in client.get("/editor/").get_data(as_text=True)    # done: gone from the list


def test_an_imap_server_that_drops_mid_read_loses_nothing_and_reads_nothing_twice(made: MailWorld, dovecot,
                                                                                    monkeypatch):
    """The connection dies after the first of three requests: that one stays applied and
    marked; the read stops with one line; the next read applies the other two, once."""
    world = made.world
    world.data["mailbox"] = {"address": MAILBOX, "imap_host": "127.0.0.1", "imap_port": dovecot.port,
                             "imap_user": dovecot.user, "imap_ca_file": str(dovecot.pki.ca)}
    world.reload()
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", dovecot.password)
    copies = made.copies()                                   # the edition the fixture sent

    for n in range(3):
        dovecot.deliver(answer(list_unsubscribe_mailto(copies[reader(n)]), reader(n)), f"{n}.leave")

    def cut(number: int) -> None:
        if number == 1:
            dovecot.restart()
    with pytest.raises(MailboxError, match="the connection failed while reading"):
        read_mailbox(world.settings, world.db, datetime.now(UTC), progress=cut)
    assert suppressed(world) == {reader(0): "unsubscribed"}
    again = read_mailbox(world.settings, world.db, datetime.now(UTC))
    assert [line.address for line in again.lines] == [reader(1), reader(2)] and again.already == 0
    assert suppressed(world) == {reader(n): "unsubscribed" for n in range(3)}
    assert recorded(world) == [("unsubscribe", False)] * 3
    assert read_mailbox(world.settings, world.db, datetime.now(UTC)).lines == []


def test_a_copy_without_a_subscriber_row_names_nobody(made: MailWorld):
    """A test copy (no subscribers row) carries the same kind of address; it leads nowhere."""
    world = made.world
    to = recipient(world.settings.send_settings(), key=secret_key(world.settings.send_settings()),
                   list_name="weekly", delivery_id=0, email="editor@example.net", email_key="editor@example.net")
    mailto = to.values["unsubscribe_url"]
    assert TOKENED.fullmatch(mailto) and to.headers == {"List-Unsubscribe": f"<{mailto}>"}
    made.deliver(answer(mailto, "editor@example.net"), "1.test-copy")
    result = run(world, "mailbox")
    assert "its address names no subscriber (a test copy's): nothing to do" in result.output
    assert suppressed(world) == {} and made.flags() == {"1.test-copy": "S"}


# ------------------------------------------------------------------ the headers on the wire

@pytest.mark.parametrize("backend", ["smtp", "sendgrid"])
@pytest.mark.parametrize("public", [False, True], ids=["mail-mode", "public"])
def test_every_mailer_carries_the_mailto_and_the_https_link_only_where_it_is_public(tmp_path, monkeypatch,
                                                                                    backend, public):
    base = "https://digest.onprobation-digest.org" if public else "http://192.168.1.20:8000"
    smtp = sendgrid = None
    if backend == "smtp":
        smtp = smtp_server.start()
        options = {"smtp": {"host": "127.0.0.1", "port": smtp[0].port}}
    else:
        sendgrid = SendGridStandIn()
        monkeypatch.setenv("SENDGRID_API_KEY", sendgrid.api_key)
        options = {"sendgrid": {"host": sendgrid.host}}
    made = mail_world(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2, web={"base_url": base}, backend=backend,
                      **options)
    world = made.world
    try:
        assert world.settings.mail_mode is not public
        report = actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        assert report.counts == {"accepted": 2}
        headers, footer = _sent(smtp, sendgrid, reader(1))
        listed = [item.strip() for item in headers["List-Unsubscribe"].split(",")]
        mailto = next(item.strip("<>") for item in listed if item.startswith("<mailto:"))
        assert TOKENED.fullmatch(mailto)
        number = read_address_token(secret_key(world.settings.send_settings()), MAIL_UNSUBSCRIBE,
                                    TOKENED.fullmatch(mailto).group(1))
        assert number == subscriber_id(world, reader(1))
        if public:
            assert listed[0].startswith(f"<{base}/unsubscribe/") and len(listed) == 2
            assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert footer == listed[0].strip("<>")
        else:
            assert listed == [f"<{mailto}>"] and "List-Unsubscribe-Post" not in headers
            assert footer == mailto
    finally:
        world.close()
        if smtp is not None:
            smtp[0].stop()
        if sendgrid is not None:
            sendgrid.stop()


def _sent(smtp, sendgrid, address: str) -> tuple[dict[str, str], str]:
    """(the List-Unsubscribe headers, the footer's unsubscribe address) of the copy to address."""
    if smtp is not None:
        message = next(m for m in smtp[1].messages if m["To"].addresses[0].addr_spec == address)
        html = message.get_body(("html",)).get_content()
        footer = re.search(r'<a href="([^"]+)"[^>]*>Unsubscribe</a>', html).group(1)
        return {k: str(v) for k, v in message.items() if k.startswith("List-Unsubscribe")}, footer.replace("&amp;", "&")
    person = next(p for p in sendgrid.accepted if p["to"][0]["email"] == address)
    footer = next(value for value in person["substitutions"].values() if value.startswith(("mailto:", "http")))
    return person["headers"], footer


def test_a_copy_in_mail_mode_still_scores_nothing(tmp_path, spamassassin):  # noqa: F811
    """SpamAssassin (as tests/test_spam_score.py runs it) on a copy whose only unsubscribe is the mailto."""
    made = mail_world(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1)
    try:
        actions.send_edition(made.world.settings, made.world.db, made.world.weekly, made.world.since,
                             made.world.until)
        [sent] = made.outbox.glob("weekly-*/*.eml")
        assert b"List-Unsubscribe: <mailto:pickoftheweek+unsubscribe-" in sent.read_bytes()
        points, rules = score(spamassassin, sent.read_bytes())
    finally:
        made.world.close()
    assert points <= 0.0, rules


def test_the_welcome_letter_carries_the_mailto_of_its_reader(made: MailWorld):
    world = made.world
    now = datetime(2017, 11, 2, 9, tzinfo=UTC)
    actions.add_subscriber(world.settings, world.db, world.weekly, "new.reader@example.net", "New Reader",
                           Origin.WEB, now)
    key = secret_key(world.settings.send_settings())
    assert actions.send_welcome(world.settings, world.db, make_mailer(world.settings.send_settings()), key,
                                world.weekly, "new.reader@example.net", "New Reader", now)
    [welcome] = made.copies("welcome-*/*.eml").values()
    mailto = list_unsubscribe_mailto(welcome)
    assert str(welcome["List-Unsubscribe"]) == f"<{mailto}>" and welcome["List-Unsubscribe-Post"] is None
    assert mailto in welcome.get_body(("html",)).get_content()
    made.deliver(answer(mailto, "new.reader@example.net"), "1.welcome")
    assert run(world, "mailbox").exit_code == 0
    assert suppressed(world) == {"new.reader@example.net": "unsubscribed"}


# ------------------------------------------------------------------ readiness

def test_a_send_to_real_readers_is_no_longer_refused_for_a_local_base_url_in_mail_mode(tmp_path):
    smtp = smtp_server.start()
    try:
        made = mail_world(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2, backend="smtp",
                          smtp={"host": "127.0.0.1", "port": smtp[0].port})
        world = made.world
        check_ready_to_send(world.settings.send_settings())                     # mail mode: ready
        assert check_ready_for_a_test(world.settings.send_settings()) == []
        sent = run(world, "send", "weekly", "--since", "2017-10-25", "--until", "2017-11-01", "--yes")
        assert sent.exit_code == 0, sent.output
        assert sorted(smtp[1].recipients()) == [reader(0), reader(1)]

        del world.data["mailbox"]["maildir"]                                    # nothing would read the mailbox
        world.reload()
        with pytest.raises(NotReady, match=r"\[mailbox\]: readers unsubscribe by mail to pickoftheweek@gmail\.com, "
                                           r"but no mailbox is read; set \[mailbox\] imap_host"):
            check_ready_to_send(world.settings.send_settings())
        assert "no mailbox is read" in check_ready_for_a_test(world.settings.send_settings())[0]

        del world.data["mailbox"]                                               # no mail mode: as before
        world.reload()
        with pytest.raises(NotReady, match=r"\[web\].base_url: http://localhost:8000 is a local address"):
            check_ready_to_send(world.settings.send_settings())

        world.data["mailbox"] = {"address": MAILBOX, "maildir": str(made.maildir)}
        world.data["sending"]["from"] = "Digest <digest@example.org>"           # the other checks stay
        world.reload()
        with pytest.raises(NotReady, match=r"\[sending\].from"):
            check_ready_to_send(world.settings.send_settings())
        world.data["sending"]["from"] = "On Probation digest <digest@onprobation-digest.org>"
        world.data["web"]["secret_key_env"] = "DIGEST_NO_SUCH_SECRET_SET"
        world.reload()
        with pytest.raises(NotReady, match=r"\[web\].secret_key_env: DIGEST_NO_SUCH_SECRET_SET is not set"):
            check_ready_to_send(world.settings.send_settings())
        world.close()
    finally:
        smtp[0].stop()


# ------------------------------------------------------------------ strangers' input

TOKENISH = st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz-ABCZ=_.+", min_size=0, max_size=30)


SENDERS = st.one_of(st.text(max_size=120), st.sampled_from([
    "Reader One <reader00001@example.org>", "reader00001@example.org", "READER00001@EXAMPLE.ORG", "<", "a<b",
    '"x; rm -rf ~"@example.org', "=?utf-8?q?reader00001=40example.org?= <x@y>", "reader00001@example.org\u2028"]))
SUBJECTS = st.one_of(st.text(max_size=200), st.sampled_from(["unsubscribe", "Re: Fwd: UNSUBSCRIBE me", "unsubscribe "
                                                             "0-aaaaaaaaaaaa", "=?utf-8?b?dW5zdWJzY3JpYmU=?="]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=TOKENISH, subject=SUBJECTS, sender=SENDERS)
def test_no_token_a_stranger_can_write_unsubscribes_anyone(made: MailWorld, token: str, subject: str,
                                                           sender: str):
    world = made.world
    key = secret_key(world.settings.send_settings())
    if read_address_token(key, MAIL_UNSUBSCRIBE, token) is not None:    # a real token: not a stranger's
        return
    message = email.message_from_bytes(f"From: {sender}\r\nSubject: {subject}\r\n\r\nunsubscribe\r\n"
                                       .encode("utf-8", "surrogateescape"), policy=email.policy.default)
    desk = Desk(world.settings, world.db, key, datetime(2017, 11, 2, tzinfo=UTC))
    for route_ in (Route("unsubscribe", token.lower(), "address"), plain_request(message, world.settings.mailbox)):
        if route_ is None:
            continue
        handled = handle(desk, Inbound(b"", message, f"<{uuid.uuid4().hex}@x>", route_))
        assert handled.kept and "nobody unsubscribed" in handled.outcome
        assert "\n" not in handled.outcome and "\r" not in handled.outcome
    assert suppressed(world) == {}


@settings(max_examples=200, deadline=None)
@given(local=st.from_regex(r"[A-Za-z0-9_-]{1,10}(\.[A-Za-z0-9_-]{1,8}){0,2}", fullmatch=True),
       domain=st.from_regex(r"([a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?\.){1,3}[a-z]{2,6}", fullmatch=True),
       number=st.integers(min_value=0, max_value=36 ** 7 - 1), plus=st.booleans())
def test_the_mailto_a_copy_carries_is_routed_back_to_its_reader(local: str, domain: str, number: int, plus: bool):
    """What the send phase writes and what the mailbox reads agree, for any mailbox address."""
    mailbox = config.Mailbox(address=f"{local}@{domain}", plus_addresses=plus)
    key = "a-hypothesis-secret-of-real-length-0123456789"
    mailto = unsubscribe_mailto(_send_settings(mailbox), key, number)
    address, subject = mailto_parts(mailto)
    message = EmailMessage()
    message["To"], message["Subject"] = address, subject
    found = route(message, mailbox)
    assert found is not None and found.kind == "unsubscribe"
    assert read_address_token(key, MAIL_UNSUBSCRIBE, found.value) == number


def _send_settings(mailbox: config.Mailbox) -> config.SendSettings:
    return config.SendSettings(config.Sending(), "http://localhost:8000", "DIGEST_SECRET_KEY", False, Path("."),
                               "config.toml", mailbox=mailbox)
