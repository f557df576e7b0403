"""`digest init URL` with no public address: mail mode, written for the mailbox's provider
(Gmail, Fastmail, Outlook.com, iCloud, Yahoo by their domains; Google Workspace by a domain's
MX hosts, asked of a real DNS server on loopback), a summary that says what to do next, and
a sign-up link that `digest mailbox` routes; asked in a real terminal when no option says."""

from __future__ import annotations

import os
import pty
import select
import time
import tomllib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import actions, config
from digest.cli import cli
from digest.errors import UsageError
from digest.live import providers, setup
from digest.signals.addresses import Route, route

from .support.dns_server import DnsServer, Zones
from .support.processes import start_digest


def init(path: Path, url: str, *extra: str):
    return CliRunner().invoke(cli, ["--config", str(path), "init", url, *extra])


def feed(feed_server) -> str:
    return f"{feed_server.base_url}/feeds/posts/default"


def mail_to(link: str) -> EmailMessage:
    """The mail a reader's mail app writes for a mailto: link, as it arrives."""
    parts = urlsplit(link)
    message = EmailMessage()
    message["From"] = "A Reader <reader@example.net>"
    message["To"] = unquote(parts.path)
    message["Subject"] = unquote(parts.query.removeprefix("subject="))
    return message


def test_none_writes_mail_mode_through_gmail_and_says_what_to_do_next(blog, feed_server, tmp_path):
    path = tmp_path / "config.toml"
    result = init(path, feed(feed_server), "--public-url", "none", "--mailbox", "PickOfTheWeek@gmail.com")
    assert result.exit_code == 0, result.output
    settings = config.load(path)
    assert settings.mail_mode and settings.mailbox.address == "pickoftheweek@gmail.com"
    smtp = settings.sending.smtp
    assert (settings.sending.backend, smtp.host, smtp.port, smtp.security, smtp.username) == (
        "smtp", "smtp.gmail.com", 587, "starttls", "pickoftheweek@gmail.com")
    assert settings.sending.from_ == "On Probation digest <pickoftheweek@gmail.com>"
    box = settings.mailbox
    assert (box.kind, box.imap_host, box.imap_port, box.imap_user) == ("imap", "imap.gmail.com", 993,
                                                                       "pickoftheweek@gmail.com")
    assert box.imap_password_env == smtp.password_env == "DIGEST_MAILBOX_PASSWORD" and box.plus_addresses
    text = path.read_text(encoding="utf-8")
    assert "# mail_to = " in text and "Save emails as draft posts" in text and "[publish]" in text
    lines = result.output.splitlines()
    assert lines[1] == f"Wrote {path} (mail mode: pickoftheweek@gmail.com, Gmail)"
    assert any("2-Step Verification" in line and "apppasswords" in line for line in lines)
    assert "  export DIGEST_MAILBOX_PASSWORD='the app password'" in lines
    assert f"  digest --config {path} doctor" in lines
    assert any(line.startswith(f"  digest --config {path} schedule") for line in lines)
    assert 'href="mailto:pickoftheweek+subscribe-weekly@gmail.com?subject=subscribe"' in result.output
    assert result.output.rstrip().endswith("</div>")                        # the snippet, last, whole
    link = actions.signup_mailto(settings, settings.lists[0])               # what the blog's button opens
    assert route(mail_to(link), settings.mailbox) == Route("subscribe", "weekly", "address")


@pytest.mark.parametrize(("address", "provider", "host", "port", "security", "imap"), [
    ("editor@fastmail.com", "Fastmail", "smtp.fastmail.com", 465, "tls", "imap.fastmail.com"),
    ("editor@hotmail.com", "Outlook.com", "smtp-mail.outlook.com", 587, "starttls", "outlook.office365.com"),
    ("editor@me.com", "iCloud Mail", "smtp.mail.me.com", 587, "starttls", "imap.mail.me.com"),
    ("editor@ymail.com", "Yahoo Mail", "smtp.mail.yahoo.com", 465, "tls", "imap.mail.yahoo.com"),
])
def test_each_provider_gets_its_documented_servers(blog, feed_server, tmp_path, address, provider, host, port,
                                                   security, imap):
    path = tmp_path / "config.toml"
    result = init(path, feed(feed_server), "--public-url", "none", "--mailbox", address)
    assert result.exit_code == 0, result.output
    settings = config.load(path)
    smtp = settings.sending.smtp
    assert (smtp.host, smtp.port, smtp.security, settings.mailbox.imap_host) == (host, port, security, imap)
    assert f"(mail mode: {address}, {provider})" in result.output
    text = path.read_text(encoding="utf-8")
    if provider == "Outlook.com":                 # its password logins are gone: said first, loudly
        assert "  # WARNING: since 16 September 2024" in result.output and "OAuth" in result.output
    if provider == "iCloud Mail":                 # not documented: left to the doctor's probe
        assert "# plus_addresses = true" in text and settings.mailbox.plus_addresses
    if provider == "Yahoo Mail":                  # none: the words travel in the subject to the plain address
        assert not settings.mailbox.plus_addresses
        link = "mailto:editor@ymail.com?subject=subscribe%20weekly"
        assert f'href="{link}"' in result.output                             # the blog's button
        assert route(mail_to(link), settings.mailbox) == Route("subscribe", "weekly", "subject")


