"""`digest init URL`: from a blog's address to a commented config.toml and an empty list.

The page is fetched with the same Fetcher (and the same rules) as any feed: http(s)
only, no credentials, redirects within the host, a size cap and timeouts. Its feed is
the URL itself when that is a feed, else the page's `<link rel="alternate"
type="application/atom+xml|rss+xml">` (the posts feed, not the comments feed), else
the usual place of a Blogger or WordPress feed. Nothing from the blog reaches the file
unescaped: titles are cut to one line and written as TOML strings.

It asks once how digest is reached (`Way`): at a public address for `digest serve`, or
by mail only (mail mode): then the mailbox's own address, and the provider's documented
SMTP and IMAP servers are written for it (providers.py; a domain of one's own is told by
its MX hosts), or commented placeholders for a provider digest does not know.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from pydantic import ValidationError

from .. import config, hosts
from ..errors import ConfigError, DigestError, UsageError
from ..oneline import unsafe_characters
from ..read.errors import FeedError, FetchError
from ..read.fetch import Fetcher, allowed_hosts_for
from ..read.parse import detect_kind, read
from . import providers
from .providers import Provider

log = logging.getLogger(__name__)

FEED_TYPES = ("application/atom+xml", "application/rss+xml")
GUESSES = ("/feeds/posts/default", "/feed/")          # Blogger's posts feed, WordPress's
LIST_NAME = "weekly"
LOCAL_URL = "http://localhost:8000"
NONE = "none"
PASSWORD_ENV = "DIGEST_MAILBOX_PASSWORD"       # the app password: IMAP and SMTP take the same one


class SetupError(DigestError):
    """`digest init` cannot go on: no feed found, or a file it would overwrite."""

    exit_code = 2


@dataclass(frozen=True)
class Blog:
    """What init found: the posts feed, its kind, the blog's name and home page."""

    feed_url: str
    kind: str                 # "blogger" | "wordpress" | "feed"
    title: str
    site_url: str


@dataclass(frozen=True)
class Way:
    """How digest is reached: at a public address for `digest serve`, or by mail (a mailbox,
    and no public address: mail mode); neither given: a local address, as for a first look."""

    public_url: str = ""
    mailbox: str = ""                     # the mailbox's own address
    provider: Provider | None = None      # its provider, when digest knows it

    @property
    def base_url(self) -> str:
        return self.public_url or LOCAL_URL

    @property
    def mail_mode(self) -> bool:
        return bool(self.mailbox) and not hosts.public(self.base_url)


@dataclass(frozen=True)
class Written:
    config_path: Path
    list_path: Path
    list_created: bool        # False: a list file was there already and is kept
    blog: Blog
    way: Way = Way()


def choose(public_url: str | None, mailbox: str = "", nameserver: str | None = None) -> Way:
    """The Way from init's answers: public_url a plain https address, "none" (mail mode: then
    mailbox is needed) or None (not asked; never empty); the provider of the mailbox found
    by its domain, or by the MX hosts of a domain of one's own (through DIGEST_NAMESERVER)."""
    if public_url is not None and not public_url.strip():
        raise UsageError("--public-url is empty; pass none (run everything by mail) or the https address of "
                         "digest serve, e.g. https://news.example.org")
    given = (public_url or "").strip()
    if given.lower() == NONE or (not given and mailbox):
        if not mailbox.strip():
            raise UsageError("with no public address digest runs by mail; give the mailbox's address: "
                             "--mailbox pickoftheweek@gmail.com")
        given = ""
    address = _mailbox_address(mailbox) if mailbox.strip() else ""
    return Way(_public_url(given) if given else "", address, _provider(address, nameserver) if address else None)


def _public_url(url: str) -> str:
    """The address as config's site URL check makes it, and a plain https one: a host, a
    port, a path of letters, digits and - . _ ~ / % (nothing to escape in a link or a header)."""
    try:
        checked = config.Web(base_url=url).base_url
    except ValidationError as error:
        reason = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{url!r}: {reason}; {GIVE_URL}") from None
    if not checked.lower().startswith("https://"):
        raise UsageError(f"{url!r}: not https (readers' unsubscribe links need it); {GIVE_URL}")
    if not PLAIN_URL.fullmatch(checked):
        raise UsageError(f"{url!r}: not a plain https address (only letters, digits and - . _ ~ / % after "
                         f"https://, and a :port); {GIVE_URL}")
    return checked


