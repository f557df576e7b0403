"""Approval before a scheduled send. With `approval = "required"`, a list's scheduled run
fetches, builds and freezes its edition exactly as it would send it, held: nobody gets
anything. The editor is mailed the edition with a sealed, expiring link to its review
page; there (or with `digest approve`) they may still pin, exclude, change the note and
subject (the held edition is built again), then approve it, which sends it to every
subscriber once, or skip it. With a [mailbox] address the review mail's Reply-To is the
edition's tokened approve address, so a reply does the same (actions/by_mail/approve.py).
`approve_within` with `on_timeout` decides when nobody answers.

Every step is a commit the ledger can resume from: held (`hold.frozen`), the review mailed
(`review.sent`), approved (`approve.approved`, the edition now released), then the
send's own points. A second approval finds nothing held and sends nothing more.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .. import crash, hosts
from ..config import MailingList, Settings
from ..db import Database
from ..errors import NotFound
from ..models import EditionStatus, Letter
from ..send import deliver
from ..send.deliver import AlreadySent, SendReport
from ..send.mailers import Mailer, make_mailer
from ..send.signing import MAIL_APPROVE, BadLink, ExpiredLink, address_token, seal, secret_key, unseal
from ..signals import addresses
from ..write.edition import build, shown_threads
from ..write.periods import of_edition
from ..write.render import Renderer, template
from .editions import sample_values
from .sends import edition_builder, finish_unfinished, holding_send_lock
from .subscribers import list_title, mail_one

log = logging.getLogger(__name__)
REVIEW = "digest-review"
REVIEW_LINK_HOURS = 72               # a review link works this long when the list sets no approve_within


@dataclass(frozen=True)
class Held:
    edition_id: int
    list_name: str
    since: datetime
    until: datetime
    subject: str
    held_at: datetime
    recipients: int


def held(db: Database, listed: MailingList) -> Held | None:
    """The list's edition waiting for approval, or None."""
    row = db.ledger.held(listed.name)
    if row is None:
        return None
    return Held(row.id, listed.name, row.since, row.until, row.subject, row.held_at,
                sum(db.ledger.counts(row.id).values()))


def nothing_held(db: Database, listed: MailingList) -> str:
    """What to say when nothing waits: the last decision, or that none was ever held."""
    row = db.ledger.last_decided(listed.name)
    if row is None:
        return f"{listed.name}: no edition is waiting for approval, and none ever was"
    days = of_edition(listed, row.since, row.until).label()
    return (f"{listed.name}: no edition is waiting for approval; the last one ({days}, edition {row.id}) was "
            f"{row.decision} at {row.decided_at:%Y-%m-%d %H:%M} UTC and is {row.status}: nothing more to send")


def hold_edition(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
                 now: datetime) -> Held:
    """Build and freeze the period's edition, held: the list file synced, the ledger filled,
    nothing sent. An edition already held for the period is the one returned."""
    waiting = held(db, listed)
    if waiting is not None and (waiting.since, waiting.until) == (since, until):
        return waiting
    existing = db.ledger.latest(listed.name, since, until)
    if existing is not None and existing.status in (EditionStatus.RELEASED, EditionStatus.SENT):
        raise AlreadySent(f"the edition of {listed.name} for this period is {existing.status} already; "
                          "`digest editions` shows it")
    with holding_send_lock(db, listed):
        planned = deliver.plan(settings.send_settings(), db, listed, since, until,
                               edition_builder(settings, db, listed, since, until), clock=lambda: now)
        deliver.hold(settings.send_settings(), db, planned, clock=lambda: now)
    found = held(db, listed)
    assert found is not None
    return found


def hold_for_review(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
                    now: datetime) -> str:
    """Hold the period's edition and mail the editor its review (what a scheduled run does
    with approval required); one line saying where it waits."""
    waiting = hold_edition(settings, db, listed, since, until, now)
    send_review(settings, db, listed, waiting.edition_id, now)
    where = (f"the review went to {settings.editor.email}" if settings.editor.email else
             "no [editor] email is set: review it in the web editor")
    return (f"{listed.name}: edition {waiting.edition_id} ({of_edition(listed, since, until).label()}, "
            f"{waiting.recipients} recipients) is held for approval; {where}; `digest approve {listed.name}` "
            "sends it")


def deadline(listed: MailingList, held_at: datetime) -> datetime | None:
    return held_at + listed.approve_within if listed.approve_within else None


# ------------------------------------------------------------------ the review link and mail

def review_link(settings: Settings, listed: MailingList, edition_id: int, held_at: datetime) -> str:
    """The review page of a held edition, with a sealed key that opens it without a login
    until the approval's deadline (or REVIEW_LINK_HOURS): for that edition only."""
    expires = deadline(listed, held_at) or held_at + timedelta(hours=REVIEW_LINK_HOURS)
    token = seal(secret_key(settings.send_settings()), REVIEW,
                 json.dumps([listed.name, edition_id, int(expires.timestamp())]))
    return f"{settings.web.base_url}/editor/{listed.name}/review/{edition_id}?key={token}"