def test_a_domain_of_ones_own_is_told_by_its_mx_hosts(blog, feed_server, tmp_path, monkeypatch):
    zones = Zones({"onprobation-digest.org": [("MX", "1 aspmx.l.google.com.")],
                   "elsewhere-digest.org": [("MX", "10 mx.elsewhere-digest.org.")]})
    with DnsServer(zones) as server:
        monkeypatch.setenv("DIGEST_NAMESERVER", server.address)
        workspace = init(tmp_path / "a.toml", feed(feed_server), "--mailbox", "digest@onprobation-digest.org")
        unknown = init(tmp_path / "b.toml", feed(feed_server), "--public-url", "none",
                       "--mailbox", "digest@elsewhere-digest.org")
    assert ("onprobation-digest.org", "MX") in zones.asked and ("elsewhere-digest.org", "MX") in zones.asked
    assert workspace.exit_code == 0 and "(mail mode: digest@onprobation-digest.org, Google Workspace)" in \
        workspace.output
    assert config.load(tmp_path / "a.toml").sending.smtp.host == "smtp.gmail.com"
    assert unknown.exit_code == 0, unknown.output
    assert "a provider digest does not know" in unknown.output and "fill in [sending.smtp] host" in unknown.output
    settings = config.load(tmp_path / "b.toml")                # placeholders, commented: it still loads
    assert settings.mail_mode and settings.mailbox.kind == "" and settings.sending.smtp.username == \
        "digest@elsewhere-digest.org"
    assert '# imap_host = "imap.yourprovider.example"' in (tmp_path / "b.toml").read_text(encoding="utf-8")


def test_a_public_address_is_written_and_the_first_steps_stay_as_they_were(blog, feed_server, tmp_path):
    path = tmp_path / "config.toml"
    result = init(path, feed(feed_server), "--public-url", "https://news.example.org/")
    assert result.exit_code == 0, result.output
    settings = config.load(path)
    assert settings.web.base_url == "https://news.example.org" and not settings.mail_mode
    assert settings.sending.backend == "outbox" and result.output.splitlines()[-1].endswith("--out preview.html")


def base_url_line(path: Path) -> str:
    [line] = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("base_url = ")]
    return line


def test_the_base_url_comment_says_what_the_address_given_is(blog, feed_server, tmp_path):
    """An address given that is not public (an example, local or private host) makes mail mode
    with a mailbox, and the comment says so, not that none was given."""
    given = init(tmp_path / "a.toml", feed(feed_server), "--public-url", "https://news.example.org",
                 "--mailbox", "pick@gmail.com")
    assert given.exit_code == 0, given.output
    assert base_url_line(tmp_path / "a.toml") == (
        'base_url = "https://news.example.org"   # an example address, not one readers on the internet can open: '
        "mail mode (readers and you act by mail; the desk runs here only)")
    assert config.load(tmp_path / "a.toml").mail_mode
    public = init(tmp_path / "b.toml", feed(feed_server), "--public-url", "https://digest.onprobation-digest.org",
                  "--mailbox", "pick@gmail.com")
    assert public.exit_code == 0, public.output
    assert base_url_line(tmp_path / "b.toml").endswith("# the public address of `digest serve`: links in emails use it")
    assert not config.load(tmp_path / "b.toml").mail_mode
    none = init(tmp_path / "c.toml", feed(feed_server), "--public-url", "none", "--mailbox", "pick@gmail.com")
    assert none.exit_code == 0 and base_url_line(tmp_path / "c.toml") == (
        'base_url = "http://localhost:8000"   # no public address: mail mode (readers and you act by mail; the desk '
        "runs here only)")
    first = init(tmp_path / "d.toml", feed(feed_server))
    assert first.exit_code == 0 and base_url_line(tmp_path / "d.toml").endswith(
        "# this machine, for a first look: before real mail, the public https address of `digest serve`")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | st.text(alphabet='https:/.newsxampleorg"<>%? #@', max_size=40).map(
    lambda t: "https://news.example.org/" + t))
