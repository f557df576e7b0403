"""`digest doctor` in mail mode, against real parts on loopback: a mail provider (an SMTP
server that delivers into the mailbox's Maildir, and delivers, refuses or loses plus
addresses), dovecot over IMAP with TLS, and a DNS server. The probe mails the mailbox's
plus address through the relay and reads it back; `approval` (someone is asked),
`public_url` (said once, not a failure) and `limits` (the provider's daily limit, and
Google's bulk-sender line) read the settings and the lists."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import config
from digest.actions import doctor_of, plan
from digest.cli import cli
from digest.db import Database
from digest.live import doctor, mail_checks, probe, providers
from digest.models import Origin, Subscriber

from .support import mail_provider
from .support.dns_server import DnsServer, Zones

DOMAIN = "onprobation-digest.org"
MAILBOX = f"pickoftheweek@{DOMAIN}"
PLUS_PROBE = "pickoftheweek+probe-"


def write_config(folder: Path, *, port: int = 2525, mailbox: str = "", lists: str = "", editor: str = "",
                 sending: str = "", web: str = 'base_url = "http://localhost:8000"') -> config.Settings:
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
{lists}

[editor]
{editor}

[sending]
backend = "smtp"
from = "On Probation <{MAILBOX}>"
{sending}

[sending.smtp]
host = "127.0.0.1"
port = {port}

[mailbox]
address = "{MAILBOX}"
{mailbox}

[web]
{web}
""", encoding="utf-8")
    Database.open(f"sqlite:///{folder / 'digest.db'}").close()
    return config.load(path)


def by_name(found: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.check: check for check in found}


@pytest.fixture
def zones(monkeypatch):
    records = Zones({DOMAIN: [("MX", f"10 mx.{DOMAIN}.")]})
    with DnsServer(records) as server:
        monkeypatch.setenv("DIGEST_NAMESERVER", server.address)
        yield records


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "doctor-mail-mode-secret-Zq8vL2mN8pR4")
    monkeypatch.delenv("DIGEST_EDITOR_PASSWORD", raising=False)


def provider_at(tmp_path: Path, plus: str):
    maildir = tmp_path / "Maildir"
    controller, provider = mail_provider.start(MAILBOX, mail_provider.into_maildir(maildir), plus)
    return controller, provider, maildir


def files(maildir: Path, sub: str) -> list[str]:
    return sorted(p.name for p in (maildir / sub).iterdir())


def test_plus_addresses_arrive_and_the_probe_is_read_back_and_marked_read(tmp_path, secret, zones):
    controller, provider, maildir = provider_at(tmp_path, mail_provider.DELIVER)
    try:
        settings = write_config(tmp_path, port=controller.port, mailbox=f'maildir = "{maildir}"')
        assert settings.mail_mode
        checks = by_name(doctor.run(settings))
    finally:
        controller.stop()
    mailbox = checks["mailbox"]
    assert mailbox.ok, mailbox
    assert f"a message to {PLUS_PROBE}" in mailbox.detail and "plus addresses arrive" in mailbox.detail
    [sent] = provider.delivered
    assert sent.startswith(PLUS_PROBE) and sent.endswith(f"@{DOMAIN}")
    assert files(maildir, "new") == [] and [name.endswith(":2,S") for name in files(maildir, "cur")] == [True]
    [message] = provider.messages
    assert message["Auto-Submitted"] == "auto-generated"        # `digest mailbox` takes it for nothing to do
    public = checks["public_url"]
    assert public.ok and "clicks are not counted" in public.detail and "mail mode" in public.detail
    assert checks["editor"].ok and "refuses every login" in checks["editor"].detail      # not needed by mail
    assert checks["limits"].ok and checks["approval"].ok


