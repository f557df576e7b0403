"""Approve by reply: the editor answers a held edition's review mail, whose Reply-To is
that edition's tokened approve address (`LOCAL+approve-TOKEN@DOMAIN`, or `approve TOKEN`
in the subject without plus addressing).

The token names one edition (send/signing.py's MAIL_APPROVE). A reply counts only when
its From is `[editor] email` (the domain compared without case) and its topmost
Authentication-Results is the receiving server's (its authserv-id the one trusted:
`[mailbox] authserv_id`, else the provider's known name, live/providers.py; neither:
refused, and the editor told to set it) and says DKIM (or, no signature failing, SPF)
passed for that domain (signals/authresults.py). Its first line decides, and only when it
is the word alone (signals/replies.py): approve, ok, yes or send sends the edition
(actions/approval.approve, as `digest approve` does), skip skips it, and a `note:` sets
the note first (the held edition built again). A note and no approving word only sets the
note and mails the review again, built with it.

Anything else is refused and changes nothing: a token digest did not make, another From,
no trusted server vouching, a word it does not know, a word with a doubt beside it ("OK?",
"ok wait", "yes, but ..."), an edition decided already (a token works for its edition,
once). The editor is told why (and what to send) in one short letter per message (at most
MAX_REFUSAL_LETTERS an hour), never the sender, and automatic mail (RFC 3834) is never
answered. Read twice (a crash before the dispatcher recorded it), a message changes
nothing more: approval's own once-ness, and the decision names the message it came from.
Letters go after the message is recorded (db.inbox), so each is mailed at most once; what
a letter quotes of the message is read so that no part a stranger built stops it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

from ...config import MailingList, Settings
from ...errors import DigestError, LockedError, UsageError
from ...live import providers
from ...models import EditionStatus
from ...oneline import clean_name
from ...send.mailers import make_mailer
from ...send.signing import MAIL_APPROVE, read_address_token
from ...signals import addresses, authresults, replies
from ...write.letters import Letters
from ...write.periods import of_edition
from .. import approval
from .. import desk as desks
from ..editions import draft, set_note
from ..inbox import Desk, Handled, Inbound
from ..notices import Notice, notify
from ..runs import dashboard, sent_notice
from ..subscribers import list_title, mail_one

log = logging.getLogger(__name__)
APPROVE_WORDS = ("approve", "ok", "yes", "send")
SKIP_WORD = "skip"
MAX_REFUSAL_LETTERS = 5         # an hour: a flood of forged replies mails the editor no more than this
MAX_SHOWN = 120                 # characters of a stranger's From, subject or line put in a letter
HOW = ("Reply with approve alone on the first line to send it (or ok, yes, send; a full stop, \"please\" or "
       "\"thanks\" may follow it, and your sign-off the lines below), skip alone to skip it, or note: and your note "
       "to set the note first.")


@dataclass(frozen=True)
class Refused:
    reason: str                 # why nothing was done, one sentence for the editor
    what_to_do: str = ""
    edition_id: int | None = None
    listed: MailingList | None = None
    letter: bool = True         # False: automatic mail, or nobody to tell
    line: str | None = None     # the deciding line as read (None: not read yet)


@dataclass(frozen=True)
class Asked:
    listed: MailingList
    edition_id: int
    action: str                 # approve, skip, note
    note: str | None
    marker: str                 # the decision stored: names this message (a second reading knows it)
    replayed: bool              # decided already by this very message (read again after a crash): an approval
                                # is resumed (approval.approve sends what was not sent), nothing else is done


def handle(desk: Desk, inbound: Inbound) -> Handled:
    """A reply to a review's approve address: approved, skipped or noted; or refused, and the editor told why."""
    found = _asked(desk, inbound)
    if isinstance(found, Refused):
        return _refuse(desk, inbound, found)
    if found.replayed and found.action == "skip":
        return _handled(inbound, found, f"edition {found.edition_id} was {found.marker} already (this message): "
                                        "nothing more")
    if desk.dry_run:
        return _handled(inbound, found, _verb(found, would=True))
    return _act(desk, inbound, found)


# ------------------------------------------------------------------ what the message asks, and whether it may

