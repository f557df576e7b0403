"""The doctor's checks of what mail mode (and approval) depends on: `approval` (someone is
asked, and in mail mode a mailbox reads the reply and digest knows whose Authentication-Results
to believe), `mailbox` (it opens, and plus addresses arrive: the probe), `limits` (the lists
together against the relay provider's daily limit, and
Google's bulk-sender line), and what `public_url` says in mail mode."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path

from .. import backends, hosts
from ..config import MailingList, Settings
from ..db import Database, NoDatabase
from ..errors import DigestError
from ..send.mailers import MailerError
from ..signals.mailbox import Mailbox, MailboxError, open_mailbox
from . import probe as probing
from . import providers
from .check import Check
from .providers import AUTHSERV_HOW, BULK_LINE, GMAIL_DOMAINS, LIST_RELAY, Provider

NEAR = 0.8                    # lists past this share of the daily limit are told they are near
BUDGET_SHARE = 10             # sign-up confirmations a day: at most a tenth of the provider's daily limit
MOST_CONFIRMATIONS = 200      # ... and never more than the sign-ups of an hour in all (actions.SIGNUPS_AN_HOUR)
LETTERS_A_LIST = 3            # a day's letters for each list besides its edition: review, notice, blog post
CHUNK = 1 << 20


# ------------------------------------------------------------------ approval

def approval(settings: Settings) -> Check:
    """A list whose editions wait for approval has someone to ask, and in mail mode a
    mailbox where the reply is read, and the name of the server whose Authentication-Results
    vouches for it ([mailbox] authserv_id, or the provider's known one)."""
    waiting = [listed.name for listed in settings.lists if listed.approval == "required"]
    if not waiting:
        return Check("approval", True, "no list waits for approval: each edition goes at its time")
    one = len(waiting) == 1
    names = f"{'list' if one else 'lists'} {', '.join(waiting)}"
    editor = parseaddr(settings.editor.email)[1].lower()
    if not editor:
        return Check("approval", False, f"{names} {'waits' if one else 'wait'} for your approval, but [editor] email "
                                        "is empty: nobody is asked, and every edition waits",
                     "set [editor] email to your own address")
    if not settings.mail_mode:
        return Check("approval", True, f"{names}: each edition waits; the review goes to {editor} (approve on the "
                                       "desk or with `digest approve`)")
    box = settings.mailbox
    if not box.kind:
        return Check("approval", False, f"{names}: in mail mode you approve by replying to the review, but nothing "
                                        "reads [mailbox] for your reply",
                     "set [mailbox] imap_host and imap_user (the password in its imap_password_env), or maildir")
    if editor == box.address:
        return Check("approval", False, f"[editor] email is the mailbox's own address ({editor}): the review would "
                                        "go to the mailbox digest reads, and a reply it sends itself carries no "
                                        "DKIM or SPF result to trust",
                     "set [editor] email to your own address (the one you read on your phone), not the mailbox's")
    trust, source = providers.authserv_id(box.authserv_id, box.address, box.imap_host)
    if not trust:
        return Check("approval", False, f"{names}: a reply is believed only when the server that receives mail for "
                                        f"{box.address} vouches for it in its Authentication-Results, and digest does "
                                        "not know that server's name: every approval by reply would be refused",
                     f"set [mailbox] authserv_id: {AUTHSERV_HOW}")
    return Check("approval", True, f"{names}: the review goes to {editor}; a reply \"approve\" from that address "
                                   f"(DKIM or SPF passing, as {trust} writes it: {source}) sends the edition, read "
                                   f"from {box.address}")


# ------------------------------------------------------------------ the mailbox and its plus addresses

def mailbox(settings: Settings, env: Mapping[str, str], probe: bool = True) -> Check:
    """The mailbox opens as `digest mailbox` opens it; with an address, plus addresses on it
    arrive (the probe: one message through the relay, read back)."""
    box = settings.mailbox
    if not box.address and not box.kind:
        return Check("mailbox", True, "no [mailbox]: nothing is done by mail (readers use the links of "
                                      "`digest serve`)")
    if not box.kind:
        return Check("mailbox", False, f"nothing reads the mailbox {box.address}: sign-ups, unsubscribes and "
                                       "approvals by mail would wait there unread",
                     "set [mailbox] imap_host and imap_user (the password in its imap_password_env), or maildir; "
                     "then run `digest mailbox --dry-run`")
    try:
        opened = open_mailbox(box, settings.root, env.get(box.imap_password_env, ""))
    except MailboxError as error:
        return Check("mailbox", False, f"the mailbox cannot be read: {error}",
                     "fix [mailbox], then run `digest mailbox --dry-run`")
    try:
        return _answers(settings, opened, probe)
    finally:
        opened.close()


def _answers(settings: Settings, opened: Mailbox, probe: bool) -> Check:
    box, backend = settings.mailbox, backends.get(settings.sending.backend)
    if not box.address:
        return Check("mailbox", True, f"{opened.where} opens; without [mailbox] address it is read for bounces only")
    if not probe:
        return Check("mailbox", True, f"{opened.where} opens; plus addresses are probed by `digest doctor`")
    if not backend.real:
        return Check("mailbox", True, f"{opened.where} opens; plus addresses not probed: the {backend.name} backend "
                                      "sends nothing (see the relay check)")
    send = settings.send_settings()
    try:
        if not box.plus_addresses:
            plain = probing.probe(send, opened, box.address, probing.WAIT_SECONDS)
            return _plain_only(opened, plain)
        plus = probing.probe(send, opened, probing.plus_address(box, probing.token()), probing.WAIT_SECONDS)
        if plus.arrived:
            return Check("mailbox", True, f"{opened.where} opens; a message to {plus.address} came back in "
                                          f"{plus.seconds:.1f} s: plus addresses arrive")
        plain = probing.probe(send, opened, box.address, probing.WAIT_SECONDS)
    except (MailerError, MailboxError) as error:
        return Check("mailbox", False, f"the probe could not be sent or read back: {error}",
                     "fix the relay check (and [mailbox]) first, then run `digest doctor` again")
    return _no_plus(opened, plus, plain)


def _plain_only(opened: Mailbox, plain: probing.Probe) -> Check:
    if plain.arrived:
        return Check("mailbox", True, f"{opened.where} opens; a message to {plain.address} came back in "
                                      f"{plain.seconds:.1f} s (plus_addresses = false: the subject carries the words)")
    return _lost(opened, plain)


def _no_plus(opened: Mailbox, plus: probing.Probe, plain: probing.Probe) -> Check:
    why = (f"the relay refused {plus.address} ({plus.refused})" if plus.refused else
           f"a message to {plus.address} did not come back within {plus.seconds:g} s")
    if plain.arrived:
        return Check("mailbox", False, f"{why}, while one to {plain.address} did: this provider does not deliver "
                                       "plus addresses",
                     "set [mailbox] plus_addresses = false (readers then write to the plain address, the words in "
                     "the subject)")
    return _lost(opened, plain, f"{why}; ")


def _lost(opened: Mailbox, plain: probing.Probe, before: str = "") -> Check:
    what = (f"the relay refused {plain.address} ({plain.refused})" if plain.refused else
            f"a message to {plain.address} did not come back within {plain.seconds:g} s")
    return Check("mailbox", False, f"{before}{what}: {opened.where} is not where mail to the address goes",
                 "check that [mailbox] reads the mailbox [mailbox] address is delivered to (imap_folder: a filter "
                 "may move mail elsewhere), then run `digest doctor` again")


# ------------------------------------------------------------------ the provider's limits

def provider_of(settings: Settings) -> Provider | None:
    """The provider whose SMTP submission server the relay is (None: another relay, or one
    that names no host), told apart by the account (the login, else the From address) where
    one host serves two: smtp.gmail.com is Gmail's for a gmail.com login, Workspace's else."""
    sending = settings.sending
    host = backends.get(sending.backend).relay.host
    if host is None:
        return None
    login = sending.smtp.username if "@" in sending.smtp.username else parseaddr(sending.from_)[1]
    return providers.by_relay(host(sending), login)


def confirmations_a_day(settings: Settings) -> int:
    """How many sign-up confirmations may go out in a day, to anyone: a tenth of the relay
    provider's daily limit (Gmail's 500: 50), never more than the sign-ups of an hour in all
    (200); where no limit is known, those 200. A flood of sign-ups from strangers'
    addresses then leaves nine tenths of the day to the editions."""
    provider = provider_of(settings)
    if provider is None or provider.daily_limit is None:
        return MOST_CONFIRMATIONS
    return max(1, min(MOST_CONFIRMATIONS, provider.daily_limit // BUDGET_SHARE))


def letters_a_day(settings: Settings) -> int:
    """Room for the day's letters besides the editions: the sign-up confirmations
    (confirmations_a_day), and for each list your review and notice and the blog's post."""
    return confirmations_a_day(settings) + LETTERS_A_LIST * len(settings.lists)


def limits(settings: Settings) -> Check:
    """All the lists' sizes together (each may go the same day) and room for the day's other
    letters, against the relay provider's daily limit; and Google's bulk-sender line, past
    which one-click https unsubscribe (a public base_url) is required."""
    provider = provider_of(settings)
    try:
        sizes, gmail = _counted(settings)
    except DigestError as error:
        return Check("limits", False, f"cannot count the lists: {error}", "fix the database check first")
    if not sizes:
        return Check("limits", True, "no lists")
    room = letters_a_day(settings)
    total = sum(sizes.values()) + room
    if provider is not None and provider.daily_limit is not None and total > provider.daily_limit:
        return Check("limits", False, f"{_sizes(sizes)}; with {_room(settings)} that is {total:,} a day, more "
                                      f"than {provider.limit_line()}: an edition would stop part way",
                     f"before the next send, move to {provider.move_to}")
    bulk = {list_name: n for list_name, n in gmail.items() if n >= BULK_LINE}
    if bulk:
        list_name, n = max(bulk.items(), key=lambda item: item[1])
        return Check("limits", False, f"list {list_name} has {n:,} subscribers at Gmail: Google counts a sender of "
                                      f"{BULK_LINE:,} a day to Gmail a bulk sender, who must offer one-click "
                                      "unsubscribe by https, which mail mode has not",
                     f"give `digest serve` a public https address ([web] base_url, docs/going-live.md) and move to "
                     f"{LIST_RELAY}")
    return Check("limits", True, _within(settings, provider, sizes, total))


def _counted(settings: Settings) -> tuple[dict[str, int], dict[str, int]]:
    """Each list's size, and its subscribers at Gmail where it passes the bulk line without
    one-click unsubscribe; a database not made yet counts the list files alone."""
    try:
        db: Database | None = Database.open(settings.database_url(), upgrade=False, read_only=True)
    except NoDatabase:
        db = None
    try:
        sizes = {listed.name: _size(settings, db, listed) for listed in settings.lists}
        gmail = {listed.name: _at_gmail(settings, db, listed) for listed in settings.lists
                 if sizes[listed.name] >= BULK_LINE and not _one_click(settings)}
    finally:
        if db is not None:
            db.close()
    return sizes, gmail


def _sizes(sizes: dict[str, int]) -> str:
    """'list weekly has 400 subscribers', or 'lists weekly (300) and monthly (250) have 550 subscribers'."""
    if len(sizes) == 1:
        [(name, n)] = sizes.items()
        return f"list {name} has {n:,} subscribers"
    each = [f"{name} ({n:,})" for name, n in sizes.items()]
    return f"lists {', '.join(each[:-1])} and {each[-1]} have {sum(sizes.values()):,} subscribers (all may go " \
           "the same day)"


def _room(settings: Settings) -> str:
    confirmations = confirmations_a_day(settings)
    return (f"room for {letters_a_day(settings):,} other letters ({confirmations:,} sign-up confirmations at most, "
            f"{LETTERS_A_LIST * len(settings.lists)} for you and the blog)")


def _within(settings: Settings, provider: Provider | None, sizes: dict[str, int], total: int) -> str:
    if provider is None:
        return f"{_sizes(sizes)}; the {settings.sending.backend} relay declares no daily limit digest knows"
    if provider.daily_limit is None:
        return f"{_sizes(sizes)}; {provider.limit_line()}"
    near = " (near it: plan the move before they grow past)" if total > NEAR * provider.daily_limit else ""
    return f"{_sizes(sizes)}; with {_room(settings)} that is {total:,} a day, within {provider.limit_line()}{near}"


def _one_click(settings: Settings) -> bool:
    """RFC 8058's one-click unsubscribe is offered: links at a public https address."""
    return settings.web.base_url.startswith("https://") and hosts.public(settings.web.base_url)


def _size(settings: Settings, db: Database | None, listed: MailingList) -> int:
    """Who the next edition goes to: the active subscribers, once the list file was synced;
    before that, the list file's rows as well."""
    counted = db.subscribers.counts(listed.name).confirmed if db is not None else 0
    if db is not None and db.lists.last_file(listed.name) is not None:
        return counted
    return counted + _rows(settings.path(listed.file))


def _rows(path: Path) -> int:
    """The rows of a list file, its header left out (0 when there is none yet)."""
    try:
        with path.open("rb") as handle:
            lines, last = 0, b"\n"
            while chunk := handle.read(CHUNK):
                lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    except OSError:
        return 0
    return max(0, lines + (last != b"\n") - 1)


def _at_gmail(settings: Settings, db: Database | None, listed: MailingList) -> int:
    """Subscribers at gmail.com or googlemail.com (read only for a list past the bulk line)."""
    suffixes = tuple(f"@{domain}" for domain in GMAIL_DOMAINS)
    if db is not None and db.lists.last_file(listed.name) is not None:
        return sum(1 for row in db.lists.active(listed.name) if str(row.email).lower().endswith(suffixes))
    domains = tuple(suffix.encode() for suffix in suffixes)
    try:
        with settings.path(listed.file).open("rb") as handle:
            return sum(1 for line in handle if any(domain in line.lower() for domain in domains))
    except OSError:
        return 0


# ------------------------------------------------------------------ the public address in mail mode

def public_url_by_mail(settings: Settings) -> Check:
    """Said once, and not a failure: what mail mode cannot do."""
    return Check("public_url", True, f"mail mode: {settings.web.base_url} is not public, so readers and you act by "
                                     f"mail through {settings.mailbox.address}; clicks are not counted (links go "
                                     "straight to the blog) and `digest serve` is for this machine only")