def test_a_provider_that_refuses_plus_addresses_is_told_to_turn_them_off(tmp_path, secret, zones):
    controller, provider, maildir = provider_at(tmp_path, mail_provider.REFUSE)
    try:
        settings = write_config(tmp_path, port=controller.port, mailbox=f'maildir = "{maildir}"')
        mailbox = by_name(doctor.run(settings))["mailbox"]
    finally:
        controller.stop()
    assert not mailbox.ok and "the relay refused pickoftheweek+probe-" in mailbox.detail
    assert f"one to {MAILBOX} did" in mailbox.detail
    assert mailbox.fix.startswith("set [mailbox] plus_addresses = false")
    assert provider.delivered == [MAILBOX] and files(maildir, "new") == []      # the plain probe, marked read


def test_a_provider_that_loses_plus_addresses_is_found_out_within_the_wait(tmp_path, secret, zones, monkeypatch):
    monkeypatch.setattr(probe, "WAIT_SECONDS", 1.0)
    controller, provider, maildir = provider_at(tmp_path, mail_provider.LOSE)
    try:
        settings = write_config(tmp_path, port=controller.port, mailbox=f'maildir = "{maildir}"')
        mailbox = by_name(doctor.run(settings))["mailbox"]
        assert not mailbox.ok and "did not come back within 1 s" in mailbox.detail
        assert "plus_addresses = false" in mailbox.fix
        settings = write_config(tmp_path, port=controller.port,
                                mailbox=f'maildir = "{maildir}"\nplus_addresses = false')
        plain = by_name(doctor.run(settings))["mailbox"]
    finally:
        controller.stop()
    assert plain.ok and f"a message to {MAILBOX} came back" in plain.detail        # only the plain address tried
    assert sum(1 for r in provider.envelope_recipients() if r.startswith(PLUS_PROBE)) == 1


def test_a_mailbox_where_the_mail_does_not_go_fails_with_where_to_look(tmp_path, secret, zones, monkeypatch):
    monkeypatch.setattr(probe, "WAIT_SECONDS", 0.5)
    elsewhere = tmp_path / "Elsewhere"
    controller, _ = mail_provider.start(MAILBOX, mail_provider.into_maildir(tmp_path / "Maildir"))
    mail_provider.into_maildir(elsewhere)
    try:
        settings = write_config(tmp_path, port=controller.port, mailbox=f'maildir = "{elsewhere}"')
        mailbox = by_name(doctor.run(settings))["mailbox"]
    finally:
        controller.stop()
    assert not mailbox.ok and "is not where mail to the address goes" in mailbox.detail
    assert "imap_folder" in mailbox.fix


def test_no_probe_without_a_relay_that_sends_nor_at_the_schedulers_start(tmp_path, secret, zones):
    controller, provider, maildir = provider_at(tmp_path, mail_provider.DELIVER)
    try:
        settings = write_config(tmp_path, port=controller.port, mailbox=f'maildir = "{maildir}"')
        at_start = by_name(doctor_of(settings, "schedule"))["mailbox"]
        outbox = settings.model_copy(update={"sending": settings.sending.model_copy(update={"backend": "outbox"})})
        skipped = by_name(doctor.run(outbox))["mailbox"]
    finally:
        controller.stop()
    assert at_start.ok and "probed by `digest doctor`" in at_start.detail
    assert skipped.ok and "not probed: the outbox backend sends nothing" in skipped.detail
    assert provider.received == []


def test_a_mailbox_that_does_not_open_or_is_not_set_fails(tmp_path, secret, zones):
    missing = by_name(doctor.run(write_config(tmp_path, mailbox=f'maildir = "{tmp_path / "none"}"')))["mailbox"]
    assert not missing.ok and "not a Maildir" in missing.detail and "digest mailbox --dry-run" in missing.fix
    unread = by_name(doctor.run(write_config(tmp_path)))["mailbox"]
    assert not unread.ok and f"nothing reads the mailbox {MAILBOX}" in unread.detail and "imap_host" in unread.fix