GIVE_URL = "give the address of digest serve, e.g. https://news.example.org, or none"
PLAIN_URL = re.compile(r"https://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._~/%-]*)?", re.IGNORECASE)


def _mailbox_address(address: str) -> str:
    try:
        return config.Mailbox(address=address.strip()).address
    except ValidationError as error:
        reason = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise UsageError(f"{address.strip()!r}: {reason}") from None


def _provider(address: str, nameserver: str | None) -> Provider | None:
    """The provider of address: by its domain, else by the domain's MX hosts (a Google
    Workspace or Fastmail domain of one's own); None when neither says."""
    from . import dns  # here: dnspython only for a domain of one's own
    found = providers.by_address(address)
    domain = providers.domain_of(address)
    if found is not None or hosts.example(domain) or hosts.local(domain) or hosts.private(domain):
        return found
    try:
        return providers.by_mx(dns.Lookups(dns.resolver(nameserver)).mx(domain))
    except dns.LookupFailed as error:
        log.info("the MX hosts of %s are unknown (%s): its provider is not known", domain, error)
        return None


def discover(url: str, fetch: config.Fetch) -> Blog:
    """The blog behind url (a home page, a post or a feed)."""
    url = _checked_url(url)
    with Fetcher(fetch, allowed_hosts=allowed_hosts_for(url, [])) as fetcher:
        page = fetcher.get(url)
        found = _as_feed(page.content, page.url, page.headers)
        if found is not None:
            return found
        for candidate in _feed_links(page.content.decode("utf-8", "replace"), page.url) or _guesses(page.url):
            if urlsplit(candidate).netloc != urlsplit(page.url).netloc:
                raise SetupError(f"{url}: the page names its feed on another host ({candidate}); "
                                 f"run `digest init {candidate}` if that is the blog's feed")
            try:
                feed = fetcher.get(candidate)
            except FetchError as error:
                log.info("no feed at %s: %s", candidate, error)
                continue
            found = _as_feed(feed.content, feed.url, feed.headers, home=page.url)
            if found is not None:
                return found
    raise SetupError(f"{url}: found no RSS or Atom feed on that page; give the blog's feed address "
                     "(Blogger: …/feeds/posts/default, WordPress: …/feed/)")


def _checked_url(url: str) -> str:
    url = url.strip()
    if not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
        if re.match(r"^[\w.-]+\.[a-z]{2,}(/|$)", url, re.IGNORECASE):
            return f"https://{url}"
        raise UsageError(f"{url!r} is not a web address; give the blog's address, e.g. https://yourblog.blogspot.com")
    return url


def _as_feed(content: bytes, url: str, headers: dict[str, str], home: str | None = None) -> Blog | None:
    """The blog this feed is the posts feed of, or None when content is not a feed."""
    if re.match(rb"\s*(<!doctype html|<html)", content[:512], re.IGNORECASE):
        return None
    try:
        parsed = read(content, url, headers)
    except FeedError:
        return None
    links = [link.get("href", "") for link in parsed.feed.get("links", []) if link.get("rel") == "alternate"]
    site = _site_url([*links, parsed.feed.get("link", "")], url) or home
    return Blog(feed_url=url.split("#")[0], kind=detect_kind(parsed), title=_one_line(parsed.feed.get("title", "")),
                site_url=(site or _origin(url)).rstrip("/"))


def _site_url(links: list[object], feed_url: str) -> str | None:
    """The blog's home page from the feed's alternate links: the first http(s) link on the
    feed's own host (www. or not). A link elsewhere is dropped with a warning (a feed does
    not get to point the digest's subscribers at another site); a broken or javascript: one
    quietly."""
    elsewhere = None
    for link in links:
        site = _joined(feed_url, link)
        if site is None:
            continue
        if _bare_host(site) == _bare_host(feed_url):
            return site
        elsewhere = elsewhere or site
    if elsewhere is not None:
        log.warning("%s: the feed names its site on another host (%s); using %s instead",
                    feed_url, _one_line(elsewhere), _origin(feed_url))
    return None


