"""The bounce mailbox: an SMTP install stops mailing dead and complaining addresses by
itself. An edition goes out over real SMTP with VERP return paths; the mailbox then gets
what mail servers really send back (DSNs hard and soft, an ARF complaint with the address
redacted, an out-of-office reply, Exim's bounce in words, a person's reply), `digest
bounces` reads it, and the next edition's recipients are checked on the wire. Reading
twice changes nothing; the IMAP path runs against Debian's dovecot over TLS."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest import actions, config
from digest.cli import cli
from digest.db.tables import bounce_messages, suppressions
from digest.errors import ConfigError
from digest.send.signing import read_return_path_token, return_path_token
from digest.signals.bounces import classify

from .support.bounce_mail import (
    RETURN_PATH,
    a_person_writing,
    arf,
    bounce_world,
    dsn,
    exim_bounce,
    fill,
    out_of_office,
    reader,
)
from .support.processes import start_digest

WEEK1 = ("2017-10-25", "2017-11-01")


@pytest.fixture
def mailbox(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "bounce-test-secret-0123456789abcdef")
    made = bounce_world(tmp_path, db_url)
    yield made
    made.close()


def run(world, *args: str):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])


def suppressed(world) -> dict[str, str]:
    with world.db.engine.connect() as db:
        return {row.email_key: row.reason for row in db.execute(sa.select(suppressions))}


def test_each_message_does_what_it_says_and_the_next_edition_skips_the_dead(mailbox):
    world = mailbox.world
    first = mailbox.send(*WEEK1)
    assert all(re.fullmatch(r"bounces\+[0-9a-z]+-[a-z2-7]{12}@onprobation-digest\.org", r.mail_from)
               for r in mailbox.smtp[1].received)                      # VERP: one return path per message
    assert len({r.mail_from for r in mailbox.smtp[1].received}) == 6
    fill(mailbox)
    result = run(world, "bounces")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(re.match(rf"\s+hard bounce\s+5\.1\.1\s+{reader(0)}\s+edition {first} \(weekly\)\s+suppressed", line)
               for line in lines), result.output
    assert any(re.match(rf"\s+soft bounce\s+4\.2\.2\s+{reader(1)}\s+edition {first} \(weekly\)\s+1 of 3 in a row",
                        line) for line in lines), result.output
    assert any(re.match(rf"\s+complaint\s+abuse\s+{reader(2)}\s+edition {first}.*suppressed", line) for line in lines)
    assert any(re.match(rf"\s+hard bounce\s+5\.1\.1\s+{reader(4)}.*suppressed", line) for line in lines)
    assert any(re.match(rf"\s+auto-reply\s+-\s+{reader(3)}.*change nothing", line) for line in lines)
    assert any(re.match(r"\s+unknown\s+-\s+-.*keep it for the editor", line) for line in lines)
    assert lines[-1] == (f"mailbox {mailbox.maildir}: 6 new message(s): auto-reply 1, complaint 1, "
                         "hard bounce 2, soft bounce 1, unknown 1"), result.output
    assert suppressed(world) == {reader(0): "bounced", reader(2): "complained", reader(4): "bounced"}
    assert sorted(os.listdir(mailbox.maildir / "new")) == []
    cur = sorted(os.listdir(mailbox.maildir / "cur"))
    assert [name for name in cur if name.endswith(":2,F")] == ["6.person:2,F"]        # kept for the editor
    assert len([name for name in cur if name.endswith(":2,S")]) == 5
    editions = actions.desk.editions_json(world.settings, world.db, "weekly")
    assert (editions[0]["bounced"], editions[0]["complaints"], editions[0]["soft_bounces"]) == (2, 1, 1)
    before = len(mailbox.smtp[1].received)
    mailbox.send("2017-10-26", "2017-11-02")                  # the next edition (the sample blog's last week, again)
    again = Counter(rcpt for r in mailbox.smtp[1].received[before:] for rcpt in r.rcpt_tos)
    assert set(again) == {reader(1), reader(3), reader(5)}             # the dead and the complaining are gone


def test_reading_the_mailbox_again_changes_nothing(mailbox):
    mailbox.send(*WEEK1)
    fill(mailbox)
    assert run(mailbox.world, "bounces").exit_code == 0
    with mailbox.world.db.engine.connect() as db:
        rows = db.execute(sa.select(sa.func.count()).select_from(bounce_messages)).scalar()
    for name in os.listdir(mailbox.maildir / "cur"):                  # even if every message came back unread
        os.replace(mailbox.maildir / "cur" / name, mailbox.maildir / "new" / name.split(":2,")[0])
    second = run(mailbox.world, "bounces")
    assert second.exit_code == 0 and "6 message(s) recorded before and now marked read" in second.output
    assert "0 new message(s): nothing new" in second.output
    with mailbox.world.db.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(bounce_messages)).scalar() == rows == 6
    third = run(mailbox.world, "bounces")
    assert "0 new message(s)" in third.output and "recorded before" not in third.output


def test_a_dry_run_says_what_it_would_do_and_touches_nothing(mailbox):
    mailbox.send(*WEEK1)
    fill(mailbox)
    result = run(mailbox.world, "bounces", "--dry-run")
    assert result.exit_code == 0 and "dry run: would suppress the address" in result.output
    assert "(dry run: nothing changed)" in result.output
    assert suppressed(mailbox.world) == {} and len(os.listdir(mailbox.maildir / "new")) == 6


def test_soft_bounces_suppress_only_after_three_editions_in_a_row(mailbox):
    weeks = [("2017-10-24", "2017-10-31"), ("2017-10-25", "2017-11-01"), ("2017-10-26", "2017-11-02"),
             ("2017-10-27", "2017-11-03")]                  # the sample blog's one busy week, seen four times
    mailbox.send(*weeks[0])
    mailbox.deliver(dsn(mailbox.verp_of(reader(1)), reader(1), "4.2.2"), "a")
    mailbox.deliver(dsn(mailbox.verp_of(reader(2)), reader(2), "4.2.2"), "b")
    run(mailbox.world, "bounces")
    mailbox.send(*weeks[1])                                   # reader 2's mailbox has room again: no bounce
    mailbox.deliver(dsn(mailbox.verp_of(reader(1)), reader(1), "4.2.2"), "c")
    run(mailbox.world, "bounces")
    mailbox.send(*weeks[2])
    mailbox.deliver(dsn(mailbox.verp_of(reader(2)), reader(2), "4.2.2"), "d")
    result = run(mailbox.world, "bounces")
    assert reader(1) not in suppressed(mailbox.world) and "1 of 3 in a row" in result.output   # reader 2: run broken
    mailbox.deliver(dsn(mailbox.verp_of(reader(1)), reader(1), "4.2.2"), "e")
    result = run(mailbox.world, "bounces")
    assert suppressed(mailbox.world) == {reader(1): "bounced"} and "suppressed" in result.output
    before = len(mailbox.smtp[1].received)
    mailbox.send(*weeks[3])
    assert reader(1) not in {rcpt for r in mailbox.smtp[1].received[before:] for rcpt in r.rcpt_tos}


def test_a_forged_return_path_token_ties_a_bounce_to_nobody(mailbox):
    """Anyone can write to the bounce address; a token this instance did not sign is not
    believed, and the address the report names is used instead (never another reader)."""
    mailbox.send(*WEEK1)
    key = actions.signing_key(mailbox.world.settings)
    real = mailbox.verp_of(reader(0))
    delivery = read_return_path_token(key, real.split("+")[1].split("@")[0])
    forged = f"bounces+{return_path_token('another-secret-0123456789abcdef', delivery)}@onprobation-digest.org"
    mailbox.deliver(dsn(forged, "nobody-of-ours@example.net", "5.1.1"), "forged")
    result = run(mailbox.world, "bounces")
    assert "no subscriber of ours matches it" in result.output and suppressed(mailbox.world) == {}


def test_a_token_survives_a_server_that_upper_cases_the_address(mailbox):
    mailbox.send(*WEEK1)
    shouted = mailbox.verp_of(reader(0)).upper()
    mailbox.deliver(dsn(shouted, "someone-else@example.net", "5.1.1"), "upper")
    run(mailbox.world, "bounces")
    assert suppressed(mailbox.world) == {reader(0): "bounced"}           # the token, not the named address


def test_bounces_settings_are_checked_where_they_enter():
    for bad, words in [({"return_path": "Bounces <b@x.org>"}, "not a plain address"),
                       ({"return_path": "b+x@x.org"}, "no +"),
                       ({"return_path": "b" * 50 + "@x.org"}, "over 44 characters"),
                       ({"maildir": "m", "imap_host": "imap.x.org", "imap_user": "u"}, "not both"),
                       ({"imap_host": "imap.x.org"}, "without imap_user")]:
        with pytest.raises(ConfigError) as raised:
            config.from_dict({"bounces": bad})
        assert raised.value.problems[0].startswith("config.toml [bounces]") and words in raised.value.problems[0]


def test_without_a_mailbox_the_command_says_what_to_set(mailbox, tmp_path):
    mailbox.world.data["bounces"] = {}
    mailbox.world.reload()
    result = run(mailbox.world, "bounces")
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith(
        "Error: no mailbox is set; set [mailbox] maildir")
    mailbox.world.data["bounces"] = {"maildir": str(tmp_path / "nowhere")}
    mailbox.world.reload()
    missing = run(mailbox.world, "bounces")
    assert missing.exit_code == 1 and "not a Maildir (no new/ folder); check [mailbox].maildir" in missing.output


def test_the_classifier_reads_what_servers_send():
    verp = f"bounces+{return_path_token('k' * 32, 7)}@onprobation-digest.org"
    cases = {dsn(verp, reader(0), "5.1.1"): ("hard", "5.1.1"), dsn(verp, reader(0), "4.2.2"): ("soft", "4.2.2"),
             dsn(verp, reader(0), "2.0.0", action="delivered"): ("notice", "2.0.0"),
             arf(verp, reader(0)): ("complaint", "abuse"), out_of_office(reader(0)): ("auto-reply", ""),
             exim_bounce(verp, reader(0)): ("hard", "5.1.1"), a_person_writing(): ("unknown", ""),
             b"": ("unknown", ""), b"\xff\xfe\x00garbage": ("unknown", "")}
    for raw, (kind, status) in cases.items():
        found = classify(raw, RETURN_PATH)
        assert (found.kind, found.status) == (kind, status), raw[:200]
        if kind in ("hard", "soft", "complaint", "notice"):
            assert read_return_path_token("k" * 32, found.verp) == 7


# ------------------------------------------------------------------ IMAP, against dovecot

def test_the_imap_mailbox_is_read_over_tls_once_and_flagged(mailbox, dovecot, monkeypatch):
    world = mailbox.world
    world.data["bounces"] = {"return_path": RETURN_PATH, "imap_host": "127.0.0.1", "imap_port": dovecot.port,
                             "imap_user": dovecot.user, "imap_ca_file": str(dovecot.pki.ca)}
    world.reload()
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", dovecot.password)
    mailbox.send(*WEEK1)
    verp = mailbox.verp_of
    dovecot.deliver(dsn(verp(reader(0)), reader(0), "5.1.1"), "1.hard")
    dovecot.deliver(arf(verp(reader(2)), reader(2)), "2.arf")
    dovecot.deliver(out_of_office(reader(3)), "3.ooo")
    dovecot.deliver(a_person_writing(), "4.person")
    result = run(world, "bounces")
    assert result.exit_code == 0, result.output
    assert "imaps://bounces@127.0.0.1" in result.output and "4 new message(s)" in result.output
    assert suppressed(world) == {reader(0): "bounced", reader(2): "complained"}
    import ssl

    from imapclient import IMAPClient
    client = IMAPClient("127.0.0.1", dovecot.port, ssl=True, timeout=10,
                        ssl_context=ssl.create_default_context(cafile=str(dovecot.pki.ca)))
    client.login(dovecot.user, dovecot.password)
    client.select_folder("INBOX")
    flags = client.get_flags(client.search(["ALL"]))
    assert len(flags) == 4 and all(b"$DigestRead" in f for f in flags.values())     # nothing deleted
    assert sum(b"\\Flagged" in f and b"\\Seen" not in f for f in flags.values()) == 1  # the person's, for the editor
    client.logout()
    again = run(world, "bounces")
    assert "0 new message(s)" in again.output
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "wrong")
    refused = run(world, "bounces")
    assert refused.exit_code == 1 and "the login was refused; check [mailbox].imap_user and DIGEST_IMAP_PASSWORD" \
        in refused.output


def test_an_imap_server_whose_certificate_does_not_verify_is_refused(mailbox, dovecot, monkeypatch):
    world = mailbox.world
    world.data["bounces"] = {"imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_user": dovecot.user}
    world.reload()                                              # no imap_ca_file: the system's trust store
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", dovecot.password)
    result = run(world, "bounces")
    assert result.exit_code == 1 and "did not verify" in result.output and "imap_ca_file" in result.output


# ------------------------------------------------------------------ what a stranger mails the bounce address

POISON = {
    "empty-id": b"From: someone@example.net\r\nMessage-ID: <>\r\nSubject: hi\r\n\r\nhello\r\n",
    "broken-id": b"From: someone@example.net\r\nMessage-ID: <a@[\r\nSubject: hi\r\n\r\nhello\r\n",
    "nested-from": b"From: " + b"(" * 400 + b"\r\nSubject: x\r\n\r\nx\r\n",
    "deep": b"".join(f"Content-Type: multipart/mixed; boundary=b{n}\r\n\r\n--b{n}\r\n".encode() for n in range(1000)),
    "nul": b"From: someone@example.net\r\nMessage-ID: <ok1@example.net>\r\nSubject: hi\x00there\r\n\r\nhi\r\n",
}


def test_no_message_stops_the_reader_and_each_is_kept_for_the_editor(mailbox):
    """Whatever breaks the email package (a Message-ID of <>, headers nested past any depth,
    a NUL PostgreSQL cannot store) is one unknown message: flagged, and the rest are read."""
    mailbox.send(*WEEK1)
    for name, raw in POISON.items():
        mailbox.deliver(raw, f"0.{name}")
        assert classify(raw, RETURN_PATH).kind == "unknown", name
    mailbox.deliver(dsn(mailbox.verp_of(reader(0)), reader(0), "5.1.1"), "9.hard")
    result = run(mailbox.world, "bounces")
    assert result.exit_code == 0, result.output
    assert suppressed(mailbox.world) == {reader(0): "bounced"}
    cur = os.listdir(mailbox.maildir / "cur")
    assert sorted(n for n in cur if n.endswith(":2,F")) == sorted(f"0.{name}:2,F" for name in POISON)
    assert os.listdir(mailbox.maildir / "new") == []
    long_line = b"From: MAILER-DAEMON@x.example\r\nSubject: Mail delivery failed\r\n\r\n550 5.1.1 " + b"a" * 200_000
    assert classify(long_line, RETURN_PATH).kind == "hard"           # a bounded pattern: no quadratic search


def test_a_report_tied_only_by_the_address_it_names_suppresses_nobody_at_once(mailbox):
    """Anyone can write to the bounce address: three forged reports naming readers (a DSN,
    a daemon's words, an ARF) and no token of ours. The hard bounces count as soft; the
    complaint is kept for the editor; nobody is suppressed."""
    mailbox.send(*WEEK1)
    forged_dsn = dsn("bounces@onprobation-digest.org", reader(5), "5.1.1")
    forged_words = (b"From: MAILER-DAEMON@attacker.example\r\nSubject: failed\r\n\r\n550 5.1.1 <"
                    + reader(4).encode() + b">\r\n")
    forged_arf = (b"From: x@attacker.example\r\nMessage-ID: <f1@attacker.example>\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: multipart/report; report-type=feedback-report; boundary=Z\r\n\r\n--Z\r\n"
                  b"Content-Type: message/feedback-report\r\n\r\nOriginal-Rcpt-To: " + reader(3).encode()
                  + b"\r\n\r\n--Z--\r\n")
    for n, raw in enumerate((forged_dsn, forged_words, forged_arf)):
        mailbox.deliver(raw, f"{n}.forged")
    result = run(mailbox.world, "bounces")
    assert suppressed(mailbox.world) == {}
    assert "1 of 3 in a row (a hard bounce not verified: counted as soft)" in result.output
    assert "not verified (no token of ours, only the address it names): kept for the editor" in result.output
    assert "2.forged:2,F" in os.listdir(mailbox.maildir / "cur")


def test_two_readers_at_once_apply_and_report_each_message_once(mailbox):
    import subprocess
    mailbox.send(*WEEK1)
    for n in range(40):
        mailbox.deliver(dsn(mailbox.verp_of(reader(n % 6)), reader(n % 6), "4.2.2"), f"{n:03d}.soft")
    command = ["--config", str(mailbox.world.config_path), "bounces"]
    readers_ = [start_digest(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in readers_]
    assert sorted(p.returncode for p in readers_) in ([0, 0], [0, 1]), outputs
    refused = [err for (_, err), p in zip(outputs, readers_, strict=True) if p.returncode == 1]
    assert all("mailbox is already running" in err for err in refused), refused      # one read at a time
    said = [int(re.search(r"(\d+) new message\(s\)", out).group(1)) for out, _ in outputs if "new message" in out]
    assert sum(said) == 40, outputs                                   # each applied message reported once
    with mailbox.world.db.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(bounce_messages)).scalar() == 40
    assert os.listdir(mailbox.maildir / "new") == []