def test_the_probe_reads_back_over_imap_with_tls(tmp_path, secret, zones, dovecot, monkeypatch):
    from imapclient import IMAPClient
    controller, provider = mail_provider.start(MAILBOX, dovecot.deliver)
    monkeypatch.setenv("DIGEST_MAILBOX_PASSWORD", dovecot.password)
    try:
        settings = write_config(tmp_path, port=controller.port, mailbox=(
            f'imap_host = "127.0.0.1"\nimap_port = {dovecot.port}\nimap_user = "{dovecot.user}"\n'
            f'imap_password_env = "DIGEST_MAILBOX_PASSWORD"\nimap_ca_file = "{dovecot.pki.ca}"'))
        mailbox = by_name(doctor.run(settings))["mailbox"]
    finally:
        controller.stop()
    assert mailbox.ok and "plus addresses arrive" in mailbox.detail, (mailbox, dovecot.log())
    assert mailbox.detail.startswith(f"imaps://{dovecot.user}@127.0.0.1:{dovecot.port}/INBOX opens")
    context = ssl.create_default_context(cafile=str(dovecot.pki.ca))
    with IMAPClient("127.0.0.1", dovecot.port, ssl=True, ssl_context=context) as client:
        client.login(dovecot.user, dovecot.password)
        client.select_folder("INBOX")
        [flags] = client.get_flags(client.search(["ALL"])).values()
    assert b"\\Seen" in flags and b"$DigestRead" in flags and provider.delivered[0].startswith(PLUS_PROBE)


# ------------------------------------------------------------------ approval: someone is asked

@pytest.mark.parametrize(("lists", "editor", "mailbox", "ok", "said"), [
    ("", "", "maildir = 'box'", True, "no list waits for approval"),
    ('approval = "required"', "", "maildir = 'box'", False, "[editor] email is empty: nobody is asked"),
    ('approval = "required"', f'email = "{MAILBOX}"', "maildir = 'box'", False, "the mailbox's own address"),
    ('approval = "required"', 'email = "editor@example.net"', "", False, "nothing reads [mailbox] for your reply"),
    ('approval = "required"', 'email = "Ed <Editor@example.net>"', "maildir = 'box'", False,
     "digest does not know that server's name: every approval by reply would be refused"),
    ('approval = "required"', 'email = "Ed <Editor@example.net>"', "maildir = 'box'\nauthserv_id = 'mx.example.net'",
     True, 'the review goes to editor@example.net; a reply "approve" from that address (DKIM or SPF passing, as '
           "mx.example.net writes it: [mailbox] authserv_id)"),
    ('approval = "required"', 'email = "editor@example.net"', "imap_host = 'imap.gmail.com'\nimap_user = 'p'", True,
     "as mx.google.com writes it: Google Workspace's receiving servers"),
])
def test_approval_someone_is_asked_and_in_mail_mode_the_reply_is_read(tmp_path, lists, editor, mailbox, ok, said):
    found = mail_checks.approval(write_config(tmp_path, lists=lists, editor=editor, mailbox=mailbox))
    assert (found.ok, found.check) == (ok, "approval") and said in found.detail, found
    assert found.ok or found.fix


def test_approval_without_the_receiving_servers_name_says_where_to_find_it(tmp_path):
    found = mail_checks.approval(write_config(tmp_path, lists='approval = "required"',
                                              editor='email = "editor@example.net"', mailbox="maildir = 'box'"))
    assert not found.ok and found.fix == ("set [mailbox] authserv_id: open a mail you received in the mailbox, show "
                                          "its original, and copy the first word after Authentication-Results:")


@pytest.mark.parametrize(("configured", "address", "imap_host", "trusted"), [
    ("", "pickoftheweek@gmail.com", "", ("mx.google.com", "Gmail's receiving servers")),
    ("", "pickoftheweek@googlemail.com", "imap.gmail.com", ("mx.google.com", "Gmail's receiving servers")),
    ("", MAILBOX, "IMAP.gmail.com.", ("mx.google.com", "Google Workspace's receiving servers")),
    ("", "pickoftheweek@fastmail.com", "imap.fastmail.com", ("", "")),          # not in Fastmail's documentation
    ("", MAILBOX, "", ("", "")),                                                  # a Maildir of one's own domain
    ("mx1.example.net", "pickoftheweek@gmail.com", "", ("mx1.example.net", "[mailbox] authserv_id")),
])
def test_the_name_trusted_is_the_one_set_else_the_providers_known_one(configured, address, imap_host, trusted):
    assert providers.authserv_id(configured, address, imap_host) == trusted


