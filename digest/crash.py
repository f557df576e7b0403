"""Named crash points: every commit boundary of a send, a list sync, a fetch, the
scheduler's run and the webhook. Inert unless the environment says otherwise:
`DIGEST_CRASH_AT=send.recorded:3` kills the process with SIGKILL the third time it
passes `send.recorded` (after writing the point's name to `DIGEST_CRASH_MARK`, if set).
Tests use it to prove, at every point, that a re-run loses nothing and doubles nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

# name -> what is committed when the process passes it (docs/delivery.md: "The guarantee")
POINTS: dict[str, str] = {
    "sync.chunk": "a chunk of a list file's subscribers is merged in the sync's transaction (nothing committed yet)",
    "sync.finished": "the whole sync (additions, retirements, the file's hash) is committed at once",
    "send.frozen": "the edition, its ledger (a delivery per recipient) and the picks it used are stored",
    "send.resumed": "rows a crashed run left in flight are marked `unknown`",
    "send.in_flight": "the next message or batch is marked in flight, just before the point of no return",
    "send.recorded": "the outcomes so far (accepted, refused, deferred) are stored",
    "send.finished": "the edition is marked sent",
    "fetch.posts": "a page of posts is stored",
    "fetch.comments": "a page of comments is stored",
    "fetch.threaded": "replies are attached to their parents",
    "fetch.finished": "the source's HTTP validators and last fetch are stored",
    "schedule.recorded": "a scheduled run's outcome is stored (and its retry, if any, scheduled)",
    "webhook.applied": "a provider event and its effect are stored together",
    "hold.frozen": "an edition held for approval is stored with its ledger; nobody is sent anything",
    "review.sent": "the editor was mailed the held edition to review, and that is recorded",
    "approve.approved": "a held edition is approved (now released) and the picks it holds are taken",
    "order.claimed": "an order from the web is marked running by the scheduler carrying it out",
    "bounce.recorded": "a message of the bounce mailbox, its suppression and its ledger word are stored together",
    "bounce.marked": "that message is marked read in the mailbox (moved to cur/, or given the IMAP keyword)",
    "mail.applied": "a request by mail (sign-up, confirmation, unsubscribe, approval) is applied, not yet recorded",
    "mail.marked": "that request is recorded and marked read in the mailbox",
}
_hits: Counter[str] = Counter()
_dying = threading.Lock()    # the workers of a send pass points at once: one of them counts, marks and kills


def point(name: str) -> None:
    """A commit boundary was just passed."""
    if name not in POINTS:
        raise KeyError(f"unknown crash point {name!r}; add it to digest.crash.POINTS")
    target = os.environ.get("DIGEST_CRASH_AT")
    if not target:
        return
    wanted, _, count = target.partition(":")
    if wanted != name:
        return
    with _dying:                          # held through the kill: no second thread writes the mark
        _hits[name] += 1
        if _hits[name] < int(count or 1):
            return
        mark = os.environ.get("DIGEST_CRASH_MARK")
        if mark:
            Path(mark).write_text(f"{name}:{_hits[name]}\n", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)