def _asked(desk: Desk, inbound: Inbound) -> Asked | Refused:
    message, settings = inbound.message, desk.settings
    robot = addresses.automatic(message)
    if robot:
        return Refused(f"it is automatic mail ({robot}), never acted on nor answered", letter=False)
    edition_id = read_address_token(desk.key, MAIL_APPROVE, inbound.route.value)
    if edition_id is None:
        return Refused("its approve address holds a token digest did not make for an approval (mistyped, "
                       "or forged)", "Reply to the review mail itself: its Reply-To is the edition's own address.")
    row = desk.db.ledger.info(edition_id)
    listed = settings.mailing_list(row.list_name) if row is not None else None
    if row is None or listed is None:
        return Refused(f"edition {edition_id} is not in the database, or its list is no longer in the config",
                       "Nothing to approve: `digest editions` lists the editions.", edition_id)
    refused = _who(settings, message, edition_id, listed)
    if refused is not None:
        return refused
    return _what(desk, inbound, listed, edition_id, row)


def _who(settings: Settings, message: EmailMessage, edition_id: int, listed: MailingList) -> Refused | None:
    """None when the reply is the editor's, as the receiving server vouches; else why not."""
    editor = parseaddr(settings.editor.email)[1]
    if not editor:
        return Refused("no [editor] email is set, so nobody may approve by reply", edition_id=edition_id,
                       listed=listed, letter=False)
    sender = _from(message)
    if not _same_address(sender, editor):
        return Refused(f"it came from {sender or 'no single address'}, and only [editor] email ({editor}) may "
                       "approve by reply", "If you wrote it, send it from that address.", edition_id, listed)
    domain = editor.rpartition("@")[2].lower()
    box = settings.mailbox
    trust, _ = providers.authserv_id(box.authserv_id, box.address, box.imap_host)
    if not trust:
        return Refused("digest does not know the name of the server that receives the mailbox's mail, so it cannot "
                       "tell that server's Authentication-Results from one anyone could write",
                       f"Set [mailbox] authserv_id in config.toml: {providers.AUTHSERV_HOW}. Until then approve in "
                       "the web editor or from a terminal.", edition_id, listed)
    why = authresults.why_not(message, domain, trust)
    if why:
        return Refused(f"its From is yours, but {why}: anyone can write a From",
                       f"Your mail provider must sign your mail with DKIM, or pass SPF, for {domain}; until "
                       "then approve in the web editor or from a terminal.", edition_id, listed)
    return None


def _what(desk: Desk, inbound: Inbound, listed: MailingList, edition_id: int, row: Any) -> Asked | Refused:
    said = replies.read(inbound.message)
    marker = ""
    if said.word in (*APPROVE_WORDS, SKIP_WORD) and said.doubt:
        return Refused(f"its first line ({_shown(said.line)}) is not {said.word} alone (it has {said.doubt}), so it "
                       "decides nothing", f"{HOW} Nothing was changed.", edition_id, listed, line=said.line)
    if said.word in APPROVE_WORDS:
        action = "approve"
    elif said.word == SKIP_WORD:
        action = "skip"
    elif said.note is not None:
        action = "note"
    else:
        return Refused(f"its first line ({_shown(said.line) or 'nothing'}) says neither approve nor skip", HOW,
                       edition_id, listed, line=said.line)
    if action != "note":
        marker = f"{'approved' if action == 'approve' else 'skipped'} by reply {_mark(inbound.message_id)}"
    if row.status != EditionStatus.HELD:
        if marker and row.decision == marker:
            return Asked(listed, edition_id, action, said.note, marker, True)
        when = row.decided_at
        return Refused(f"edition {edition_id} is not held any more: it was {row.decision or row.status}"
                       f"{f' at {when:%Y-%m-%d %H:%M} UTC' if when else ''}; a token works once, for its edition",
                       "Nothing more to do for this edition; the next one's review mail has its own address.",
                       edition_id, listed)
    return Asked(listed, edition_id, action, said.note, marker, False)


def _from(message: EmailMessage) -> str:
    """The one address of the message's one From header, or ""."""
    try:
        values = [str(value) for value in (message.get_all("From") or [])[:2]]
    except Exception:  # noqa: BLE001 - a stranger's header the email package cannot render
        return ""
    found = [address for _, address in getaddresses(values)[:2] if address]
    return clean_name(found[0])[:254] if len(values) == 1 and len(found) == 1 else ""