def _joined(base: str, href: object) -> str | None:
    """href made absolute against base when it is an http(s) URL with a host and no
    control characters; None for anything else (javascript:, `http://[::1`, "")."""
    if not isinstance(href, str) or not href.strip():
        return None
    try:
        found = urljoin(base, href.strip())
        parts = urlsplit(found)
        host, _ = parts.hostname, parts.port
    except ValueError:                  # "Invalid IPv6 URL", a bad port
        return None
    if parts.scheme not in ("http", "https") or not host or unsafe_characters(found):
        return None
    return found


def _bare_host(url: str) -> str:
    host = (urlsplit(url).hostname or "").rstrip(".")
    return host.removeprefix("www.")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []         # (href, title)
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        rels = values.get("rel", "").lower().split()
        if tag == "link" and "alternate" in rels and values.get("type", "").split(";")[0].strip().lower() in FEED_TYPES:
            self.found.append((values.get("href", ""), values.get("title", "")))


def _feed_links(html: str, url: str) -> list[str]:
    """The page's feeds, posts feeds first (a comments feed only if nothing else)."""
    parser = _Links()
    parser.feed(html[:2_000_000])
    base = (_joined(url, parser.base) if parser.base else None) or url
    joined = [(_joined(base, href), title) for href, title in parser.found]
    feeds = [(href, title) for href, title in joined if href is not None]
    comments = [href for href, title in feeds if _is_comments_feed(href, title)]
    return [href for href, _ in feeds if href not in comments] + comments


def _is_comments_feed(href: str, title: str) -> bool:
    return "comments" in urlsplit(href).path.lower() or "comments" in title.lower()


def _guesses(url: str) -> list[str]:
    return [urljoin(_origin(url), path) for path in GUESSES]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _one_line(text: str, most: int = 200) -> str:
    """A title from the blog as one clean line: no control characters, no runs of spaces."""
    kept = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in str(text))
    return " ".join(kept.split())[:most].strip()


# ------------------------------------------------------------------ writing

def write(blog: Blog, config_path: Path, force: bool = False, way: Way = Way()) -> Written:
    """Write config.toml (refused when it exists, unless force) and an empty list file
    (kept when it exists); the config is checked with digest's own loader first."""
    if config_path.exists() and not force:
        raise SetupError(f"{config_path} exists already; nothing was written. Run `digest init URL --force` "
                         "to replace it, or use --config to write another file")
    text = config_text(blog, way)
    folder = config_path.resolve().parent
    try:
        config.from_dict(tomllib.loads(text), root=folder, origin=str(config_path))
    except (ConfigError, tomllib.TOMLDecodeError) as error:      # a bug here, not the user's: say so
        raise SetupError(f"the config written for {blog.feed_url} does not load ({error}); please report it") from None
    list_path = folder / "subscribers" / f"{LIST_NAME}.csv"
    created = not list_path.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config_path.write_text(text, encoding="utf-8")
        if created:
            list_path.parent.mkdir(parents=True, exist_ok=True)
            list_path.write_text("email,name\n", encoding="utf-8")
    except OSError as error:
        raise SetupError(f"cannot write {error.filename}: {error.strerror}; check the folder's permissions") from None
    return Written(config_path, list_path, created, blog, way)


def config_text(blog: Blog, way: Way = Way()) -> str:
    """config.toml for the blog, with a comment for each setting an editor changes first."""
    title = _title(blog)
    source = _source_name(blog.site_url)
    head = TEMPLATE.format(
        title=_toml(title), site_url=_toml(blog.site_url), source=_toml(source), feed_url=_toml(blog.feed_url),
        kind=_toml(blog.kind), list=_toml(LIST_NAME), list_title=_toml(_list_title(blog)),
        editor=EDITOR_BY_MAIL if way.mailbox else EDITOR,
    )
    if not way.mailbox:
        sending = OUTBOX.format(sender=_toml(f"{_sender_name(title)} digest <digest@example.org>"))
    else:
        sending = _by_mail(way, f"{_sender_name(title)} digest <{way.mailbox}>")
    return head + sending + WEB.format(base_url=_toml(way.base_url), where=_where(way))