def test_any_public_url_answer_is_refused_in_one_line_or_a_plain_https_address_that_loads(text):
    try:
        way = setup.choose(text)
    except UsageError as error:
        assert "\n" not in str(error) and str(error)
        return
    if way.public_url:
        assert setup.PLAIN_URL.fullmatch(way.public_url) and way.public_url.startswith("https://")
    written = setup.config_text(setup.Blog("https://b.example.org/feed", "feed", "B", "https://b.example.org"), way)
    assert config.from_dict(tomllib.loads(written)).web.base_url == way.base_url


@pytest.mark.parametrize(("extra", "said"), [
    (["--public-url", "none"], "give the mailbox's address: --mailbox"),
    (["--public-url", "none", "--mailbox", "Pick <pick@gmail.com>"], "not a plain address"),
    (["--mailbox", "pick+weekly@gmail.com"], "no +"),
    (["--mailbox", "a-very-long-local-part-for-plus-addresses@gmail.com"], "over 30 characters"),
    (["--public-url", "ftp://news.example.org"], "not a URL"),
    (["--public-url", "https://user:pw@news.example.org"], "user name or password"),
    (["--public-url", 'https://news.example.org/"><x>'], "not a plain https address"),
    (["--public-url", "https://news.example.org/a b"], "not a plain https address"),
    (["--public-url", "http://news.example.org"], "not https"),
    (["--public-url", ""], "--public-url is empty; pass none (run everything by mail) or the https address"),
    (["--public-url", " ", "--mailbox", "pick@gmail.com"], "--public-url is empty; pass none"),
])
def test_bad_answers_are_one_line_and_nothing_is_written(blog, feed_server, tmp_path, extra, said):
    result = init(tmp_path / "config.toml", feed(feed_server), *extra)
    assert result.exit_code == 2 and result.output.startswith("Error: ") and said in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "config.toml").exists()


@pytest.fixture(scope="module")
def silent_dns():
    with DnsServer(Zones()) as server:          # knows no domain: every MX look-up is answered "none"
        yield server.address


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80) | st.emails())
def test_any_mailbox_answer_is_refused_in_one_line_or_written_into_a_config_that_loads(silent_dns, tmp_path, text):
    try:
        way = setup.choose("none", text, nameserver=silent_dns)
    except UsageError as error:
        assert "\n" not in str(error) and str(error)
        return
    written = setup.config_text(setup.Blog("https://b.example.org/feed", "feed", "B", "https://b.example.org"), way)
    settings = config.from_dict(tomllib.loads(written))
    assert settings.mailbox.address == way.mailbox and settings.mail_mode


def test_the_provider_table_is_whole():
    for provider in providers.PROVIDERS:
        assert provider.smtp_port in (465, 587) and provider.smtp_security == ("tls" if provider.smtp_port == 465
                                                                                else "starttls")
        assert provider.limit_source and provider.password and provider.move_to
    assert providers.by_relay("smtp.gmail.com", "x@gmail.com") is providers.GMAIL
    assert providers.by_relay("SMTP.GMAIL.COM", "x@onprobation-digest.org") is providers.WORKSPACE
    assert providers.by_mx(["in1-smtp.messagingengine.com"]) is providers.FASTMAIL
    assert providers.by_mx(["mx.messagingengine.com.evil.example"]) is None


def test_a_terminal_is_asked_once_and_then_for_the_mailbox(blog, feed_server, tmp_path):
    main, side = pty.openpty()
    path = tmp_path / "config.toml"
    process = start_digest(["--config", str(path), "init", feed(feed_server)], stdin=side, stdout=side, stderr=side)
    os.close(side)
    try:
        seen = _until(main, b"or none: run everything by mail [none]: ")
        os.write(main, b"\n")                                        # the default: none
        seen += _until(main, b"(e.g. pickoftheweek@gmail.com): ")
        os.write(main, b"pickoftheweek@gmail.com\n")
        seen += _until(main, b"by email</a>")
        assert process.wait(timeout=20) == 0, seen
    finally:
        os.close(main)
    assert b"(mail mode: pickoftheweek@gmail.com, Gmail)" in seen
    assert config.load(path).mail_mode


def _until(fd: int, wanted: bytes, seconds: float = 20.0) -> bytes:
    """What the terminal shows until wanted appears (or the deadline passes: the test fails)."""
    seen, ends = b"", time.monotonic() + seconds
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, ends - time.monotonic()))
        assert ready, f"waited for {wanted!r}; the terminal showed {seen!r}"
        try:
            seen += os.read(fd, 4096)
        except OSError:                      # the process ended and closed its side
            break
    assert wanted in seen, seen
    return seen
