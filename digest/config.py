"""Typed settings, read once from config.toml and validated as a whole.

Every problem is reported together, each with its key path
(`config.toml [[sources]][0].url: not a URL`), so one edit fixes them all.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from email.utils import getaddresses, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import backends, hosts
from .errors import ConfigError
from .oneline import one_line

log = logging.getLogger(__name__)
DEFAULT_PATH = Path("config.toml")
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_PERIOD = re.compile(r"(\d{1,5})([hdw])")


def _check_source_url(value: str) -> str:
    """An http(s) or file URL, or a local path (a feed file or a mirror folder)."""
    match = _SCHEME.match(value)
    if match is None or len(match.group(1)) == 1:  # no scheme, or a Windows drive
        return value
    if match.group(1).lower() not in ("http", "https", "file") or "://" not in value:
        raise ValueError("not a URL (use http://, https:// or a local path)")
    if match.group(1).lower() != "file" and not value.split("://", 1)[1].split("/")[0]:
        raise ValueError("not a URL (no host)")
    return value


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise ValueError("not a URL (use http:// or https://)")
    scheme, _, rest = value.partition(":")
    return f"{scheme.lower()}:{rest}".rstrip("/")


def _check_site_url(value: str) -> str:
    """A site's own address, where links are made by appending paths: no user name, no
    query, no fragment (each would end up in the middle of every link)."""
    parts = urlsplit(_check_http_url(value))
    if "@" in parts.netloc:
        raise ValueError("has a user name or password in it; give the plain address (https://host/path)")
    if parts.query or parts.fragment or value.rstrip("/").endswith(("?", "#")):
        raise ValueError("has a ? or # part; links are made by adding paths to it, so give the plain "
                         "address (https://host/path)")
    return parts.geturl()


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
    return value.strip()


def _zone(value: Any) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (use an IANA name such as Europe/London)") from None


def _period(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _PERIOD.fullmatch(str(value))
    if not match:
        raise ValueError("not a period (use a number and h, d or w, e.g. 7d)")
    number, unit = int(match.group(1)), match.group(2)
    length = {"h": timedelta(hours=number), "d": timedelta(days=number), "w": timedelta(weeks=number)}[unit]
    if not timedelta(0) < length <= timedelta(days=366):
        raise ValueError("a period is more than 0 and at most a year (e.g. 7d, 1w, 24h)")
    return length


@dataclass(frozen=True)
class Cron:
    """A list's schedule: the cron line as written and its trigger in the list's zone."""

    line: str
    trigger: CronTrigger

    def __str__(self) -> str:
        return self.line


def _cron(value: Any, zone: ZoneInfo) -> Cron:
    if isinstance(value, Cron):
        return value
    try:
        return Cron(str(value), CronTrigger.from_crontab(str(value), timezone=zone))
    except ValueError as error:
        raise ValueError(f"not a cron line ({error}); use five fields, e.g. 0 7 * * mon") from None


Zone = Annotated[ZoneInfo, BeforeValidator(_zone), PlainSerializer(str)]
Period = Annotated[timedelta, BeforeValidator(_period)]
OptionalPeriod = Annotated[timedelta | None, BeforeValidator(lambda v: None if v in (None, "") else _period(v))]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
SiteUrl = Annotated[str, AfterValidator(_check_site_url)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        """No setting is more than one line: titles, addresses and URLs reach headers."""
        return one_line(value, "the value") if isinstance(value, str) else value


class Site(Section):
    title: str = "Digest"
    """the blog's name, shown in the email"""
    url: HttpUrl | None = None
    """the blog's address"""


class Database(Section):
    url: str = "sqlite:///digest.db"
    """SQLite path, or `postgresql+psycopg://user@host/db`"""

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql")):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return value


