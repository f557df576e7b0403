"""`digest doctor`: every check a real send depends on, against real parts on loopback: an
authoritative DNS server (DIGEST_NAMESERVER), the SendGrid stand-in's /v3/scopes, an SMTP
relay with STARTTLS and AUTH, and the scheduler's heartbeat in the database."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.db import Database
from digest.live import doctor

from .support import smtp_server
from .support.dns_server import DnsServer, Zones
from .support.sendgrid_server import SendGridStandIn

DOMAIN = "onprobation-digest.org"
SECRET = "doctor-test-secret-Zq8vL2mN8pR4tW6y"
PASSWORD = "an editor's long password"
SENDGRID_RECORDS = {
    DOMAIN: [("TXT", '"v=spf1 include:sendgrid.net ~all"')],
    "sendgrid.net": [("TXT", '"v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ~all"')],
    f"s1._domainkey.{DOMAIN}": [("CNAME", "s1.domainkey.u1234.wl.sendgrid.net.")],
    f"s2._domainkey.{DOMAIN}": [("CNAME", "s2.domainkey.u1234.wl.sendgrid.net.")],
    "s1.domainkey.u1234.wl.sendgrid.net": [("TXT", '"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1"')],
    "s2.domainkey.u1234.wl.sendgrid.net": [("TXT", '"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC2"')],
    f"_dmarc.{DOMAIN}": [("TXT", f'"v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}"')],
}


def write_config(folder: Path, sending: str) -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
[site]
title = "On Probation"

[database]
url = "sqlite:///{folder / 'digest.db'}"

[[sources]]
name = "onprobation"
url = "https://probationmatters.blogspot.com/feeds/posts/default"

[[lists]]
name = "weekly"
file = "weekly.csv"

[web]
base_url = "https://digest.{DOMAIN}"

{sending}
""", encoding="utf-8")
    Database.open(f"sqlite:///{folder / 'digest.db'}").close()
    return path