def _title(blog: Blog) -> str:
    return blog.title or urlsplit(blog.site_url).netloc


def _list_title(blog: Blog) -> str:
    return f"The {_title(blog)} digest"


def _where(way: Way) -> str:
    """The comment beside base_url: what the address given is, and what it makes of digest."""
    by_mail = "mail mode (readers and you act by mail; the desk runs here only)"
    if way.mail_mode and way.public_url:
        return f"{_kind(way.public_url)}, not one readers on the internet can open: {by_mail}"
    if way.mail_mode:
        return f"no public address: {by_mail}"
    if not way.public_url:
        return "this machine, for a first look: before real mail, the public https address of `digest serve`"
    return "the public address of `digest serve`: links in emails use it"


def _kind(url: str) -> str:
    host = urlsplit(url).hostname or ""
    if hosts.local(host):
        return "a local address"
    return "a private-network address" if hosts.private(host) else "an example address"


def _by_mail(way: Way, sender: str) -> str:
    """[sending] through the mailbox's provider, [mailbox] read over IMAP, [publish]."""
    provider, address = way.provider, _toml(way.mailbox)
    if provider is None:
        return (SMTP_UNKNOWN + MAILBOX_UNKNOWN).format(sender=_toml(sender), address=address,
                                                       password_env=_toml(PASSWORD_ENV)) + PUBLISH
    plus = {True: "", None: PLUS_UNKNOWN, False: PLUS_NONE}[provider.plus_addresses].format(name=provider.name)
    return (SMTP_KNOWN + MAILBOX_KNOWN).format(
        sender=_toml(sender), address=address, password_env=_toml(PASSWORD_ENV), name=provider.name,
        smtp_host=_toml(provider.smtp_host), smtp_port=provider.smtp_port, security=_toml(provider.smtp_security),
        imap_host=_toml(provider.imap_host), imap_port=provider.imap_port, plus=plus) + PUBLISH


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL escaped too)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _source_name(site_url: str) -> str:
    host = urlsplit(site_url).hostname or "blog"
    host = re.sub(r"^www\.", "", host)
    host = re.sub(r"\.(blogspot|wordpress)\.[a-z.]+$|\.[a-z]+$", "", host)
    name = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:60]
    return name if re.match(config.NAME_PATTERN, name) else "blog"


def _sender_name(title: str) -> str:
    """The From's display name: no characters that need quoting in a header."""
    return re.sub(r'[<>"@,;:\\()\[\]]', "", title).strip()[:60] or "Blog"


TEMPLATE = """\
# digest settings, written by `digest init`. Every setting and its default is in
# docs/reference/settings.md. Paths are relative to this file's folder.

[site]
title = {title}
url = {site_url}

[database]
url = "sqlite:///digest.db"          # or postgresql+psycopg://user@host/db

[[sources]]
name = {source}
url = {feed_url}
kind = {kind}                       # "blogger", "wordpress" or "feed"
backfill_days = 30                  # how far back the first fetch reads; 0 = everything

[[lists]]
name = {list}                       # the list's name in commands and URLs
title = {list_title}                # what subscribers see
# description = "The best of the discussion, in one email a week."
file = "subscribers/weekly.csv"      # columns: email, name (exports from Mailchimp, Substack, Buttondown work too)
schedule = "0 7 * * mon"             # cron, in the list's time zone: Mondays at 07:00
timezone = "Europe/London"
period = "7d"
approval = "required"                # the scheduled run holds the edition until you approve it
                                     # (`digest approve weekly`, or the web editor); "none": it just goes
# approve_within = "24h"             # and if nobody answers in time:
# on_timeout = "skip"                # "skip" it, or "send" it as it is

{editor}"""


EDITOR = """[editor]
email = ""                           # your address: the held edition to review, and a notice after every run
# webhook_url = "https://hooks.slack.com/..."   # the same notices as JSON (Slack, Discord)

"""

EDITOR_BY_MAIL = """[editor]
email = ""                           # YOUR own address (not the mailbox's): the held edition comes there to
                                     # review; reply "approve" (or "skip") from it. A notice after every run too
# webhook_url = "https://hooks.slack.com/..."   # the same notices as JSON (Slack, Discord)

"""

