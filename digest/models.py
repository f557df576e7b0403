"""Plain objects every layer shares, handed from one phase to the next
(fetch -> parse -> store -> select -> render -> deliver). Nothing here does I/O."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, Protocol

import idna
from markupsafe import escape


class DeliveryStatus(StrEnum):
    """A delivery's state (one row of the ledger). IN_FLIGHT is written before the point
    of no return; a row still in flight when a run starts was cut off by a crash and
    becomes `unknown`. The values are what the database stores (in flight is stored as
    "sending")."""

    PENDING = "pending"
    IN_FLIGHT = "sending"    # handed to the mailer, its answer not in yet
    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNKNOWN = "unknown"
    SUPPRESSED = "suppressed"

    @property
    def final(self) -> bool:
        return self in (DeliveryStatus.ACCEPTED, DeliveryStatus.REFUSED, DeliveryStatus.SUPPRESSED)


class EditionStatus(StrEnum):
    HELD = "held"            # frozen, waiting for the editor's approval: nobody is sent anything
    RELEASED = "sending"     # frozen and going out: its deliveries are worked through (stored as "sending")
    SENT = "sent"
    SKIPPED = "skipped"      # the editor (or the approval's time-out) decided it does not go


class PickAction(StrEnum):
    PIN = "pin"
    EXCLUDE = "exclude"


class Origin(StrEnum):
    """How an address came onto a list."""

    FILE = "file"
    CLI = "cli"
    IMPORT = "import"
    WEB = "web"              # the subscriber's own sign-up, confirmed
    EDITOR = "editor"        # added by the editor on the web


class Reason(StrEnum):
    """Why an address must not be mailed."""

    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REMOVED = "removed"


EVERY_LIST = "*"                    # a suppression's list_name when it holds for every list


@dataclass(frozen=True)
class Validators:
    """What a server said about a URL last time: sent back to get a cheap 304."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        sent = {}
        if self.etag:
            sent["If-None-Match"] = self.etag
        if self.last_modified:
            sent["If-Modified-Since"] = self.last_modified
        return sent


@dataclass(frozen=True)
class Post:
    """One blog post as read from a feed. `key` is the source's own id for it."""

    key: str
    title: str
    url: str
    published: datetime
    updated: datetime
    author: str
    html: str                       # sanitised
    text: str                       # plain text of html, for measuring and for text email
    comments_total: int | None      # thr:total / slash:comments; None when the feed says nothing
    comments_feed: str | None       # where this post's own comments are read from
    stub: bool = False              # known only from a comment pointing at it
    original_key: str | None = None  # the feed's id when it was too long to be the key


@dataclass(frozen=True)
class Comment:
    """One comment. `parent_key` is the comment it answers as the feed declares it."""

    key: str
    post_key: str
    author: str
    author_uri: str | None
    published: datetime
    updated: datetime
    url: str
    html: str                       # sanitised; empty for a removed comment
    text: str
    removed: bool = False
    parent_key: str | None = None
    post_url: str | None = None     # from thr:in-reply-to href, to make a stub post
    reply_to: str | None = None     # who it answers, when that is not its thread's top comment
    answers: str | None = None      # the key of the comment it answers, when the feed nests deeper
    original_key: str | None = None  # the feed's id when it was too long to be the key


@dataclass
class FeedPage:
    """What one fetched page of a feed yields."""

    posts: list[Post] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    next_url: str | None = None
    total: int | None = None        # openSearch:totalResults
    feed_url: str | None = None     # the feed's own address, without paging
    warning: str | None = None      # set when the XML was malformed but partly readable
    skipped: Counter[str] = field(default_factory=Counter)   # reason -> items left out


@dataclass
class SourceReport:
    """The outcome of fetching one source: one summary line of `digest fetch`."""

    source: str
    posts_new: int = 0
    posts_updated: int = 0
    comments_new: int = 0
    comments_updated: int = 0
    orphans: int = 0
    requests: int = 0
    not_modified: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: Counter[str] = field(default_factory=Counter)    # reason -> items left out

    @property
    def failed(self) -> bool:
        return self.error is not None

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: FAILED: {self.error}"
        line = (f"{self.source}: posts {self.posts_new} new, {self.posts_updated} updated; "
                f"comments {self.comments_new} new, {self.comments_updated} updated; "
                f"{self.requests} requests, {self.not_modified} not modified")
        if self.orphans:
            line += f"; {self.orphans} orphan replies shown top-level"
        for reason, count in sorted(self.skipped.items()):
            line += f"; {count} item{'s' if count != 1 else ''} skipped: {reason}"
        return line


@dataclass(frozen=True)
class Discussion:
    """A post and every stored comment on it (threaded: parent_key is the real parent)."""

    post: Post
    comments: list[Comment]


@dataclass(frozen=True)
class Picks:
    """The editor's overrides for the next edition of a list: comment keys."""

    pinned: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()

    @classmethod
    def from_actions(cls, chosen: dict[str, PickAction]) -> Picks:
        return cls(frozenset(k for k, a in chosen.items() if a == PickAction.PIN),
                   frozenset(k for k, a in chosen.items() if a == PickAction.EXCLUDE))