def test_approval_with_a_public_address_needs_only_the_editor(tmp_path):
    settings = write_config(tmp_path, lists='approval = "required"', editor='email = "editor@example.net"',
                            web='base_url = "https://digest.onprobation-digest.org"')
    found = mail_checks.approval(settings)
    assert not settings.mail_mode and found.ok and "approve on the desk" in found.detail


# ------------------------------------------------------------------ the provider's limits

def gmail_settings(tmp_path: Path, readers: int, **options: str) -> config.Settings:
    (tmp_path / "weekly.csv").write_text("email,name\n" + "".join(f"reader{n}@example.org,R{n}\n"
                                                                 for n in range(readers)), encoding="utf-8")
    settings = write_config(tmp_path, **options)
    smtp = settings.sending.smtp.model_copy(update={"host": "smtp.gmail.com", "port": 587, "security": "starttls",
                                                    "username": "pickoftheweek@gmail.com"})
    sending = settings.sending.model_copy(update={"smtp": smtp, "from_": "Pick <pickoftheweek@gmail.com>"})
    return settings.model_copy(update={"sending": sending})


def test_a_list_past_gmails_daily_limit_is_told_where_to_move_before_a_send(tmp_path):
    """The day's other letters take room: 50 sign-up confirmations at most (a tenth of
    Gmail's 500), and the review, notice and blog post of each list (3): 447 readers fit, 448 do not."""
    over = mail_checks.limits(gmail_settings(tmp_path, 600))
    assert not over.ok
    assert over.detail.startswith("list weekly has 600 subscribers; with room for 53 other letters (50 sign-up "
                                  "confirmations at most, 3 for you and the blog) that is 653 a day, more than "
                                  "Gmail's limit of 500 messages a day")
    assert "support.google.com/mail/answer/22839" in over.detail
    assert over.fix.startswith("before the next send, move to Google Workspace") and "SendGrid" in over.fix
    assert not mail_checks.limits(gmail_settings(tmp_path, 448)).ok
    edge = mail_checks.limits(gmail_settings(tmp_path, 447))
    assert edge.ok and "that is 500 a day, within Gmail's limit of 500 messages a day" in edge.detail
    assert "(near it" in edge.detail
    within = mail_checks.limits(gmail_settings(tmp_path, 300))
    assert within.ok and within.detail.startswith("list weekly has 300 subscribers; with room for 53 other letters")
    assert "that is 353 a day, within Gmail" in within.detail and "near" not in within.detail


def test_lists_that_each_fit_but_not_together_are_told(tmp_path):
    """Two lists may go the same day: their sizes add up (with the room for letters, 3 more per list)."""
    (tmp_path / "monthly.csv").write_text("email,name\n" + "".join(f"m{n}@example.net,M{n}\n" for n in range(200)),
                                          encoding="utf-8")
    monthly = '\n[[lists]]\nname = "monthly"\nfile = "monthly.csv"\n'
    both = mail_checks.limits(gmail_settings(tmp_path, 300, lists=monthly))
    assert not both.ok and both.detail.startswith(
        "lists weekly (300) and monthly (200) have 500 subscribers (all may go the same day); with room for 56 other "
        "letters (50 sign-up confirmations at most, 6 for you and the blog) that is 556 a day, more than Gmail's")
    (tmp_path / "monthly.csv").write_text("email,name\nm@example.net,M\n", encoding="utf-8")
    assert mail_checks.limits(gmail_settings(tmp_path, 300, lists=monthly)).ok