class Fetch(Section):
    timeout: float = Field(20.0, gt=0, le=600)
    """seconds per request"""
    max_bytes: int = Field(10_000_000, gt=0, le=1_000_000_000)
    """largest response accepted"""
    retries: int = Field(3, ge=0, le=10)
    """retries after a timeout, connection error, 429 or 5xx (exponential backoff with jitter,
    `Retry-After` honoured)"""
    backoff: float = Field(1.0, ge=0, le=60)
    """first retry delay in seconds, doubled each time, at most 30"""
    user_agent: str = "digest/0.1 (+https://github.com/digest-newsletter/digest)"
    """the User-Agent sent"""
    max_pages: int = Field(200, gt=0, le=100_000)
    """pages read from one feed in one fetch"""
    deadline: float = Field(120.0, gt=0, le=3600)
    """seconds one request may take in all, however slowly the server trickles"""


class Source(Section):
    name: Name
    """short name: lower-case letters, digits, `-`, `_`"""
    url: Annotated[str, AfterValidator(_check_source_url)]
    """the posts feed (http, https, file) or a local path"""
    kind: Literal["blogger", "wordpress", "feed"] | None = None
    """`"blogger"`, `"wordpress"` or `"feed"`"""
    backfill_days: int = Field(30, ge=0, le=36_500)
    """how far back the first fetch reads; 0 = everything"""
    allow_hosts: list[str] = []     # hosts besides the source's own whose links a feed may send us to
    """hosts besides the source's own that its feeds may link to (a blog on a CDN)"""


class Selection(Section):
    threads_per_post: int = Field(3, ge=1, le=100)
    """threads shown per post"""
    replies_per_thread: int = Field(2, ge=0, le=100)
    """replies shown per thread (the longest, shown oldest first)"""
    min_words: int = Field(15, ge=0, le=10_000)
    """comments with fewer words of their own are dropped"""
    max_counted_words: int = Field(400, gt=0, le=100_000)
    """words beyond this do not add to a comment's score"""
    words_weight: float = Field(1.0, ge=0, le=1_000_000, allow_inf_nan=False)
    """score per 100 own words of the top comment"""
    reply_weight: float = Field(1.0, ge=0, le=1_000_000, allow_inf_nan=False)
    """score per reply"""
    reply_words_weight: float = Field(0.5, ge=0, le=1_000_000, allow_inf_nan=False)
    """score per 100 own words of the replies"""
    replier_weight: float = Field(0.5, ge=0, le=1_000_000, allow_inf_nan=False)
    """score per distinct replier"""
    response_weight: float = Field(1.0, ge=0, le=1_000_000, allow_inf_nan=False)
    """a comment's score per response it drew (a reply, or a later comment answering it)"""
    responder_weight: float = Field(0.5, ge=0, le=1_000_000, allow_inf_nan=False)
    """a comment's score per distinct person who responded"""
    quoted_weight: float = Field(0.5, ge=0, le=1_000_000, allow_inf_nan=False)
    """a comment's score per comment that quoted it"""
    star_replies: int = Field(5, ge=0, le=100)
    """replies shown in the comment of the week's thread"""
    comment_of_the_week: bool = True
    """put the best thread of the edition first"""


class Email(Section):
    templates: str = "templates"
    """folder of the email templates (falls back to the project's own)"""
    max_html_bytes: int = Field(102_000, ge=10_000, le=10_000_000)
    """size budget of the inlined HTML (Gmail clips at about 102 KB)"""
    max_comment_words: int = Field(60, ge=0, le=100_000)
    """longer comments end at a sentence with "Read the rest on the blog" (replies at two
    thirds of it); 0 = whole"""


