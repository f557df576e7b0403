"""Sending through a provider's relay: STARTTLS or implicit TLS verified against a CA
made for the test, a login, "try again later" answers, SMTPUTF8, hang-ups mid-list.
Every server is a real aiosmtpd on loopback; every client is the real SmtpMailer."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from digest import actions
from digest.actions import send_edition
from digest.db.tables import deliveries
from digest.models import DeliveryStatus, EditionStatus, email_key
from digest.send.mailers import MailerError
from digest.send.mailers.smtp import SmtpMailer
from digest.send.message import recipient
from digest.send.signing import secret_key

from .support import smtp_server
from .support.processes import run_digest
from .support.world import World

PASSWORD_ENV = "DIGEST_TEST_SMTP_PASSWORD"
USER, PASSWORD = "digest", "correct horse battery staple"
READERS = [f"reader{n:05d}@example.org" for n in range(10)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return smtp_server.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serve():
    """Start aiosmtpd servers with the given options; all stopped at the end."""
    started = []

    def start(**options):
        controller, recorder = smtp_server.start(**options)
        started.append(controller)
        return controller, recorder

    yield start
    for controller in started:
        controller.stop()


def relay_world(tmp_path, db_url, controller, subscribers=5, sending=None, **smtp):
    """One connection unless asked: these tests follow what one SMTP session does (the pool
    of several is tests/test_distance.py's)."""
    settings = {"retry_delay_seconds": 0.2, "retry_within_run_seconds": 5.0, **(sending or {})}
    return World(tmp_path, db_url, subscribers, backend="smtp",
                 smtp={"host": "127.0.0.1", "port": controller.port, "connections": 1, **smtp}, **settings)


def run(world):
    return send_edition(world.settings, world.db, world.weekly, world.since, world.until)


def ledger_counts(world):
    """The edition's ledger; {} when nothing was frozen (a mailer that cannot start stops
    the send before the edition is stored)."""
    ledger = world.db.ledger
    edition = ledger.latest("weekly", world.since, world.until)
    return ledger.counts(edition.id) if edition else {}


def once_each(recorder, addresses):
    return Counter(recorder.envelope_recipients()) == Counter(addresses)


# --- TLS and login ------------------------------------------------------------------------


def starttls_server(serve, pki):
    logins = smtp_server.Logins(USER, PASSWORD)
    controller, recorder = serve(tls_context=smtp_server.server_tls(pki), require_starttls=True,
                                 auth_required=True, auth_require_tls=True, authenticator=logins)
    return controller, recorder, logins


def test_starttls_and_login_deliver_each_once_over_an_authenticated_tls_session(tmp_path, db_url, serve, pki,
                                                                                 monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    controller, recorder, logins = starttls_server(serve, pki)
    world = relay_world(tmp_path, db_url, controller, security="starttls", username=USER,
                        password_env=PASSWORD_ENV, ca_file=str(pki.ca))
    report = run(world)
    assert report.counts == {"accepted": 5} and report.finished
    assert once_each(recorder, READERS[:5])
    assert all(r.tls and r.login == USER for r in recorder.received)
    assert recorder.connections == 1 and sum(logins.mechanisms.values()) == 1 and not logins.failed
    assert set(logins.mechanisms) <= {"PLAIN", "LOGIN"}
    world.close()


@pytest.mark.parametrize("trust", ["system store", "CA of another host"])
def test_starttls_to_an_unverified_certificate_sends_nothing(tmp_path, db_url, serve, pki, monkeypatch, trust):
    """Without the CA (the system's store does not know it), or with a CA whose
    certificate names another host: one clear error, nothing sent, the ledger waits."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    served = pki if trust == "system store" else smtp_server.make_pki(tmp_path / "other", ("mail.example.org",))
    controller, recorder, logins = starttls_server(serve, served)
    ca_file = "" if trust == "system store" else str(served.ca)
    world = relay_world(tmp_path, db_url, controller, security="starttls", username=USER,
                        password_env=PASSWORD_ENV, ca_file=ca_file)
    with pytest.raises(MailerError) as raised:
        run(world)
    message = str(raised.value)
    assert "\n" not in message and "did not verify" in message
    assert "[sending.smtp].ca_file" in message and "verify = false" in message
    if trust != "system store":
        assert "127.0.0.1" in message                    # the name the certificate does not hold
    assert recorder.received == [] and recorder.mail_count == 0 and not logins.mechanisms   # not even the password
    assert ledger_counts(world) == {"pending": 5}
    world.close()


@pytest.mark.parametrize("trust", ["ca_file", "system store", "verify = false"])
def test_implicit_tls(tmp_path, db_url, serve, pki, caplog, trust):
    controller, recorder = serve(ssl_context=smtp_server.server_tls(pki))
    smtp = {"ca_file": str(pki.ca)} if trust == "ca_file" else {"verify": False} if trust == "verify = false" else {}
    world = relay_world(tmp_path, db_url, controller, subscribers=4, security="tls", **smtp)
    caplog.set_level(logging.WARNING, logger="digest.send.mailers.smtp")
    if trust == "system store":
        with pytest.raises(MailerError, match=r"^the TLS certificate of SMTP server 127\.0\.0\.1:\d+ did not verify "
                                              r"\(.*\); .*\[sending\.smtp\]\.ca_file"):
            run(world)
        assert recorder.received == [] and recorder.mail_count == 0
        assert ledger_counts(world) == {"pending": 4}
    else:
        assert run(world).counts == {"accepted": 4}
        assert once_each(recorder, READERS[:4]) and all(r.tls for r in recorder.received)
    warned = [r.getMessage() for r in caplog.records if "verify is false" in r.getMessage()]
    assert bool(warned) == (trust == "verify = false")
    world.close()


def test_wrong_password_is_one_line_and_nothing_goes(tmp_path, db_url, serve, pki, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not the password")
    controller, recorder, logins = starttls_server(serve, pki)
    world = relay_world(tmp_path, db_url, controller, security="starttls", username=USER,
                        password_env=PASSWORD_ENV, ca_file=str(pki.ca))
    with pytest.raises(MailerError, match=rf"^SMTP login as {USER} refused \(535 .*\); check "
                                          rf"\[sending\.smtp\]\.username and the password in {PASSWORD_ENV}$"):
        run(world)
    assert logins.failed and recorder.mail_count == 0 and recorder.received == []
    assert ledger_counts(world) == {"pending": 5}

    command = ["--config", str(world.config_path), "send", "weekly", "--since", "2017-10-25", "--until", "2017-11-01",
               "--yes"]
    done = run_digest(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                      env={**os.environ, PASSWORD_ENV: "not the password"})
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error")] == [
        f"Error: SMTP login as {USER} refused (535 5.7.8 Authentication credentials invalid); "
        f"check [sending.smtp].username and the password in {PASSWORD_ENV}"]
    assert recorder.received == [] and ledger_counts(world) == {"pending": 5}
    world.close()


def test_password_missing_from_the_environment(tmp_path, db_url, serve, pki, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    controller, recorder, logins = starttls_server(serve, pki)
    world = relay_world(tmp_path, db_url, controller, security="starttls", username=USER,
                        password_env=PASSWORD_ENV, ca_file=str(pki.ca))
    with pytest.raises(MailerError, match=rf"^{PASSWORD_ENV} is not set; export the SMTP password "
                                          r"for \[sending\.smtp\]\.username$"):
        run(world)
    assert recorder.received == [] and not logins.mechanisms
    assert ledger_counts(world) == {}                       # refused before anything was frozen
    world.close()


# --- "try again later" and final refusals --------------------------------------------------


def first_time(recorder, answers):
    """(command, address) -> answer, given only the first time the server is asked."""
    def hook(command, address):
        if (command, address) in answers and recorder.asked[command, address] == 1:
            return answers[command, address]
        return None
    return hook


def test_try_again_later_is_retried_within_the_run(tmp_path, db_url, serve):
    controller, recorder = serve()
    world = relay_world(tmp_path, db_url, controller, subscribers=6)
    recorder.on_mail = lambda number: "451 4.3.0 busy, try again later" if number == 2 else None   # reader00001
    recorder.on_address = first_time(recorder, {("RCPT", READERS[2]): "450 4.2.0 greylisted, come back later",
                                                 ("DATA", READERS[3]): "452 4.3.1 insufficient storage"})
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    planned = actions.plan(world.settings, world.db, world.weekly, world.since, world.until)
    report = actions.send(world.settings, world.db, planned, sleep=sleep)
    assert report.counts == {"accepted": 6} and report.finished
    assert once_each(recorder, READERS[:6])
    assert recorder.asked["RCPT", READERS[2]] == 2 and recorder.asked["DATA", READERS[3]] == 2
    assert recorder.mail_count == 6 + 3          # three messages asked twice
    assert recorder.connections == 1             # RSET after each 4xx kept the connection usable
    assert slept and sum(slept) <= 5.0           # waited for the deferred ones, within the run
    world.close()


def test_still_deferred_after_the_wait_stays_pending_for_the_next_run(tmp_path, db_url, serve):
    controller, recorder = serve()
    world = relay_world(tmp_path, db_url, controller, sending={"retry_delay_seconds": 0.3,
                                                               "retry_within_run_seconds": 0.5})
    greylisted = READERS[1]
    recorder.on_address = lambda command, address: (
        "451 4.7.1 greylisted, try again later" if (command, address) == ("RCPT", greylisted) else None)
    first = run(world)
    assert first.counts == {"accepted": 4, "pending": 1} and not first.finished
    assert "1 not sent yet" in first.summary()
    assert recorder.asked["RCPT", greylisted] == 2           # retried once within the run, then left
    ledger = world.db.ledger
    edition = ledger.latest("weekly", world.since, world.until)
    assert edition.status == EditionStatus.RELEASED
    with world.db.engine.connect() as db:
        row = db.execute(sa.select(deliveries.c.status, deliveries.c.attempts, deliveries.c.error)
                         .where(deliveries.c.email == greylisted)).one()
    assert (row.status, row.attempts) == ("pending", 2) and row.error.startswith("RCPT TO: 451 4.7.1")

    recorder.on_address = lambda command, address: None       # the greylisting is over
    due = ledger.next_retry(edition.id)
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)
    second = run(world)
    assert second.counts == {"accepted": 5} and second.finished and second.resumed
    assert once_each(recorder, READERS[:5])
    assert ledger.latest("weekly", world.since, world.until).status == EditionStatus.SENT
    world.close()


def test_final_refusals_are_not_retried(tmp_path, db_url, serve):
    controller, recorder = serve()
    world = relay_world(tmp_path, db_url, controller)
    recorder.on_address = lambda command, address: {("RCPT", READERS[1]): "550 5.1.1 no such user",
                                                    ("DATA", READERS[3]): "554 5.6.0 rejected"}.get((command, address))
    report = run(world)
    assert report.counts == {"accepted": 3, "refused": 2}
    assert once_each(recorder, [READERS[0], READERS[2], READERS[4]])
    assert recorder.asked["RCPT", READERS[1]] == 1 and recorder.asked["DATA", READERS[3]] == 1
    with world.db.engine.connect() as db:
        errors = dict(db.execute(sa.select(deliveries.c.email, deliveries.c.error)
                                 .where(deliveries.c.status == "refused")).all())
    assert errors == {READERS[1]: "550 5.1.1 no such user", READERS[3]: "DATA: 554 5.6.0 rejected"}
    world.close()


# --- SMTPUTF8 ------------------------------------------------------------------------------


@pytest.mark.parametrize("smtputf8", [True, False])
def test_a_non_ascii_mailbox_needs_smtputf8(tmp_path, db_url, serve, smtputf8):
    controller, recorder = serve(enable_SMTPUTF8=smtputf8)
    world = relay_world(tmp_path, db_url, controller, subscribers=0)
    world.write_list([READERS[0], "josé@bücher.de", "reader@bücher.de", READERS[1]])
    report = run(world)
    ascii_ones = [READERS[0], "reader@xn--bcher-kva.de", READERS[1]]    # an IDN domain alone needs no SMTPUTF8
    if smtputf8:
        assert report.counts == {"accepted": 4}
        assert once_each(recorder, [*ascii_ones, "josé@xn--bcher-kva.de"])
        [jose] = [r for r in recorder.received if r.rcpt_tos == ["josé@xn--bcher-kva.de"]]
        assert jose.smtputf8 and "SMTPUTF8" in jose.mail_options
        raw = recorder.raw[recorder.received.index(jose)]
        assert b"\r\nTo: Reader <jos\xc3\xa9@xn--bcher-kva.de>\r\n" in raw         # RFC 6532: UTF-8 as is
        assert not any(r.smtputf8 for r in recorder.received if r is not jose)
    else:
        assert report.counts == {"accepted": 3, "refused": 1}
        assert once_each(recorder, ascii_ones)
        assert not any("josé" in address for _, address in recorder.asked)
        with world.db.engine.connect() as db:
            error = db.execute(sa.select(deliveries.c.error).where(deliveries.c.status == "refused")).scalar_one()
        assert error == "the SMTP server does not support SMTPUTF8, which josé@xn--bcher-kva.de needs"
    world.close()


# --- a header that would break its line ----------------------------------------------------


def test_a_message_whose_header_would_break_is_refused_alone(tmp_path, db_url, serve):
    controller, recorder = serve()
    world = relay_world(tmp_path, db_url, controller, subscribers=0)
    planned = actions.plan(world.settings, world.db, world.weekly, world.since, world.until)
    assert planned.built is not None
    sending = world.settings.send_settings()
    key = secret_key(sending)
    to = [recipient(sending, key=key, list_name="weekly", delivery_id=n, email=a, email_key=email_key(a))
          for n, a in enumerate(READERS[:3])]
    to[1] = dataclasses.replace(to[1], headers={**to[1].headers,
                                                "List-Unsubscribe": "<http://x/>\r\nBcc: everyone@example.net"})
    mailer = SmtpMailer(world.settings.send_settings())
    try:
        outcomes = list(mailer.send(planned.built.edition, to, lambda ids: ids, "test"))
    finally:
        mailer.close()
    assert [o.status for o in outcomes] == [DeliveryStatus.ACCEPTED, DeliveryStatus.REFUSED, DeliveryStatus.ACCEPTED]
    assert "line break" in (outcomes[1].error or "")
    assert once_each(recorder, [READERS[0], READERS[2]]) and recorder.mail_count == 2
    world.close()


# --- hang-ups ------------------------------------------------------------------------------


@pytest.mark.parametrize(("how", "connections"), [
    ("hangs up after every 3 messages", 4),
    ("hangs up instead of answering MAIL FROM", 2),
    ("hangs up instead of answering RCPT TO", 2),
    ("answers 421 to MAIL FROM", 2),
])
def test_a_connection_lost_between_messages_is_reopened_and_nobody_gets_two(tmp_path, db_url, serve, how,
                                                                            connections):
    controller, recorder = serve()
    world = relay_world(tmp_path, db_url, controller, subscribers=10)
    if how.startswith("hangs up after"):
        recorder.hang_up_after = 3
    elif "MAIL" in how:
        answer = smtp_server.DROP if how.startswith("hangs up") else "421 4.3.2 too busy, closing"
        recorder.on_mail = lambda number: answer if number == 5 else None
    else:
        recorder.on_rcpt = lambda number: smtp_server.DROP if number == 5 else None
    report = run(world)
    assert report.counts == {"accepted": 10}
    assert once_each(recorder, READERS) and len(recorder.raw) == 10
    assert recorder.connections == connections
    world.close()


def test_a_server_that_keeps_hanging_up_stops_the_run_and_the_next_one_resumes(tmp_path, db_url, serve):
    controller, recorder = serve()
    world = relay_world(tmp_path, db_url, controller, subscribers=10)
    recorder.on_mail = lambda number: smtp_server.DROP if number >= 4 else None
    with pytest.raises(MailerError, match=r"^SMTP server 127\.0\.0\.1:\d+ keeps dropping the connection "
                                          r"\(.*\); check it, then run again to resume$"):
        run(world)
    assert once_each(recorder, READERS[:3])
    assert ledger_counts(world) == {"accepted": 3, "pending": 7}
    recorder.on_mail = lambda number: None
    assert run(world).counts == {"accepted": 10}
    assert once_each(recorder, READERS)
    world.close()


# --- settings that do not fit the relay -----------------------------------------------------


@pytest.mark.parametrize(("setting", "served", "says"), [
    ({"security": "none"}, "starttls",
     r"takes no mail on this connection \(530 .*\); check \[sending\.smtp\] security and username"),
    ({"security": "none", "username": USER}, "starttls",
     r"offers no login \(AUTH\) on this connection; check \[sending\.smtp\]\.security"),
    ({"security": "starttls"}, "plain", r"does not offer STARTTLS; check \[sending\.smtp\] port and security"),
    ({"security": "tls"}, "plain", r"^TLS with SMTP server 127\.0\.0\.1:\d+ failed \(.*\); check \[sending\.smtp\]"),
    ({"security": "tls", "ca_file": "no-such-ca.pem"}, "tls", r"^\[sending\.smtp\]\.ca_file .*no-such-ca\.pem: "
                                                              r"cannot be read as PEM CA certificates"),
])
def test_settings_that_do_not_fit_the_relay_are_one_line(tmp_path, db_url, serve, pki, monkeypatch, setting,
                                                         served, says):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    if served == "starttls":
        controller, recorder, _ = starttls_server(serve, pki)
    else:
        controller, recorder = serve(**({"ssl_context": smtp_server.server_tls(pki)} if served == "tls" else {}))
    world = relay_world(tmp_path, db_url, controller, password_env=PASSWORD_ENV, **setting)
    with pytest.raises(MailerError, match=says) as raised:
        run(world)
    assert "\n" not in str(raised.value)
    untouched = {} if "ca_file" in setting else {"pending": 5}   # a bad ca_file stops it before the freeze
    assert recorder.received == [] and ledger_counts(world) == untouched
    world.close()