def read_review_key(settings: Settings, listed: MailingList, edition_id: int, token: str, now: datetime) -> None:
    """BadLink unless token is this edition's review key; ExpiredLink once its time is up."""
    text = unseal(secret_key(settings.send_settings()), REVIEW, token) if token else None
    try:
        name, number, expires = json.loads(text or "")
    except (ValueError, TypeError):
        raise BadLink("This review link is not valid; log in to the editor instead.") from None
    if name != listed.name or number != edition_id:
        raise BadLink("This review link is for another edition; log in to the editor instead.")
    if now.timestamp() > int(expires):
        raise ExpiredLink("This review link has expired; log in to the editor instead.")


def send_review(settings: Settings, db: Database, listed: MailingList, edition_id: int, now: datetime,
                mailer: Mailer | None = None, again: bool = False) -> None:
    """Mail the editor the held edition itself, a banner on top with the link to review it
    and, with a [mailbox] address, how to answer by reply (its Reply-To the edition's tokened
    approve address). Once: a run tried again does not mail it twice; `again` mails it anew
    (the edition was built again after a note came by mail)."""
    row = db.ledger.info(edition_id)
    if row is None or row.status != EditionStatus.HELD or (row.review_sent_at and not again) or \
            not settings.editor.email:
        return
    letter = review_letter(settings, db, listed, edition_id, now)
    mail_one(settings, mailer or make_mailer(settings.send_settings()), secret_key(settings.send_settings()),
             listed, settings.editor.email, "", letter, "review", now, unsubscribe=False,
             reply_to=approve_address(settings, edition_id))
    db.ledger.reviewed(edition_id, now)
    crash.point("review.sent")


def approve_token(settings: Settings, edition_id: int) -> str:
    """The sealed token of a held edition's approve address (it names that edition only)."""
    return address_token(secret_key(settings.send_settings()), MAIL_APPROVE, edition_id)


def approve_address(settings: Settings, edition_id: int) -> str:
    """Where the editor's reply to the review goes: LOCAL+approve-TOKEN@DOMAIN (or, without
    plus addressing, the plain address: the subject then carries `approve TOKEN`); "" with
    no [mailbox] address."""
    if not settings.mailbox.address:
        return ""
    return addresses.reply_to(settings.mailbox, addresses.APPROVE, approve_token(settings, edition_id))


def review_letter(settings: Settings, db: Database, listed: MailingList, edition_id: int, now: datetime) -> Letter:
    """The held edition as subscribers would get it, a banner at the top saying it waits."""
    row = db.ledger.info(edition_id)
    assert row is not None
    html, text = db.ledger.edition(edition_id).personalise(sample_values(settings))
    link = review_link(settings, listed, edition_id, row.held_at)
    public = hosts.public(settings.web.base_url)
    period = of_edition(listed, row.since, row.until).label()
    due = deadline(listed, row.held_at)
    expires = due or row.held_at + timedelta(hours=REVIEW_LINK_HOURS)
    said = (f"If nobody answers by {due.astimezone(listed.timezone):%a %d %b %H:%M %Z}, it is "
            f"{'sent as it is' if listed.on_timeout == 'send' else 'skipped'}." if due else "")
    recipients = sum(db.ledger.counts(edition_id).values())
    subject = f"[Review] {row.subject}"
    by_mail = _by_mail(settings, edition_id, subject)
    if by_mail and not settings.mailbox.plus_addresses:
        subject = f"{subject} ({by_mail['subject_words']})"            # a reply keeps the token in its subject
    banner = template(Renderer(settings.write_settings()).env, "mail/review_banner.html",
                      settings.email.templates).render(
        list_title=list_title(settings, listed), period=period, recipients=recipients, deadline=said, link=link,
        public=public, list_name=listed.name, by_mail=by_mail,
        expires=f"{expires.astimezone(listed.timezone):%a %d %b %H:%M %Z}")
    body = re.search(r"<body[^>]*>", html, re.IGNORECASE)
    html = html[:body.end()] + banner + html[body.end():] if body else banner + html
    how = [f"Review, approve or skip: {link}"] if public or not by_mail else []
    if by_mail:
        how += [REPLY_HOW, f"On the machine digest runs on, the review page: {link}"] if not public else [REPLY_HOW]
    text = (f"HELD FOR YOUR APPROVAL: {list_title(settings, listed)}, {period}. Nothing goes until you approve. "
            f"{said}\n" + "\n".join(how) + f"\nOr: digest approve {listed.name}\n\n{text}")
    return Letter(listed.name, subject, html, text)