@pytest.fixture
def environment(monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")


@pytest.fixture
def sendgrid():
    stand_in = SendGridStandIn()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def zones(monkeypatch):
    records = Zones({DOMAIN: [("A", "127.0.0.1")], f"digest.{DOMAIN}": [("A", "127.0.0.1")]})
    with DnsServer(records) as server:
        monkeypatch.setenv("DIGEST_NAMESERVER", server.address)
        yield records


def sendgrid_config(tmp_path: Path, sendgrid: SendGridStandIn) -> Path:
    return write_config(tmp_path, f'[sending]\nbackend = "sendgrid"\nfrom = "On Probation <digest@{DOMAIN}>"\n'
                                  f'\n[sending.sendgrid]\nhost = "{sendgrid.host}"\n')


def by_name(found: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.check: check for check in found}


def run_json(config_path: Path):
    result = CliRunner().invoke(cli, ["--config", str(config_path), "doctor", "--json"])
    return result.exit_code, json.loads(result.output)


def test_a_domain_without_records_fails_spf_dkim_dmarc_each_with_the_record_to_publish(tmp_path, environment,
                                                                                     sendgrid, zones):
    code, found = run_json(sendgrid_config(tmp_path, sendgrid))
    assert code == 1
    assert [c["check"] for c in found] == list(doctor.NAMES)
    assert all(set(c) == {"check", "ok", "detail", "fix"} for c in found)
    checks = {c["check"]: c for c in found}
    assert not checks["spf"]["ok"] and checks["spf"]["fix"] == (
        f'publish at {DOMAIN}: TXT "v=spf1 include:sendgrid.net ~all"')
    assert not checks["dkim"]["ok"] and f"s1._domainkey.{DOMAIN} and s2._domainkey.{DOMAIN}" in checks["dkim"]["fix"]
    assert not checks["dmarc"]["ok"] and checks["dmarc"]["fix"] == (
        f'publish at _dmarc.{DOMAIN}: TXT "v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}"')
    assert ("onprobation-digest.org", "TXT") in zones.asked          # asked DIGEST_NAMESERVER, nobody else
    assert checks["config"]["ok"] and checks["secret"]["ok"] and checks["editor"]["ok"]
    assert checks["database"]["ok"] and checks["relay"]["ok"]       # the stand-in's key may send


def test_they_pass_once_sendgrids_records_are_published(tmp_path, environment, sendgrid, zones):
    for name, records in SENDGRID_RECORDS.items():
        for kind, text in records:
            zones.add(name, kind, text)
    _, found = run_json(sendgrid_config(tmp_path, sendgrid))
    checks = {c["check"]: c for c in found}
    assert checks["spf"]["ok"], checks["spf"]
    assert checks["dkim"]["ok"] and "-> s1.domainkey.u1234.wl.sendgrid.net" in checks["dkim"]["detail"]
    assert checks["dmarc"]["ok"] and "p=none; the From domain aligns" in checks["dmarc"]["detail"]


def test_an_spf_record_that_leaves_out_the_relay_gets_it_added_before_its_all(tmp_path, environment, sendgrid, zones):
    zones.add(DOMAIN, "TXT", '"v=spf1 mx include:_spf.google.com -all"')
    zones.add("_spf.google.com", "TXT", '"v=spf1 ip4:35.190.247.0/24 ~all"')
    checks = by_name(doctor.run(_settings(sendgrid_config(tmp_path, sendgrid))))
    added = "v=spf1 mx include:_spf.google.com include:sendgrid.net -all"
    assert checks["spf"].fix == f'publish at {DOMAIN}: TXT "{added}"'


def _settings(path: Path):
    from digest import config
    return config.load(path)


def test_the_key_must_be_allowed_to_send(tmp_path, environment, sendgrid, zones, monkeypatch):
    sendgrid.scopes = ["stats.read", "alerts.read"]
    checks = by_name(doctor.run(_settings(sendgrid_config(tmp_path, sendgrid))))
    assert not checks["relay"].ok and "cannot send (scopes: stats.read, alerts.read)" in checks["relay"].detail
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.someone-else")
    again = by_name(doctor.run(_settings(sendgrid_config(tmp_path, sendgrid))))["relay"]
    assert not again.ok and "SendGrid refused the key in SENDGRID_API_KEY (401)" in again.detail


def test_an_smtp_relay_is_checked_with_starttls_and_login_and_no_mail_is_sent(tmp_path, environment, zones,
                                                                              monkeypatch):
    pki = smtp_server.make_pki(tmp_path / "pki")
    logins = smtp_server.Logins("digest", "relay password")
    controller, recorder = smtp_server.start(tls_context=smtp_server.server_tls(pki), require_starttls=True,
                                             auth_required=True, auth_require_tls=True, authenticator=logins)
    monkeypatch.setenv("RELAY_PASSWORD", "relay password")
    try:
        path = write_config(tmp_path, f'[sending]\nbackend = "smtp"\nfrom = "On Probation <digest@{DOMAIN}>"\n'
                                      f'spf_include = "spf.relay.example"\ndkim_selector = "mail"\n\n'
                                      f'[sending.smtp]\nhost = "127.0.0.1"\nport = {controller.port}\n'
                                      f'security = "starttls"\nusername = "digest"\npassword_env = "RELAY_PASSWORD"\n'
                                      f'ca_file = "{pki.ca}"\n')
        checks = by_name(doctor.run(_settings(path)))
        assert checks["relay"].ok and "TLS verified, logged in as digest; no mail sent" in checks["relay"].detail
        assert recorder.received == [] and logins.mechanisms and not logins.failed
        assert checks["spf"].fix == f'publish at {DOMAIN}: TXT "v=spf1 include:spf.relay.example ~all"'
        assert checks["dkim"].fix == f'publish at mail._domainkey.{DOMAIN}: TXT "v=DKIM1; k=rsa; p=<the public key ' \
                                     'your relay gives you>"'
        zones.add(DOMAIN, "TXT", '"v=spf1 include:spf.relay.example ~all"')
        zones.add("spf.relay.example", "TXT", '"v=spf1 ip4:198.51.100.0/24 -all"')
        zones.add(f"mail._domainkey.{DOMAIN}", "TXT", '"v=DKIM1; k=rsa; p=MIGfMA0GCSqG"')
        checks = by_name(doctor.run(_settings(path)))
        assert checks["spf"].ok and checks["dkim"].ok
        assert not checks["bounces"].ok and "nobody reads them" in checks["bounces"].detail
        monkeypatch.setenv("RELAY_PASSWORD", "wrong")
        refused = by_name(doctor.run(_settings(path)))["relay"]
        assert not refused.ok and "SMTP login as digest refused" in refused.detail and refused.fix
    finally:
        controller.stop()


def test_an_unreachable_relay_and_a_silent_name_server_hide_no_other_check(tmp_path, environment, monkeypatch):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)          # takes questions, never answers
    silent.bind(("127.0.0.1", 0))
    monkeypatch.setenv("DIGEST_NAMESERVER", f"127.0.0.1:{silent.getsockname()[1]}")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    path = write_config(tmp_path, f'[sending]\nbackend = "smtp"\nfrom = "On Probation <digest@{DOMAIN}>"\n'
                                  f'dkim_selector = "mail"\nspf_include = "x.example"\n\n'
                                  f'[sending.smtp]\nhost = "127.0.0.1"\nport = {port}\n')
    started = datetime.now(UTC)
    checks = by_name(doctor.run(_settings(path)))
    assert list(checks) == list(doctor.NAMES)
    assert not checks["relay"].ok and "not reachable" in checks["relay"].detail
    for name in ("spf", "dkim", "dmarc"):
        assert not checks[name].ok and "no answer" in checks[name].detail, checks[name]
    assert checks["config"].ok and checks["secret"].ok and checks["database"].ok
    assert datetime.now(UTC) - started < timedelta(seconds=60)          # each look-up gave up after seconds
    silent.close()