@dataclass(frozen=True)
class Edition:
    """One edition, finished but for the per-subscriber tokens.

    Per-subscriber values are tokens with a random per-edition nonce (so no comment can
    contain one), replaced in the finished strings by `personalise`."""

    list_name: str
    since: datetime
    until: datetime
    subject: str
    html: str
    text: str
    web_url: str
    tokens: dict[str, str]              # name -> token in the HTML part
    text_tokens: dict[str, str]         # name -> token in the text part (values not escaped there)
    context: dict[str, Any] = field(repr=False, default_factory=dict)

    def substitutions(self, values: dict[str, str]) -> dict[str, str]:
        """token -> value for both parts: HTML-escaped in the HTML, as is in the text."""
        found = {token: _html(values.get(n, "")) for n, token in self.tokens.items()}
        found.update({token: values.get(n, "") for n, token in self.text_tokens.items()})
        return found

    def personalise(self, values: dict[str, str]) -> tuple[str, str]:
        """(html, text) for one subscriber."""
        table = self.substitutions(values)
        fill = lambda match: table[match.group(0)]  # noqa: E731
        return self._pattern.sub(fill, self.html), self._pattern.sub(fill, self.text)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        every = [*self.tokens.values(), *self.text_tokens.values()]
        return re.compile("|".join(re.escape(t) for t in every) or r"(?!)")

    def html_bytes(self, values: dict[str, str]) -> int:
        return len(self.personalise(values)[0].encode("utf-8"))


@dataclass(frozen=True)
class Letter:
    """A one-off mail outside an edition (a confirmation, a welcome, the editor's review
    copy or a notice), written for its one recipient: nothing in it is substituted."""

    list_name: str                      # the list it is about (its List-Id)
    subject: str
    html: str
    text: str

    def substitutions(self, values: dict[str, str]) -> dict[str, str]:
        return {}

    def personalise(self, values: dict[str, str]) -> tuple[str, str]:
        return self.html, self.text


class Mail(Protocol):
    """What a mailer sends: an Edition (tokens filled per recipient) or a Letter."""

    @property
    def list_name(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    def substitutions(self, values: dict[str, str]) -> dict[str, str]: ...
    def personalise(self, values: dict[str, str]) -> tuple[str, str]: ...


@dataclass(frozen=True)
class Link:
    """A link of an edition's HTML part that leads away from digest (its clicks are counted)."""

    n: int                          # from 1, in the order links first appear
    url: str
    thread: str | None = None       # the key of the thread's top comment it belongs to
    post: str | None = None         # the key of its post
    position: int | None = None     # the thread's place in the edition (1: shown first)


_MARKUP = re.compile("[&<>\"']")


def _html(value: str) -> str:
    """The value escaped for HTML (markupsafe's escaping; most values need none)."""
    return str(escape(value)) if _MARKUP.search(value) else value


@dataclass(slots=True)      # not frozen: one per message, and a frozen __init__ costs 4x
class Outcome:
    """What a mailer says happened to one message."""

    delivery_id: int
    status: DeliveryStatus          # accepted | refused (final) | unknown | pending ("try again later")
    message_id: str | None = None
    error: str | None = None


def email_key(address: str) -> str:
    """The one identity of a mailbox, for matching (dedupe, suppressions, rate limits):
    the local part with its ASCII letters lower-cased, the domain lower-cased and
    IDNA-encoded (punycode), so `John.Smith@Bücher.de`, `john.smith@xn--bcher-kva.de`
    and `JOHN.SMITH@BÜCHER.DE` are one subscriber. Other characters of the local part
    are kept as they are (`straße@` and `strasse@` are two mailboxes). The address as
    written is kept beside it for display."""
    local, _, domain = address.strip().rpartition("@")
    return f"{_ascii_lower(local)}@{ascii_domain(domain)}"


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


@lru_cache(maxsize=4096)                 # per subscriber, and most subscribers share a few domains
def ascii_domain(domain: str) -> str:
    """A domain as it goes on the wire: lower-cased punycode (`bücher.de` -> `xn--bcher-kva.de`)."""
    lowered = domain.strip().lower()
    try:
        return idna.encode(lowered, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return lowered


def wire_address(address: str) -> tuple[str, bool]:
    """(the address with its domain in punycode, whether it needs SMTPUTF8): only a
    local part with non-ASCII characters needs it."""
    local, _, domain = address.strip().rpartition("@")
    wire = ascii_domain(domain)
    return f"{local}@{wire}", not (local.isascii() and wire.isascii())


@dataclass(frozen=True)
class Subscriber:
    """One subscriber of a list as read from a list file, the CLI or the web (not stored yet)."""

    email: str
    name: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    row_hash: int | None = None     # the list-file row it came from (see subscribers.row_hash)

    @property
    def key(self) -> str:
        return email_key(self.email)


@dataclass(frozen=True)
class FileStamp:
    """What a sync remembers of a list file it read whole: its sha256 and its size in
    bytes (None: synced before sizes were kept)."""

    sha256: str
    size: int | None = None


@dataclass
class SyncResult:
    """What a list sync or a merge of subscribers did."""

    added: int = 0
    retired: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)
