"""The edition: which period, what it would hold (preview), the editor's picks and
voice, tuning the weights, and the editions sent."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..config import MailingList, Settings
from ..db import Database
from ..db.drafts import Draft
from ..db.picks import CommentBrief, first_words
from ..errors import UsageError
from ..models import Edition, PickAction
from ..pick import tune as tuning
from ..pick.tune import FEW_PICKS, Tuning
from ..write import periods
from ..write.edition import Built, as_json, build
from ..write.periods import NEXT, Period
from ..write.render import Renderer, archive_copy

__all__ = ["FEW_PICKS", "Built", "Period", "Tuning", "as_json", "first_words"]


# ------------------------------------------------------------------ which period

def period(listed: MailingList, now: datetime, since: date | None = None, until: date | None = None) -> Period:
    """The dates given (local midnights, until exclusive), or else the next edition's period."""
    return periods.chosen(listed, now, since, until)


def next_edition(listed: MailingList, now: datetime) -> Period:
    return periods.next_edition(listed, now)


def dates(listed: MailingList, since: date | None, until: date | None) -> Period:
    """The period of the dates given (at least one)."""
    return periods.given(listed, since, until)


def first_view(listed: MailingList, db: Database, now: datetime) -> tuple[Period, Period]:
    """(the period the editor is shown first, the next edition's)."""
    return periods.first_view(listed, db, now)


def of_edition(listed: MailingList, since: datetime, until: datetime) -> Period:
    return periods.of_edition(listed, since, until)


# ------------------------------------------------------------------ the edition

def preview(settings: Settings, db: Database, listed: MailingList, since: datetime, until: datetime,
            show_why: bool = False) -> Built:
    """The edition listed would get for [since, until), with the editor's picks; nothing recorded."""
    write = settings.write_settings()
    return build(write, db, Renderer(write, show_why=show_why), listed, since, until)


def sample_values(settings: Settings) -> dict[str, str]:
    """A subscriber's values for a preview: no real address, an unsubscribe link that goes nowhere."""
    return {"greeting": "Hello,", "email": "you@example.org",
            "unsubscribe_url": f"{settings.web.base_url}/unsubscribe/preview"}


COMMENT_ID = re.compile(r"(?:#c|[?&]showComment=\d+#c|^c?)(\d{6,})$")


def comment_key(db: Database, reference: str) -> str:
    """A stored comment's key from what an editor pastes: the id, `c<id>`, `#c<id>`, or
    the blog's comment permalink (…?showComment=…#c<id>)."""
    text = reference.strip()
    match = COMMENT_ID.search(text)
    key = match.group(1) if match else text
    if not key or not db.picks.comment_exists(key):
        raise UsageError(f"no stored comment has id {reference!r}; give its id or permalink "
                         "(ids are in `digest preview LIST --format json`)")
    return key


def pin(db: Database, listed: MailingList, reference: str, now: datetime, within: Period | None = None) -> str:
    """Always show the comment in the list's next edition; the best pin is the comment of the week.
    With `within`, only a comment of that period is taken (a pin elsewhere would do nothing)."""
    if within is not None:
        _check_in_period(db, listed, comment_key(db, reference), within, now)
    return _pick(db, listed, reference, PickAction.PIN, now)


def _check_in_period(db: Database, listed: MailingList, key: str, within: Period, now: datetime) -> None:
    """UsageError naming the comment, the period and the way out, unless the comment is of it."""
    if db.picks.in_period(key, within.since, within.until):
        return
    brief = db.picks.briefs([key]).get(key)
    named, hint = key, "pin a comment of that period"
    if brief is not None:
        written = brief.published.astimezone(listed.timezone)
        named = (f"{key} ({first_words(brief.author, 8)} on \"{first_words(brief.post_title, 12)}\", "
                 f"{written.day} {written:%b %Y})")
        home = periods.holding(listed, written, now)
        hint = ("it was removed from the blog; pin another" if brief.removed else
                f"it is of {home.label()}: choose that period (--since {home.since.date()} --until "
                f"{home.until.date()}, or the editor's period picker)")
    what = "next edition" if within.kind == NEXT else "edition"
    raise UsageError(f"comment {named} is not in the period {within.label()} of {listed.name}'s {what}; {hint}")