def test_a_send_past_the_mailboxs_daily_limit_says_so_before_it_goes(make_world):
    """`digest send`'s plan (and the scheduled run's) warns before anything goes out."""
    world = make_world(None, 501, backend="smtp", smtp={"host": "smtp.gmail.com", "port": 587,
                                                        "security": "starttls", "username": "pickoftheweek@gmail.com"})
    planned = plan(world.settings, world.db, world.weekly, world.since, world.until)
    assert planned.recipients == 501
    assert any(problem.startswith("501 recipients is more than Gmail's limit of 500 messages a day")
               and "move to Google Workspace" in problem for problem in planned.problems)
    world.write_list([f"reader{n:05d}@example.org" for n in range(500)])
    planned = plan(world.settings, world.db, world.weekly, world.since, world.until)
    assert planned.recipients == 500 and not any("limit" in problem for problem in planned.problems)


def test_subscribers_who_signed_up_count_as_well_as_the_list_file(tmp_path):
    settings = gmail_settings(tmp_path, 300)
    with Database.open(settings.database_url()) as db:
        db.lists.merge("weekly", [Subscriber(f"signed{n}@example.net") for n in range(250)], Origin.WEB,
                       datetime.now(UTC))
    found = mail_checks.limits(settings)
    assert not found.ok and "550 subscribers" in found.detail


def test_a_workspace_account_has_its_own_limit_and_gmails_domain_needs_no_records(tmp_path, zones):
    settings = gmail_settings(tmp_path, 600)
    alias = settings.model_copy(update={"sending": settings.sending.model_copy(
        update={"from_": f"Pick <pick@{DOMAIN}>"})})                     # a Gmail account, From an alias
    assert not mail_checks.limits(alias).ok
    workspace = alias.model_copy(update={"sending": alias.sending.model_copy(
        update={"smtp": alias.sending.smtp.model_copy(update={"username": f"pick@{DOMAIN}"})})})
    found = mail_checks.limits(workspace)
    assert found.ok and "within Google Workspace's limit of 2,000 messages a day" in found.detail
    from digest.live import dns
    lookups = doctor.DnsChecks(settings, dns.resolver())
    for check in (lookups.spf(), lookups.dkim(), lookups.dmarc()):
        assert check.ok and check.detail.startswith("gmail.com: ") and "nothing to publish" in check.detail
    assert not any(name.endswith("gmail.com") for name, _ in zones.asked)
    own = doctor.DnsChecks(workspace, dns.resolver()).spf()                 # a domain of one's own: publish
    assert not own.ok and own.fix == f'publish at {DOMAIN}: TXT "v=spf1 include:_spf.google.com ~all"'


def test_gmails_bulk_sender_line_needs_one_click_unsubscribe(tmp_path):
    rows = "".join(f"reader{n}@gmail.com,R{n}\n" for n in range(5_000)) + "someone@example.org,S\n"
    (tmp_path / "weekly.csv").write_text("email,name\n" + rows, encoding="utf-8")
    by_mail = mail_checks.limits(write_config(tmp_path))
    assert not by_mail.ok and "5,000 subscribers at Gmail" in by_mail.detail and "one-click" in by_mail.detail
    assert "public https address" in by_mail.fix
    public = mail_checks.limits(write_config(tmp_path, web='base_url = "https://digest.onprobation-digest.org"'))
    assert public.ok and "5,001 subscribers" in public.detail


def test_the_json_names_every_check_with_its_four_keys(tmp_path, secret, zones):
    settings = write_config(tmp_path, mailbox=f'maildir = "{tmp_path / "none"}"')
    result = CliRunner().invoke(cli, ["--config", str(Path(settings.config_file)), "doctor", "--json"])
    found = json.loads(result.output)
    assert result.exit_code == 1 and [c["check"] for c in found] == list(doctor.NAMES)
    assert {"approval", "mailbox", "limits"} <= set(doctor.NAMES)
    assert all(set(c) == {"check", "ok", "detail", "fix"} for c in found)