class MailingList(Section):
    """One list, its values parsed once: timezone a ZoneInfo, period a timedelta,
    schedule a Cron whose trigger runs in the list's zone."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True)

    name: Name
    """the list's name"""
    file: str
    """the editor's CSV: `email, name`, more columns allowed"""
    timezone: Zone = Field(default="Europe/London", validate_default=True)
    """IANA time zone"""
    period: Period = Field(default="7d", validate_default=True)
    """the period an edition covers: `Nh`, `Nd` or `Nw`, at most a year"""
    schedule: Cron = Field(default="0 7 * * mon", validate_default=True)   # type: ignore[assignment]
    """cron line, in the list's time zone"""
    title: str = Field("", max_length=200)          # shown to subscribers; "" = from the site's title
    """the list's name as subscribers see it (pages, feed, confirmation and welcome emails); at most 200 characters"""
    description: str = Field("", max_length=1000)   # one line on the subscribe page; "" = from the period
    """one line on the subscribe page, the archive and the embeddable form; at most 1,000 characters"""
    approval: Literal["none", "required"] = "none"
    """`"required"`: at its scheduled time the edition is built and held, the editor gets it to review
    (`[editor].email`), and it goes only when approved (`digest approve`, or the web editor)"""
    approve_within: OptionalPeriod = None
    """how long a held edition waits for the editor (`Nh`, `Nd`, `Nw`); unset: as long as it takes"""
    on_timeout: Literal["skip", "send"] = "skip"
    """what happens to a held edition nobody answered within `approve_within`"""

    @field_validator("schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: Any, info: ValidationInfo) -> Cron:
        return _cron(value, info.data.get("timezone") or ZoneInfo("UTC"))


class SendGrid(Section):
    api_key_env: str = "SENDGRID_API_KEY"
    """environment variable holding the API key"""
    host: HttpUrl = "https://api.sendgrid.com"
    """SendGrid's API address"""
    batch_size: int = Field(1000, ge=1, le=1000)
    """personalizations per request (SendGrid's maximum)"""
    timeout: float = Field(30.0, gt=0, le=600)
    """seconds to wait for SendGrid's answer"""
    retries: int = Field(5, ge=0, le=20)
    """retries after 429, 5xx or a connection failure"""
    backoff: float = Field(1.0, ge=0, le=60)
    """first retry delay in seconds, doubled each time (jitter added, at most 60)"""
    concurrency: int = Field(4, ge=1, le=64)
    """requests in flight at once (each up to batch_size personalizations); a 429 slows them all"""


class Smtp(Section):
    host: str = "localhost"
    """SMTP server"""
    port: int = Field(25, gt=0, lt=65536)
    """SMTP port"""
    security: Literal["none", "starttls", "tls"] = "none"
    """`"none"`, `"starttls"` or `"tls"`"""
    username: str = ""
    """login name; empty = no login"""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    """environment variable holding the SMTP password"""
    timeout: float = Field(30.0, gt=0, le=600)
    """seconds per SMTP command"""
    ca_file: str = ""             # PEM file of the CA that signs the relay's certificate; "" = the system's
    """PEM file of the CA that signs the relay's certificate; empty = the system's trust store"""
    verify: bool = True           # false only on purpose: TLS without checking who answers
    """check the relay's certificate and name; `false` only on purpose (a warning is logged)"""
    connections: int = Field(4, ge=1, le=100)
    """connections to the relay at once, each sending its messages one after another (TLS and
    login once per connection)"""


class Outbox(Section):
    dir: str = "outbox"
    """folder for .eml files"""


class Sending(Section):
    backend: str = "outbox"
    """`"sendgrid"`, `"smtp"` or `"outbox"` (the modules of digest/send/mailers/ register them)"""
    from_: str = Field("Digest <digest@example.org>", alias="from")
    """the From address"""
    retry_delay_seconds: float = Field(60.0, ge=0, le=86_400)
    """wait after a "try again later" answer, doubled per attempt (at most an hour)"""
    retry_within_run_seconds: float = Field(300.0, ge=0, le=86_400)
    """how long one run waits, in all, for deferred messages before leaving them to the next"""
    max_attempts: int = Field(10, ge=1, le=100)
    """"try again later" answers before a message counts as refused"""
    dkim_selector: str = Field("", max_length=63, pattern=r"^[A-Za-z0-9._-]*$")
    """the DKIM selector mail is signed with, which `digest doctor` looks up (SendGrid: `s1` and
    `s2` when empty)"""
    spf_include: str = Field("", max_length=253, pattern=r"^[A-Za-z0-9._-]*$")
    """the domain your relay asks you to include in SPF (`include:` it names), which `digest
    doctor` looks for; empty: the relay's own addresses are checked"""
    max_per_second: float | None = Field(None, ge=0.01, le=100_000)
    """the relay's rate limit in messages a second (at least 0.01: one every 100 s), shared by
    every connection or request of a sender process (two senders on PostgreSQL: give each its
    share); unset: none"""
    max_per_hour: int | None = Field(None, gt=0, le=100_000_000)
    """the relay's hourly quota (counting what every sender sent in the last hour when a send
    starts); once reached the rest waits, and the scheduler resumes it when the hour has
    passed; unset: none"""
    lease_seconds: int = Field(60, ge=2, le=3600)
    """a batch taken by a sender is its own for this long, renewed while it works; a sender that
    died leaves its batch to the others after it (PostgreSQL: several senders share an edition)"""
    sendgrid: SendGrid = SendGrid()
    smtp: Smtp = Smtp()
    outbox: Outbox = Outbox()

    @property
    def smtputf8(self) -> bool:
        """Whether the backend can take an address whose local part is not ASCII, as it
        declares (SMTP with a relay that offers SMTPUTF8, and the outbox; SendGrid cannot)."""
        return backends.takes_smtputf8(self.backend)

    @field_validator("backend")
    @classmethod
    def _registered(cls, value: str) -> str:
        if backends.find(value) is None:
            raise ValueError(f"must be {backends.choices()}")
        return value

    @field_validator("from_")
    @classmethod
    def _has_address(cls, value: str) -> str:
        if len(getaddresses([value])) > 1:          # "Blog <a@myblog.org>, spoof@bank.com"
            raise ValueError("holds more than one address; use one, e.g. 'Name <address@example.org>'")
        _, address = parseaddr(value)
        if "@" not in address or not address.isascii():
            raise ValueError("no usable address; use 'Name <address@example.org>' (ASCII address)")
        return value


class Tracking(Section):
    clicks: Literal["edition", "off"] = "edition"
    """`"edition"`: the HTML part's links to the blog go through `digest serve`, which counts each
    link's clicks for the edition (never who clicked; nothing is shared with anyone) and redirects
    to it; `"off"`: direct links. The plain-text part always has direct links; opens are never
    tracked"""


class Mailbox(Section):
    """The one mailbox digest reads ([bounces] before: the same keys, still read): bounces,
    complaints, and in mail mode sign-ups, confirmations, unsubscribes and approvals."""

    address: str = Field("", max_length=254)
    """the mailbox's own address, e.g. `pickoftheweek@gmail.com`: readers and the editor write to
    plus addresses on it (`pickoftheweek+subscribe-weekly@gmail.com`, tokened ones to unsubscribe,
    confirm and approve); empty: nothing is done by mail but reading bounces"""
    plus_addresses: bool = True
    """whether the provider delivers `local+anything@domain` to `local@domain` (`digest doctor`
    mails one to itself to find out); false: the token travels in the subject of a mail to the
    plain address instead"""
    maildir: str = ""
    """a Maildir folder the mailbox is delivered to (its `new/` is read); or the `imap_`
    settings; neither: no mailbox is read"""
    imap_host: str = ""
    """the IMAP server of the mailbox (TLS, always verified)"""
    imap_port: int = Field(993, gt=0, lt=65536)
    """its port (993: IMAP over TLS)"""
    imap_user: str = ""
    """the mailbox's user name"""
    imap_password_env: str = "DIGEST_IMAP_PASSWORD"
    """environment variable holding the mailbox's password"""
    imap_folder: str = Field("INBOX", min_length=1, max_length=200)
    """the folder mail to the address arrives in"""
    imap_ca_file: str = ""
    """PEM file of the CA that signs the IMAP server's certificate; empty: the system's trust store"""
    return_path: str = Field("", max_length=254)
    """the envelope sender (Return-Path) of SMTP mail, e.g. `bounces@yourblog.org`: each message
    then goes out from `bounces+TOKEN@yourblog.org` (VERP), TOKEN signed and naming the subscriber,
    so a bounce finds its subscriber whatever it quotes; empty: the From address"""
    soft_limit: int = Field(3, ge=1, le=100)
    """soft bounces (a full mailbox, a server down) in this many editions in a row suppress the
    subscriber; a hard bounce or a complaint suppresses at once"""
    poll_minutes: int = Field(5, ge=1, le=1440)
    """how often `digest schedule` reads the mailbox (and once after each send)"""
    authserv_id: str = Field("", max_length=253)
    """the name the server that receives the mailbox's mail writes first in the
    Authentication-Results it adds (open a mail in the mailbox, show its original, and copy
    the first word after `Authentication-Results:`, e.g. `mx.google.com`); only a reply whose
    topmost Authentication-Results carries it (or a name below it: `mx1.example.net` under
    `example.net`) may approve by reply; `none-given`: a topmost one that names no server (as
    Microsoft's); empty: the provider's own name when digest knows it (Gmail and Google
    Workspace: `mx.google.com`), else approve by reply is refused"""

    @field_validator("authserv_id")
    @classmethod
    def _server_name(cls, value: str) -> str:
        name = value.strip().rstrip(";").rstrip(".").lower()             # as copied: `mx.google.com;`
        label = r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?"
        if name and name != "none-given" and not re.fullmatch(rf"{label}(\.{label})*", name):
            raise ValueError("not a server name; copy the first word after Authentication-Results: in a mail the "
                             "mailbox received, e.g. mx.google.com (or none-given when it names none)")
        return name

    @field_validator("return_path")
    @classmethod
    def _verp_address(cls, value: str) -> str:
        return _plus_able(value, "one like bounces@yourblog.org", MAX_RETURN_LOCAL, "+TOKEN")

    @field_validator("address")
    @classmethod
    def _plain_address(cls, value: str) -> str:
        return _plus_able(value, "the mailbox's own, like pickoftheweek@gmail.com", MAX_PLUS_LOCAL,
                          "+unsubscribe-TOKEN")

    @model_validator(mode="after")
    def _one_mailbox(self) -> Mailbox:
        if self.maildir and self.imap_host:
            raise ValueError("set maildir or imap_host, not both: digest reads one mailbox")
        if self.imap_host and not self.imap_user:
            raise ValueError("imap_host is set without imap_user; set the mailbox's user name")
        return self

    @property
    def kind(self) -> str:
        """"maildir", "imap" or "" (none configured)."""
        return "maildir" if self.maildir else "imap" if self.imap_host else ""


def _plus_able(value: str, example: str, longest: int, tag: str) -> str:
    """A plain address digest adds `+tag` to (lower-cased), or "" (not set)."""
    if not value:
        return value
    local, at, domain = value.rpartition("@")
    if not at or not RETURN_LOCAL.fullmatch(local) or not RETURN_DOMAIN.fullmatch(domain):
        raise ValueError(f"not a plain address; use {example} "
                         "(letters, digits, . _ -; no name, no +)")
    if len(local) > longest:
        raise ValueError(f"the part before the @ is over {longest} characters; with {tag} it would pass the 64 "
                         "an address may have")
    return value.lower()


MAX_RETURN_LOCAL = 44       # bounces+TOKEN: TOKEN takes at most 19 characters and the +, of 64
MAX_PLUS_LOCAL = 30         # LOCAL+unsubscribe-TOKEN: the longest tag takes 12 + 20 characters and the +, of 64
RETURN_LOCAL = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")                      # a dot-atom, without +
RETURN_DOMAIN = re.compile(r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


class Publish(Section):
    mail_to: str = Field("", max_length=254)
    """the blog's post-by-email address (Blogger's "Posting using email" secret address, or WordPress'
    post-by-email address): each edition goes there once after its list send, as a post with
    nothing personal in it; empty: nothing is posted"""
    url: str = ""
    """where the posted editions are read on the blog (e.g. its "Pick of the Week" label page): in
    mail mode the mail's "view in a browser" link; empty: the digest's own archive"""

    @field_validator("mail_to")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if value and ("@" not in parseaddr(value)[1] or len(getaddresses([value])) > 1 or value != parseaddr(value)[1]):
            raise ValueError(f"not an address; {POST_BY_EMAIL}")
        return _mailable(value, POST_BY_EMAIL) if value else value

    @field_validator("url")
    @classmethod
    def _page(cls, value: str) -> str:
        return _check_http_url(value) if value else value


POST_BY_EMAIL = "give the post-by-email address alone, e.g. name.secret@blogger.com"


def _mailable(address: str, example: str) -> str:
    """An address digest mails, checked as subscribers' are (email-validator, syntax only, no
    DNS: send/subscribers.check_address), its part before the @ in ASCII: no quotes, spaces,
    bracketed IP address, dotless or special-use domain (localhost)."""
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise ValueError(f"not an address digest can mail ({str(error).rstrip('.')}); {example}") from None
    return address


class Schedule(Section):
    misfire_grace_minutes: int = Field(360, ge=1, le=10_080)
    """how late a missed run may still go out after downtime"""
    retries: int = Field(6, ge=0, le=20)
    """retries of a scheduled run that failed, in a row"""
    retry_minutes: float = Field(1.0, gt=0, le=1440)
    """first retry delay in minutes, doubled each time"""


class Web(Section):
    base_url: SiteUrl = "http://localhost:8000"
    """address used in links in emails"""
    secret_key_env: str = "DIGEST_SECRET_KEY"
    """environment variable holding the signing key"""
    insecure_dev_mode: bool = False
    """sign links with a public dev key when the secret is not set (the demo only; every page says
    so; the editor still needs its password; real backends refuse to send)"""
    editor_password_env: str = "DIGEST_EDITOR_PASSWORD"
    """environment variable holding the editor's password"""
    webhook_public_key_env: str = "SENDGRID_WEBHOOK_PUBLIC_KEY"
    """environment variable holding SendGrid's webhook verification key"""
    webhook_max_age_seconds: int = Field(600, gt=0, le=86_400)
    """webhook requests with an older timestamp are refused"""
    confirm_max_age_hours: int = Field(72, gt=0, le=24 * 31)
    """how long a subscription confirmation link works"""
    session_hours: float = Field(12.0, gt=0, le=24 * 31)
    """how long an editor's login lasts (server-side; logout ends it sooner)"""
    trusted_proxies: list[Annotated[str, AfterValidator(_network)]] = Field([], max_length=100)
    """addresses (or networks, `10.0.0.0/8`) of the reverse proxies in front of `digest serve`
    whose `X-Forwarded-For`, `-Proto` and `-Host` are believed; from anyone else they are
    ignored"""


class Editor(Section):
    email: str = ""
    """where the editor hears from digest: an edition held for review, and a notice after every run
    (sent, skipped, failed); empty: nothing is mailed to the editor"""
    webhook_url: str = ""
    """optional: the same notices posted as JSON (`text` for Slack, `content` for Discord) to this https URL"""

    @field_validator("email")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if value and ("@" not in parseaddr(value)[1] or len(getaddresses([value])) > 1):
            raise ValueError("not an address; use one, e.g. editor@yourblog.org")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not re.match(r"^https://[^/\s]+", value):
            raise ValueError("use an https:// URL (Slack's or Discord's incoming webhook)")
        return value


class Settings(Section):
    """The whole of config.toml. `root` is the folder relative paths are read from."""

    site: Site = Site()
    database: Database = Database()
    fetch: Fetch = Fetch()
    sources: list[Source] = []
    selection: Selection = Selection()
    email: Email = Email()
    lists: list[MailingList] = []
    sending: Sending = Sending()
    schedule: Schedule = Schedule()
    web: Web = Web()
    editor: Editor = Editor()
    tracking: Tracking = Tracking()
    mailbox: Mailbox = Mailbox()
    publish: Publish = Publish()
    root: Path = Field(Path("."), exclude=True)
    origin: str = Field("config.toml", exclude=True)     # the settings file's name, for messages

    @model_validator(mode="before")
    @classmethod
    def _bounces_is_mailbox(cls, data: Any) -> Any:
        """[bounces] (the name before [mailbox]) is read as [mailbox], with one deprecation line."""
        if not isinstance(data, dict) or "bounces" not in data:
            return data
        if "mailbox" in data:
            raise ValueError("[bounces] and [mailbox] are both set; [bounces] is the old name of [mailbox]: "
                             "move its keys there")
        old = data["bounces"]
        if isinstance(old, dict) and "every_minutes" in old and "poll_minutes" in old:
            raise ValueError("[bounces]: every_minutes and poll_minutes are the same setting; keep poll_minutes")
        moved = {("poll_minutes" if k == "every_minutes" else k): v for k, v in old.items()} \
            if isinstance(old, dict) else old
        log.warning("%s: [bounces] is now called [mailbox] (the same keys; every_minutes is poll_minutes); "
                    "rename it", data.get("origin", "config.toml"))
        return {**{k: v for k, v in data.items() if k != "bounces"}, "mailbox": moved}

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for key, items in (("sources", self.sources), ("lists", self.lists)):
            names = [item.name for item in items]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"[[{key}]] name {repeated[0]!r} is used twice; names must differ")
        return self

    @property
    def mail_mode(self) -> bool:
        """Whether digest runs by mail: [mailbox].address is set and [web].base_url is not a public
        address (nobody outside can reach `digest serve`), so readers and the editor act by mail."""
        return by_mail(self.mailbox, self.web.base_url)

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return _resolve(self.root, value)

    @property
    def config_file(self) -> str:
        """The settings file actually read, for messages."""
        return str(Path(self.root) / self.origin)

    def write_settings(self) -> WriteSettings:
        return WriteSettings(self.selection, self.path(self.email.templates), self.email.templates,
                             self.email.max_html_bytes, self.email.max_comment_words, self.site.title,
                             self.site.url, self.web.base_url,
                             self.tracking.clicks != "off" and not self.mail_mode,
                             self.publish.url if self.mail_mode else "")

    def send_settings(self) -> SendSettings:
        """[sending] and what it needs; in mail mode clicks are not counted (nothing can reach
        `digest serve` to count them): links go straight to the blog."""
        return SendSettings(self.sending, self.web.base_url, self.web.secret_key_env, self.web.insecure_dev_mode,
                            self.root, self.config_file,
                            Tracking(clicks="off") if self.mail_mode else self.tracking, self.mailbox)

    def database_url(self) -> str:
        """The database URL, with a relative SQLite path made relative to `root`."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:" and not url.startswith(prefix + "/"):
            return prefix + str(self.path(url[len(prefix):]))
        return url

    def source(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)

    def mailing_list(self, name: str) -> MailingList | None:
        return next((item for item in self.lists if item.name == name), None)


# ------------------------------------------------------------------ what each phase sees

@dataclass(frozen=True)
class WriteSettings:
    """What the write phase uses: the selection knobs it hands to pick, the templates
    (an absolute folder), the size budget, the site and the public address its links use."""

    selection: Selection
    templates: Path
    templates_setting: str          # [email].templates as written, for messages
    max_html_bytes: int
    max_comment_words: int
    site_title: str
    site_url: str | None
    base_url: str
    track_clicks: bool = True       # links will go through base_url (the size budget counts them so)
    view_url: str = ""              # "view in a browser" ([publish].url in mail mode); "": the archive


@dataclass(frozen=True)
class SendSettings:
    """What the send phase uses: [sending] whole, the public address its links use, how
    links are signed, and paths made absolute (list files, the outbox, the relay's CA)."""

    sending: Sending
    base_url: str
    secret_key_env: str
    insecure_dev_mode: bool
    root: Path
    config_file: str                # the settings file read, for messages
    tracking: Tracking = Tracking()
    mailbox: Mailbox = Mailbox()

    @property
    def mail_mode(self) -> bool:
        """As Settings.mail_mode: readers act by mail."""
        return by_mail(self.mailbox, self.base_url)

    @property
    def backend(self) -> str:
        return self.sending.backend

    @property
    def smtputf8(self) -> bool:
        return self.sending.smtputf8

    def path(self, value: str) -> Path:
        """A path from the config (a list file, the outbox), relative to its folder."""
        return _resolve(self.root, value)

    @property
    def outbox_dir(self) -> Path:
        return self.path(self.sending.outbox.dir)

    @property
    def smtp_ca_file(self) -> Path | None:
        return self.path(self.sending.smtp.ca_file) if self.sending.smtp.ca_file else None


def by_mail(mailbox: Mailbox, base_url: str) -> bool:
    """Mail mode: a mailbox's address and no public base_url."""
    return bool(mailbox.address) and not _public(base_url)


@lru_cache(maxsize=8)
def _public(base_url: str) -> bool:
    return hosts.public(base_url)          # asked once per subscriber by the send phase: kept


def _resolve(root: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else root / candidate


# ------------------------------------------------------------------ loading

def load(path: Path | str | None = None) -> Settings:
    """Read and validate config.toml; raise ConfigError listing every problem."""
    path = Path(path) if path is not None else DEFAULT_PATH
    data = _read_toml(path)
    return from_dict(data, root=path.resolve().parent, origin=path.name)


def from_dict(data: dict[str, Any], root: Path = Path("."), origin: str = "config.toml") -> Settings:
    try:
        return Settings.model_validate({**data, "root": root, "origin": origin})
    except ValidationError as error:
        old = "bounces" in data and "mailbox" not in data          # said in the old section's name, as written
        seen = {**data, "mailbox": data["bounces"]} if old else data
        problems = [f"{origin} {_describe(e, seen)}" for e in error.errors()]
        raise ConfigError([p.replace(" [mailbox]", " [bounces]", 1) if old else p for p in problems]) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: not found; create it (see README) or pass --config PATH"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read it ({error}); check the file"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML ({error}); fix that line"]) from None


def key_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """('sources', 0, 'url') -> '[[sources]][0].url'; ('sending','smtp','port') -> '[sending.smtp].port'."""
    parts = [p for p in loc if p not in ("function-after",) and not str(p).startswith("function")]
    if not parts:
        return "(top level)"
    if len(parts) == 1:
        return str(parts[0]) if parts[0] not in data else f"[{parts[0]}]"
    head, *rest = parts
    if isinstance(data.get(head), list) and rest and isinstance(rest[0], int):
        index, *rest = rest
        prefix = f"[[{head}]][{index}]"
        return prefix + "".join(f".{p}" for p in rest)
    *tables, last = parts
    return f"[{'.'.join(map(str, tables))}].{last}"


def _describe(error: Any, data: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    where = key_path(loc, data)
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key{_suggest(loc)}"
    if error["type"] == "missing":
        return f"{where}: missing; add it"
    if error["type"] == "literal_error":
        return f"{where}: {error['msg'].replace('Input should be', 'must be')}"
    if error["type"] == "string_pattern_mismatch":
        return f"{where}: use lower-case letters, digits, '-' or '_'"
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc and message.startswith("["):        # a check of the whole file that names its section first
        return message
    return f"{where}: {message}"


def _suggest(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else model
    names = [f.alias or n for n, f in model.model_fields.items() if n not in ("root", "origin")]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(names)}"