def exclude(db: Database, listed: MailingList, reference: str, now: datetime) -> str:
    """Never show the comment in the list's next edition."""
    return _pick(db, listed, reference, PickAction.EXCLUDE, now)


def _pick(db: Database, listed: MailingList, reference: str, action: PickAction, now: datetime) -> str:
    key = comment_key(db, reference)
    db.picks.set(listed.name, key, action, now)
    return key


def unpick(db: Database, listed: MailingList, reference: str | None = None) -> int:
    """Forget the pick of one comment (or of every one) for the list's next edition."""
    key = None if reference is None else comment_key(db, reference)
    return db.picks.clear(listed.name, key)


def picks(db: Database, listed: MailingList) -> dict[str, PickAction]:
    return db.picks.waiting(listed.name)


def picked(db: Database, listed: MailingList) -> list[tuple[str, PickAction, CommentBrief | None]]:
    """The waiting picks with what an editor recognises them by (None: no longer stored)."""
    waiting = db.picks.waiting(listed.name)
    found = db.picks.briefs(waiting)
    return [(key, action, found.get(key)) for key, action in waiting.items()]


def find_comments(db: Database, within: Period, words: str) -> list[CommentBrief]:
    """Comments of the period whose author or text holds every word given (for pinning)."""
    return db.picks.search(within.since, within.until, words) if words.strip() else []


# ------------------------------------------------------------------ the editor's voice

MAX_NOTE = 5000          # characters of Markdown
MAX_SUBJECT = 200


def draft(db: Database, listed: MailingList) -> Draft:
    """The note and subject waiting for the list's next edition."""
    return db.drafts.get(listed.name)


def set_note(db: Database, listed: MailingList, note: str | None, now: datetime) -> None:
    """The editor's note (Markdown) for the list's next edition; None or blank clears it."""
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > MAX_NOTE:
        raise UsageError(f"the note is {len(note)} characters; keep it under {MAX_NOTE}")
    db.drafts.set_note(listed.name, note or None, now)


def set_subject(db: Database, listed: MailingList, subject: str | None, now: datetime) -> None:
    """The subject of the list's next edition instead of subject.txt's; None or blank clears it."""
    subject = " ".join((subject or "").split())
    if len(subject) > MAX_SUBJECT:
        raise UsageError(f"the subject is {len(subject)} characters; keep it under {MAX_SUBJECT}")
    db.drafts.set_subject(listed.name, subject or None, now)


# ------------------------------------------------------------------ learning from the editor

def tune(settings: Settings, db: Database, listed: MailingList) -> Tuning:
    """Replay the list's past editions against the editor's picks: how well the weights agree,
    and weights that agree better."""
    return tuning.tune(db, listed.name, settings.selection, listed.timezone)


def write_weights(config_path: Path, changes: dict[str, float]) -> None:
    """Put new [selection] weights into the config file (nothing else in it changes)."""
    tuning.write_weights(config_path, changes)


# ------------------------------------------------------------------ editions sent

def history(db: Database, list_name: str | None = None) -> list[dict[str, Any]]:
    """Every edition (of one list, or all), oldest first, with its delivery counts."""
    return db.ledger.history(list_name)


def sent_editions(db: Database, listed: MailingList) -> list[Any]:
    """The list's editions that went out, newest first: id, since, until, subject, finished_at."""
    return list(db.ledger.sent_editions(listed.name))


def frozen(db: Database, edition_id: int) -> Edition:
    """An edition exactly as it was frozen for sending."""
    return db.ledger.edition(edition_id)


def archive_html(db: Database, edition_id: int) -> str:
    """The public archive copy of a sent edition: without its personal parts."""
    return archive_copy(db.ledger.edition(edition_id))