def _same_address(one: str, other: str) -> bool:
    """The same mailbox: the part before the @ as written, the domain in any case."""
    local, at, domain = one.rpartition("@")
    mine, _, own = other.rpartition("@")
    return bool(at) and local == mine and domain.lower() == own.lower()


def _mark(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:6]


# ------------------------------------------------------------------ doing it

def _act(desk: Desk, inbound: Inbound, asked: Asked) -> Handled:
    settings, db, listed = desk.settings, desk.db, asked.listed
    if asked.note is not None and not asked.replayed:       # read again: the note went with the edition
        refused = _noted(desk, asked)
        if refused is not None:
            return _refuse(desk, inbound, refused)
    if asked.action == "note":
        outcome = _handled(inbound, asked, f"{_verb(asked)}; the review mailed again")
        if _record(desk, inbound, outcome):
            _quietly(lambda: approval.send_review(settings, db, listed, asked.edition_id, desk.now, again=True))
        return outcome
    if asked.action == "skip":
        decided = approval.skip(settings, db, listed, asked.edition_id, desk.now, decision=asked.marker)
        outcome = _handled(inbound, asked, _verb(asked, done=decided.done))
        if _record(desk, inbound, outcome) and decided.done:
            notify(settings, listed, Notice("skipped", listed.name, f"{list_title(settings, listed)}: skipped, as "
                                            "you replied", [f"Edition {asked.edition_id} goes to nobody; its picks "
                                                            "and note wait for the next one."],
                                            link=dashboard(settings)), desk.now)
        return outcome
    return _approve(desk, inbound, asked)


def _noted(desk: Desk, asked: Asked) -> Refused | None:
    """The note set and (unless skipping) the held edition built again with it; when that
    cannot be done, the note as it was and why not."""
    settings, db, listed = desk.settings, desk.db, asked.listed
    before = draft(db, listed).note
    try:
        set_note(db, listed, asked.note, desk.now)
        if asked.action != "skip":
            approval.rebuild_held(settings, db, listed, asked.edition_id, desk.now)
    except DigestError as error:
        if not isinstance(error, UsageError):                   # set, but the edition cannot be built with it
            set_note(db, listed, before, desk.now)
        return Refused(f"its note could not be used: {error}", "Send a shorter or simpler note, or none.",
                       asked.edition_id, listed)
    return None


def _approve(desk: Desk, inbound: Inbound, asked: Asked) -> Handled:
    settings, db, listed = desk.settings, desk.db, asked.listed
    try:
        decided = approval.approve(settings, db, listed, asked.edition_id, desk.now, decision=asked.marker)
        reports, waiting, done = decided.reports, "", decided.done
    except DigestError as error:             # approved, its send stopped (another send holds the list, the relay)
        row = db.ledger.info(asked.edition_id)
        if row is None or row.status == EditionStatus.HELD:
            raise                            # not even approved: nothing changed, the message is read again
        desks.deliver_later(db, listed, asked.edition_id, desk.now)
        busy = ("another send of the list is running" if isinstance(error, LockedError) else
                f"its send stopped ({error})")
        reports, done = (), True
        waiting = f"{busy}: the scheduler sends it (or `digest approve {listed.name}`)"
    said = "; ".join(report.summary() for report in reports) or waiting
    outcome = _handled(inbound, asked, f"{_verb(asked, done)}{f': {said}' if said else ''}")
    if _record(desk, inbound, outcome):
        for report in reports:
            notify(settings, listed, sent_notice(settings, db, listed, report), desk.now)
        if waiting:
            notify(settings, listed, Notice("failed", listed.name, f"{list_title(settings, listed)}: approved, "
                                            "not sent yet", [f"Edition {asked.edition_id} is approved by your "
                                                             f"reply; {waiting}."], f"digest approve {listed.name}",
                                            dashboard(settings)), desk.now)
    return outcome