REPLY_HOW = ("Reply approve to send it, skip to skip it (the word alone on the first line: \"OK?\" or \"ok, "
             "but ...\" does nothing), or note: and your note to set the note first (then approve on the line "
             "after it to send it too).")


def _by_mail(settings: Settings, edition_id: int, subject: str) -> dict[str, str]:
    """What the banner needs to offer answering by mail: the reply address, one-tap mailto
    links that approve or skip; {} without a [mailbox] address."""
    address = approve_address(settings, edition_id)
    if not address:
        return {}
    words = addresses.subject_for(addresses.APPROVE, approve_token(settings, edition_id))
    said = f"Re: {subject}" if settings.mailbox.plus_addresses else f"Re: {subject} ({words})"
    return {"address": address, "subject_words": words,
            "approve": f"mailto:{address}?subject={quote(said)}&body=approve",
            "skip": f"mailto:{address}?subject={quote(said)}&body=skip"}


def send_reviews_due(settings: Settings, db: Database, now: datetime) -> list[int]:
    """Held editions whose editor was not mailed yet (a crash between the hold and the mail): mailed now."""
    sent = []
    for row in db.ledger.all_held():
        listed = settings.mailing_list(row.list_name)
        if listed is not None and row.review_sent_at is None and settings.editor.email:
            send_review(settings, db, listed, row.id, now)
            sent.append(row.id)
    return sent


# ------------------------------------------------------------------ the editor's changes and decision

def rebuild_held(settings: Settings, db: Database, listed: MailingList, edition_id: int, now: datetime) -> bool:
    """Build the held edition again with the picks, note and subject waiting now (the editor
    just changed one of them); False when it is no longer held."""
    row = db.ledger.info(edition_id)
    if row is None or row.status != EditionStatus.HELD:
        return False
    write = settings.write_settings()
    built = build(write, db, Renderer(write), listed, row.since, row.until)
    return db.ledger.replace(edition_id, built.edition, now, shown_threads(built),
                             deliver.counted_links(settings.send_settings(), built.edition))


@dataclass(frozen=True)
class Decision:
    done: bool                      # False: it was decided before; nothing changed now
    status: str
    decision: str | None
    decided_at: datetime | None
    reports: tuple[SendReport, ...] = ()


def approve(settings: Settings, db: Database, listed: MailingList, edition_id: int, now: datetime,
            deliver_now: bool = True, mailer: Mailer | None = None,
            should_stop: Callable[[], bool] = lambda: False, decision: str = "approved") -> Decision:
    """Approve a held edition: it is released (its picks and draft taken), then, with
    deliver_now, goes to every subscriber once. Approving again sends nothing more; an edition
    approved before whose send was cut off is resumed, never sent twice."""
    _own(db, listed, edition_id)
    moved = db.ledger.approve(edition_id, now, decision)
    if moved:
        crash.point("approve.approved")
    reports = tuple(finish_unfinished(settings, db, listed, mailer, should_stop)) if deliver_now else ()
    return _decision(db, edition_id, moved, reports)


def skip(settings: Settings, db: Database, listed: MailingList, edition_id: int, now: datetime,
         decision: str = "skipped") -> Decision:
    """The held edition does not go; its picks and draft wait for the next edition."""
    _own(db, listed, edition_id)
    return _decision(db, edition_id, db.ledger.skip(edition_id, now, decision))


def _own(db: Database, listed: MailingList, edition_id: int) -> None:
    row = db.ledger.info(edition_id)
    if row is None or row.list_name != listed.name:
        raise NotFound(f"{listed.name} has no edition {edition_id}; `digest editions {listed.name}` lists them")


def _decision(db: Database, edition_id: int, done: bool, reports: tuple[SendReport, ...] = ()) -> Decision:
    row = db.ledger.decision(edition_id)
    assert row is not None
    return Decision(done, str(row.status), row.decision, row.decided_at, reports)


def decide_timeouts(settings: Settings, db: Database, now: datetime) -> list[tuple[MailingList, int, Decision]]:
    """Held editions nobody answered within their list's approve_within: skipped, or (with
    on_timeout = "send") approved as they are; the send itself is left to the caller."""
    decided = []
    for row in db.ledger.all_held():
        listed = settings.mailing_list(row.list_name)
        due = deadline(listed, row.held_at) if listed is not None else None
        if listed is None or due is None or now < due:
            continue
        if listed.on_timeout == "send":
            found = approve(settings, db, listed, row.id, now, deliver_now=False, decision="timed out: sent")
        else:
            found = skip(settings, db, listed, row.id, now, decision="timed out: skipped")
        decided.append((listed, row.id, found))
    return decided


def describe(decision: Decision, when_zone: Any = UTC) -> str:
    """'approved at 2026-12-07 09:12 UTC' for a decision made before."""
    when = f" at {decision.decided_at.astimezone(when_zone):%Y-%m-%d %H:%M %Z}" if decision.decided_at else ""
    return f"{decision.decision or decision.status}{when}"
