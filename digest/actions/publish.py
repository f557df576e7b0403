"""The blog's own Pick of the Week: each edition, once its list send finished, mailed to
`[publish] mail_to` (Blogger's "Posting using email" address, WordPress' post-by-email
address) as a post: the edition's subject as the mail's (the post's title), its HTML as
frozen minus everything personal (write/render.py `post_copy`), no List-Unsubscribe.

Once: the edition's `posted_at` is claimed before the mail goes (whichever sender, process
or resumed send gets it posts; the others do nothing) and released when the relay refuses
the post or asks to try later, so that a later attempt posts it: the next send that
finishes (in any process), or the scheduler's desk errand (`retry_refused`). A post whose
outcome is unknown (the connection lost during DATA) keeps its claim: never twice; the
editor is told to look. Only editions finished in the last POST_WITHIN are posted: one
sent before posting existed (or before `mail_to` was set) is never posted late.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import Settings
from ..db import Database
from ..errors import DigestError
from ..models import DeliveryStatus, Letter, wire_address
from ..send.mailers import make_mailer
from ..send.message import Recipient, envelope_from
from ..write.render import post_copy

log = logging.getLogger(__name__)

POST_WITHIN = timedelta(days=1)        # an edition finished longer ago is never posted
SETTLE = timedelta(minutes=1)          # the errand leaves a just-finished edition to the send that finished it
RETRY_EVERY = timedelta(minutes=15)    # the errand tries a refused post again this often, at most
POSTED, REFUSED, UNKNOWN = "posted", "refused", "unknown"

# When this process's errand may try each refused post again: (edition, finished at) -> not before.
# Kept in memory: a refusal is not stored (editions has no column for it), and only the
# scheduler, which lives long, retries; a new process simply tries once more.
_not_before: dict[tuple[int, datetime], datetime] = {}


@dataclass(frozen=True)
class Posted:
    """What became of one edition's post."""

    edition_id: int
    subject: str
    outcome: str            # posted, refused (to be tried again), unknown (not tried again)
    detail: str = ""

    def line(self, mail_to: str) -> str:
        """One line for the operator and the editor's notice."""
        if self.outcome == POSTED:
            return f"\"{self.subject}\" (edition {self.edition_id}) was posted to the blog ({mail_to})"
        if self.outcome == UNKNOWN:
            return (f"the post of edition {self.edition_id} to the blog ({mail_to}) may not have arrived "
                    f"({self.detail}); it is not sent again: look for it on the blog and post it by hand if it "
                    "is not there")
        return (f"the post of edition {self.edition_id} to the blog ({mail_to}) did not go ({self.detail}); "
                f"`digest schedule` tries again every {RETRY_EVERY.seconds // 60} minutes for a day, and so does "
                "the next send that finishes")


def after_send(settings: Settings, db: Database, now: datetime) -> list[Posted]:
    """Right after a send finished its edition: post it, and any other edition finished in
    the last day whose post did not go (nothing without [publish].mail_to)."""
    if not settings.publish.mail_to:
        return []
    return [posted for edition_id, finished in db.ledger.to_post(now - POST_WITHIN, now)
            if (posted := _post(settings, db, edition_id, finished, now)) is not None]


def retry_refused(settings: Settings, db: Database, now: datetime) -> list[Posted]:
    """The scheduler's errand: post the editions finished in the last day (a minute ago at
    least: the send that finished one posts it) whose post did not go, each at most every
    RETRY_EVERY."""
    if not settings.publish.mail_to:
        return []
    for gone in [key for key in _not_before if key[1] < now - POST_WITHIN]:      # out of the day: never again
        del _not_before[gone]
    done = []
    for edition_id, finished in db.ledger.to_post(now - POST_WITHIN, now - SETTLE):
        if _not_before.get((edition_id, finished), now) <= now:
            posted = _post(settings, db, edition_id, finished, now)
            if posted is not None:
                done.append(posted)
    return done


def _post(settings: Settings, db: Database, edition_id: int, finished: datetime, now: datetime) -> Posted | None:
    """Claim the edition's post and mail it; None when another sender has it (or had it)."""
    if not db.ledger.claim_post(edition_id, now, now - POST_WITHIN):
        return None
    key = (edition_id, finished)
    try:
        posted = _mail(settings, db, edition_id, now)
    except DigestError as error:                     # the mailer could not start, or gave up: nothing went
        posted = Posted(edition_id, "", REFUSED, str(error))
    except BaseException:
        db.ledger.release_post(edition_id, now)
        raise
    if posted.outcome == REFUSED:
        db.ledger.release_post(edition_id, now)
        _not_before[key] = now + RETRY_EVERY
        log.warning("%s", posted.line(settings.publish.mail_to))
    else:
        _not_before.pop(key, None)
        log.info("%s", posted.line(settings.publish.mail_to))
    return posted


def _mail(settings: Settings, db: Database, edition_id: int, now: datetime) -> Posted:
    """The edition's post, through the configured mailer, to [publish].mail_to."""
    edition = db.ledger.edition(edition_id)
    html, text = post_copy(edition)
    post = Letter(edition.list_name, edition.subject, html, text)
    address, smtputf8 = wire_address(settings.publish.mail_to)
    send_settings = settings.send_settings()
    to = Recipient(0, address, "", {}, {}, {"list": edition.list_name, "post": str(edition_id)}, smtputf8,
                   envelope_from(send_settings, "", 0))      # no token, no List-Unsubscribe: the blog's own
    mailer = make_mailer(send_settings)
    try:
        outcomes = list(mailer.send(post, [to], lambda ids: ids, f"post-{edition_id}-{now:%Y%m%d-%H%M%S-%f}"))
    finally:
        mailer.close()
    outcome = outcomes[0] if outcomes else None
    if outcome is not None and outcome.status == DeliveryStatus.ACCEPTED:
        return Posted(edition_id, edition.subject, POSTED)
    if outcome is not None and outcome.status in (DeliveryStatus.UNKNOWN, DeliveryStatus.IN_FLIGHT):
        return Posted(edition_id, edition.subject, UNKNOWN, outcome.error or "no answer")
    said = (outcome.error or str(outcome.status)) if outcome is not None else "the mailer sent nothing"
    return Posted(edition_id, edition.subject, REFUSED, said)