def _verb(asked: Asked, done: bool = True, would: bool = False) -> str:
    """What was done (or, with would, what a dry run would do) to the edition, in words."""
    if not done:
        return f"edition {asked.edition_id}: decided before, nothing changed"
    noted = asked.note is not None and asked.action != "note"
    what = {"approve": ("approved", "approve it (send it to every reader once)"),
            "skip": ("skipped", "skip it"),
            "note": ("set the note and built it again (not approved: no approving word)",
                     "set the note and build it again (not approve it: no approving word)")}[asked.action]
    if would:
        return f"would {'set the note, then ' if noted else ''}{what[1]}: edition {asked.edition_id}"
    return f"edition {asked.edition_id}: {'set the note, ' if noted else ''}{what[0]}"


def _handled(inbound: Inbound, asked: Asked, outcome: str) -> Handled:
    return Handled(outcome, address=_from(inbound.message), list_name=asked.listed.name, edition_id=asked.edition_id)


def _record(desk: Desk, inbound: Inbound, handled: Handled) -> bool:
    """Record the message as applied before any letter goes (a letter is mailed at most
    once); False when another reader recorded it just now (and mails its letter)."""
    return desk.db.inbox.record(inbound.message_id, inbound.route.kind, handled.outcome, handled.kept, desk.now)


# ------------------------------------------------------------------ refusing

def _refuse(desk: Desk, inbound: Inbound, refused: Refused) -> Handled:
    outcome = f"{'would refuse' if desk.dry_run else 'refused'}: {refused.reason}"
    handled = Handled(outcome[:500], kept=True, address=_from(inbound.message),
                      list_name=refused.listed.name if refused.listed else None, edition_id=refused.edition_id)
    if desk.dry_run or not refused.letter or not desk.settings.editor.email:
        return handled
    recent = sum(1 for kind, said, _ in desk.db.inbox.outcomes(desk.now - timedelta(hours=1))
                 if kind == inbound.route.kind and said.startswith("refused"))
    if not _record(desk, inbound, handled):
        return handled
    if recent >= MAX_REFUSAL_LETTERS:
        log.warning("approve by reply: %s (no letter: %d refusals within the hour)", outcome, recent)
        return handled
    _quietly(lambda: _mail_refusal(desk, inbound, refused))
    return handled


def _mail_refusal(desk: Desk, inbound: Inbound, refused: Refused) -> None:
    settings = desk.settings
    listed = refused.listed or settings.lists[0]
    row = desk.db.ledger.info(refused.edition_id) if refused.edition_id is not None else None
    about = (f"edition {refused.edition_id} of {list_title(settings, listed)} "
             f"({of_edition(listed, row.since, row.until).label()})" if row is not None and refused.listed
             else "a held edition")
    line = refused.line if refused.line is not None else _first_line(inbound.message)
    subject = f"Not done: a reply about {about}"
    letter = Letters(settings.write_settings()).write(
        "approve_refused", listed.name, f"[digest] {subject}", f"Nothing was changed: {refused.reason}",
        headline=subject, reason=f"A message to the approve address of {about} changed nothing: {refused.reason}.",
        sender=_shown(_from(inbound.message)), their_subject=_shown(_header(inbound.message, "Subject")),
        first_line=_shown(line), what_to_do=refused.what_to_do,
        command=f"digest approve {listed.name}" if row is not None and row.status == EditionStatus.HELD else "",
        list_title=list_title(settings, listed))
    mail_one(settings, make_mailer(settings.send_settings()), desk.key, listed, settings.editor.email, "", letter,
             f"approve-refused-{_mark(inbound.message_id)}", desk.now, unsubscribe=False)


def _quietly(mail: Callable[[], object]) -> None:
    """A letter to the editor that cannot go is a warning in the log: the message is recorded already."""
    try:
        mail()
    except DigestError as error:
        log.warning("approve by reply: a letter to the editor was not sent: %s", error)


def _first_line(message: EmailMessage) -> str:
    """The deciding line, for the letter; "" when the message cannot be read (the letter goes all the same)."""
    try:
        return replies.read(message).line
    except Exception:  # noqa: BLE001 - a stranger's message: the letter must not depend on reading it
        return ""


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, ""))
    except Exception:  # noqa: BLE001 - a stranger's header the email package cannot render
        return ""


def _shown(text: str) -> str:
    """A stranger's text as a letter shows it: one line, no control characters, bounded."""
    cleaned = clean_name(text)
    return cleaned if len(cleaned) <= MAX_SHOWN else cleaned[:MAX_SHOWN - 1] + "…"