def test_the_scheduler_check_reads_the_heartbeat(tmp_path, environment, sendgrid, zones):
    path = sendgrid_config(tmp_path, sendgrid)
    now = datetime.now(UTC)
    with Database.open(f"sqlite:///{tmp_path / 'digest.db'}") as db:
        assert not by_name(doctor.run(_settings(path), now=now))["scheduler"].ok
        db.locks.acquire("schedule", "elsewhere:4242:1", timedelta(minutes=5), now - timedelta(seconds=30))
        fresh = by_name(doctor.run(_settings(path), now=now))["scheduler"]
        assert fresh.ok and fresh.detail == "running (elsewhere:4242:1), last heartbeat 30 s ago"
        stale = by_name(doctor.run(_settings(path), now=now + timedelta(minutes=10)))["scheduler"]
        assert not stale.ok and "has stopped" in stale.detail and "digest schedule" in stale.fix


def test_the_one_line_output_the_exit_code_and_the_last_result_kept(tmp_path, environment, sendgrid, zones):
    path = sendgrid_config(tmp_path, sendgrid)
    result = CliRunner().invoke(cli, ["--config", str(path), "doctor"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("✓ config: ") and any(line.startswith("✗ spf: ") for line in lines)
    assert lines[lines.index(next(line for line in lines if line.startswith("✗ spf: "))) + 1].startswith("    fix: ")
    assert lines[-1] == "8 of 14 checks pass; fix the ones marked ✗."
    with Database.open(f"sqlite:///{tmp_path / 'digest.db'}") as db:
        when, by, results = db.checks.latest()
    assert by == "doctor" and [r["check"] for r in results] == list(doctor.NAMES)


def test_a_config_that_does_not_load_is_the_first_failure_and_the_rest_say_why(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[fetch]\ntimeout = -1\n", encoding="utf-8")
    code, found = run_json(path)
    assert code == 1 and found[0]["check"] == "config" and "[fetch].timeout" in found[0]["detail"]
    assert all(not c["ok"] and "not checked" in c["detail"] for c in found[1:])


def test_the_scheduler_checks_once_at_its_start_and_warns_of_each_failure(tmp_path, environment, sendgrid, zones,
                                                                         caplog):
    from digest import schedule
    settings = _settings(sendgrid_config(tmp_path, sendgrid))
    with caplog.at_level("WARNING", logger="digest.schedule"):
        found = schedule.check_at_start(settings)
    failing = [c.check for c in found if not c.ok]
    warned = [r.getMessage() for r in caplog.records if r.name == "digest.schedule"]
    assert failing and len(warned) == len(failing)
    assert warned[0].startswith(f"doctor: {failing[0]}: ") and "; fix: " in warned[0]
    with Database.open(settings.database_url()) as db:
        assert db.checks.latest()[1] == "schedule"


# ------------------------------------------------------------------ what a stranger's attack found

def test_spf_counts_look_ups_as_receivers_do(tmp_path, environment, sendgrid, zones):
    """More than ten DNS look-ups is a permerror for every receiver (RFC 7208 4.6.4), so the
    doctor must not call such a record good; a legal record of seven look-ups is good; and
    a record whose includes each name more includes costs a bounded number of questions."""
    settings = _settings(sendgrid_config(tmp_path, sendgrid))
    for n in range(12):
        zones.add(f"i{n}.example", "TXT", '"v=spf1 -all"')
    zones.add("sendgrid.net", "TXT", '"v=spf1 ip4:167.89.0.0/17 ~all"')
    zones.add(DOMAIN, "TXT", '"v=spf1 ' + " ".join(f"include:i{n}.example" for n in range(11))
              + ' include:sendgrid.net -all"')
    over = by_name(doctor.run(settings))["spf"]
    assert not over.ok and "more than 10 DNS look-ups" in over.detail
    zones.remove(DOMAIN, "TXT")
    zones.add(DOMAIN, "TXT", '"v=spf1 ' + " ".join(f"a:h{n}.example" for n in range(6)) + ' include:sendgrid.net -all"')
    assert by_name(doctor.run(settings))["spf"].ok                       # seven look-ups: fine
    zones.remove(DOMAIN, "TXT")
    zones.add(DOMAIN, "TXT", '"v=spf1 include:b0.example include:sendgrid.net -all"')
    for n in range(10):                               # ten includes each: a thousand questions unchecked
        zones.add(f"b{n}.example", "TXT", '"v=spf1 ' + " ".join(f"include:b{m}.example" for m in range(10)) + ' -all"')
    zones.asked.clear()
    bomb = by_name(doctor.run(settings))["spf"]
    assert not bomb.ok and "permerror" in bomb.detail
    assert len([q for q in zones.asked if q[1] == "TXT" and q[0].startswith("b")]) <= 12


def test_two_spf_records_and_a_broken_prefix_are_permerrors(tmp_path, environment, sendgrid, zones):
    settings = _settings(sendgrid_config(tmp_path, sendgrid))
    zones.add(DOMAIN, "TXT", '"v=spf1 include:sendgrid.net ~all"')
    zones.add(DOMAIN, "TXT", '"v=spf1 -all"')
    two = by_name(doctor.run(settings))["spf"]
    assert not two.ok and "2 SPF records" in two.detail
    zones.remove(DOMAIN, "TXT")
    zones.add("sendgrid.net", "TXT", '"v=spf1 ip4:167.89.0.0/17 ~all"')
    zones.add(DOMAIN, "TXT", '"v=spf1 a/33 include:sendgrid.net ~all"')
    broken = by_name(doctor.run(settings))["spf"]
    assert not broken.ok and "not a prefix" in broken.detail and "the check itself failed" not in broken.detail


def test_a_relay_that_trickles_its_banner_is_a_failed_check_not_a_hung_doctor(tmp_path, environment, zones,
                                                                              monkeypatch):
    import socketserver
    import threading
    import time

    class Trickle(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                while True:                                    # a line every second: under every socket timeout
                    self.request.sendall(b"220-hello\r\n")
                    time.sleep(1)
            except OSError:
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(doctor, "CHECK_SECONDS", 3.0)
    try:
        path = write_config(tmp_path, f'[sending]\nbackend = "smtp"\nfrom = "Blog <digest@{DOMAIN}>"\n'
                                      f'[sending.smtp]\nhost = "127.0.0.1"\nport = {server.server_address[1]}\n')
        started = time.monotonic()
        checks = by_name(doctor.run(_settings(path)))
        assert time.monotonic() - started < 20
        assert not checks["relay"].ok and "no answer within 3 s" in checks["relay"].detail
        assert checks["config"].ok and list(checks) == list(doctor.NAMES)
    finally:
        server.shutdown()
        server.server_close()


def test_a_login_without_tls_or_an_unchecked_certificate_is_not_a_good_relay(tmp_path, environment, zones):
    path = write_config(tmp_path, f'[sending]\nbackend = "smtp"\nfrom = "Blog <digest@{DOMAIN}>"\n'
                                  '[sending.smtp]\nhost = "127.0.0.1"\nport = 2525\nusername = "relayuser"\n')
    clear = by_name(doctor.run(_settings(path)))["relay"]
    assert not clear.ok and "in the clear" in clear.detail and 'security = "starttls"' in clear.fix
    path = write_config(tmp_path, f'[sending]\nbackend = "smtp"\nfrom = "Blog <digest@{DOMAIN}>"\n'
                                  '[sending.smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "tls"\nverify = false\n')
    unchecked = by_name(doctor.run(_settings(path)))["relay"]
    assert not unchecked.ok and "verify is false" in unchecked.detail


@pytest.mark.parametrize("given", ["garbage", "nonexistent.invalid:53", "127.0.0.1:99999", "1.2.3.4:53:53"])
def test_a_malformed_nameserver_is_one_line_per_check(tmp_path, environment, sendgrid, monkeypatch, given):
    monkeypatch.setenv("DIGEST_NAMESERVER", given)
    result = CliRunner().invoke(cli, ["--config", str(sendgrid_config(tmp_path, sendgrid)), "doctor"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    spf = next(line for line in result.output.splitlines() if line.startswith("✗ spf"))
    assert f"DIGEST_NAMESERVER={given!r} names no name server" in spf


def test_sendgrid_answering_something_else_is_a_plain_failure(tmp_path, environment, zones, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Odd(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"[" * 5000 + b"]" * 5000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = write_config(tmp_path, f'[sending]\nbackend = "sendgrid"\nfrom = "Blog <digest@{DOMAIN}>"\n'
                                      f'[sending.sendgrid]\nhost = "http://127.0.0.1:{server.server_address[1]}"\n')
        relay = by_name(doctor.run(_settings(path)))["relay"]
        assert not relay.ok and "cannot send (scopes: none)" in relay.detail
    finally:
        server.shutdown()


def test_a_bounce_mailbox_is_opened_and_its_return_path_must_take_mail(tmp_path, environment, zones):
    """SMTP with [bounces]: the mailbox must open as `digest bounces` opens it, and the
    return path's domain must have somewhere for bounces to arrive."""
    maildir = tmp_path / "bounces"
    path = write_config(tmp_path, f'[sending]\nbackend = "smtp"\nfrom = "On Probation <digest@{DOMAIN}>"\n\n'
                                  f'[bounces]\nmaildir = "{maildir}"\nreturn_path = "bounces@mail.{DOMAIN}"\n')
    missing = by_name(doctor.run(_settings(path)))["bounces"]
    assert not missing.ok and "not a Maildir (no new/ folder)" in missing.detail and "digest bounces --dry-run" \
        in missing.fix
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    nowhere = by_name(doctor.run(_settings(path)))["bounces"]
    assert not nowhere.ok and f"mail.{DOMAIN} has no MX record" in nowhere.detail
    assert nowhere.fix == f"publish an MX record for mail.{DOMAIN} that delivers to the bounce mailbox"
    zones.add(f"mail.{DOMAIN}", "MX", f"10 mx.{DOMAIN}.")
    ready = by_name(doctor.run(_settings(path)))["bounces"]
    assert ready.ok and ready.detail == (f"bounces go to bounces+TOKEN@mail.{DOMAIN} (VERP; mail.{DOMAIN} takes "
                                         f"mail at mx.{DOMAIN}) and the mailbox maildir is read")