OUTBOX = """[sending]
backend = "outbox"                   # .eml files to look at; "smtp" or "sendgrid" to send for real
from = {sender}   # put your own address here before real mail

[sending.outbox]
dir = "outbox"

# [sending.smtp]
# host = "smtp.example.org"
# port = 587
# security = "starttls"
# username = "digest"                # the password goes in $DIGEST_SMTP_PASSWORD

"""

SMTP_KNOWN = """[sending]
backend = "smtp"                     # through the mailbox's own provider ({name})
from = {sender}

[sending.smtp]
host = {smtp_host}
port = {smtp_port}
security = {security}
username = {address}
password_env = {password_env}   # the app password (see `digest init`'s summary), IMAP's too

"""

SMTP_UNKNOWN = """[sending]
backend = "smtp"                     # through the mailbox's own provider: fill in its SMTP submission server
from = {sender}

[sending.smtp]
# host = "smtp.yourprovider.example"   # your provider's SMTP submission server (its help pages name it)
# port = 587                         # 587 with "starttls", or 465 with "tls"
# security = "starttls"
username = {address}
password_env = {password_env}   # the password (or app password) of the mailbox, IMAP's too

"""

MAILBOX_KNOWN = """\
[mailbox]                            # the mailbox digest reads: sign-ups, unsubscribes, approvals, bounces
address = {address}
imap_host = {imap_host}
imap_port = {imap_port}
imap_user = {address}
imap_password_env = {password_env}
{plus}poll_minutes = 5                     # how often `digest schedule` reads it

"""

MAILBOX_UNKNOWN = """\
[mailbox]                            # the mailbox digest reads: sign-ups, unsubscribes, approvals, bounces
address = {address}
# imap_host = "imap.yourprovider.example"   # your provider's IMAP server (TLS, port 993)
# imap_port = 993
# imap_user = {address}
# imap_password_env = {password_env}
# plus_addresses = true              # `digest doctor` mails itself to find out; false: the subject carries the words
poll_minutes = 5                     # how often `digest schedule` reads it

"""

PLUS_UNKNOWN = """\
# plus_addresses = true              # {name} does not document them: `digest doctor` mails itself to find out
"""

PLUS_NONE = """\
plus_addresses = false               # {name} has no plus addresses: the subject of a mail carries the words
"""

PUBLISH = """[publish]                            # optional: each edition once, as a post on the blog
# mail_to = "yourname.secretwords@blogger.com"   # Blogger: Settings > Email > Posting using email; choose
#                                    # "Save emails as draft posts" and publish each with one click
# url = "https://yourblog.blogspot.com/search/label/Pick%20of%20the%20Week"   # "view in a browser" goes there

"""

WEB = """[web]
base_url = {base_url}   # {where}
# secret_key_env = "DIGEST_SECRET_KEY"            # set it before real mail: it signs unsubscribe links
# editor_password_env = "DIGEST_EDITOR_PASSWORD"
"""


def next_commands(written: Written, default_config: bool) -> list[str]:
    """What to run next: three commands; by mail, the password to create and export, the
    secret, the editor's address, then fetch, doctor and schedule (shell comments say why)."""
    where = "" if default_config else f" --config {written.config_path}"
    if written.way.mailbox:
        return _by_mail_steps(written, where)
    return [f"digest{where} fetch",
            f"digest{where} subscribers add {LIST_NAME} you@example.org",
            f"digest{where} preview {LIST_NAME} --out preview.html"]


def _by_mail_steps(written: Written, where: str) -> list[str]:
    provider = written.way.provider
    if provider is None:
        first = ["# fill in [sending.smtp] host and [mailbox] imap_host in the config: your provider's SMTP "
                 "submission and IMAP servers (its help pages name them)"]
    else:
        first = ([f"# WARNING: {provider.caveat}"] if provider.caveat else []) + [f"# {provider.name}: "
                                                                               f"{provider.password}"]
    return [*first,
            f"export {PASSWORD_ENV}='the app password'",
            "export DIGEST_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')",
            "# put your own address (the one you approve from) in [editor] email",
            f"digest{where} fetch",
            f"digest{where} doctor",
            f"digest{where} schedule          # on a machine that is on now and then: a laptop, a Raspberry Pi"]
