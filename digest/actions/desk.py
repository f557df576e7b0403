"""The editor's desk on the web: how each list is doing (subscribers now and over twelve weeks,
the next run, the last edition, an edition held for approval), the editions as sent with
what came back, a page of subscribers at a time, and "send now", carried out by the running
scheduler (a web request never sends thousands of messages itself)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import MailingList, Settings
from ..db import Database
from ..db.subscribers import STATES, Counts
from ..errors import DigestError
from ..models import DeliveryStatus, Origin
from ..send.deliver import repeated_threads
from ..write import periods
from ..write.edition import Built
from . import clicks
from .approval import Held, held
from .scheduling import LOCK as SCHEDULER_LOCK
from .subscribers import list_title, sync_list

WEEKS = 12
PAGE = 50
SCHEDULER_FRESH = timedelta(minutes=5)
__all__ = ["STATES"]


@dataclass(frozen=True)
class ListView:
    listed: MailingList
    counts: Counts
    pending: int                        # sign-ups whose confirmation was not clicked yet
    growth: list[tuple[datetime, int]]  # (week's end, subscribers then), oldest first
    next_run: datetime | None
    upcoming: periods.Period            # the period the next scheduled run sends
    last: dict[str, Any] | None         # the newest edition's row with its counts
    held: Held | None


def list_view(settings: Settings, db: Database, listed: MailingList, now: datetime) -> ListView:
    moments = [now - timedelta(weeks=WEEKS - 1 - n) for n in range(WEEKS)]
    history = db.ledger.history(listed.name)
    pending = db.signups.pending(listed.name, now - timedelta(hours=settings.web.confirm_max_age_hours))
    return ListView(listed, db.subscribers.counts(listed.name), pending,
                    list(zip(moments, db.subscribers.growth(listed.name, moments), strict=True)),
                    periods.next_run(listed, now), periods.next_edition(listed, now),
                    history[-1] if history else None, held(db, listed))


def editions_table(db: Database, listed: MailingList) -> list[dict[str, Any]]:
    """Every edition of the list, newest first: when, period, subject as sent, status and
    decision, recipients, accepted, failed, bounced, complaints, unsubscribes after it."""
    signals, history = db.ledger.signals(listed.name), db.ledger.history(listed.name)
    clicked = clicks.of_editions(db, [row["id"] for row in history])
    returned = db.bounces.of_editions([row["id"] for row in history])
    rows = []
    for row in reversed(history):
        counts = row["counts"]
        rows.append({**row, "period": periods.of_edition(listed, row["since"], row["until"]).label(),
                     "recipients": sum(counts.values()), "accepted": counts.get(DeliveryStatus.ACCEPTED, 0),
                     "failed": counts.get(DeliveryStatus.REFUSED, 0), **{k: 0 for k in ("bounced", "complaints",
                                                                                       "unsubscribes")},
                     **signals.get(row["id"], {}), **NO_CLICKS, **clicked.get(row["id"], {})})
        rows[-1]["soft_bounces"] = returned.get(row["id"], {}).get("soft", 0)
        rows[-1]["complaint_rate"] = rows[-1]["complaints"] / rows[-1]["accepted"] if rows[-1]["accepted"] else 0.0
    return rows


COMPLAINT_LINE = 0.003         # Gmail's bulk-sender rule: stay under 0.3 % of messages reported as spam


NO_CLICKS: dict[str, Any] = {"clicks": 0, "links": [], "threads": {}}


def editions_json(settings: Settings, db: Database, list_name: str | None = None) -> list[dict[str, Any]]:
    """`digest editions --format json`: each edition, oldest first, with what came back."""
    chosen = [item for item in settings.lists if list_name in (None, item.name)]
    rows = [row for listed in chosen for row in reversed(editions_table(db, listed))]
    return [{"id": r["id"], "list": r["list_name"], "since": r["since"].isoformat(), "until": r["until"].isoformat(),
             "subject": r["subject"], "status": r["status"], "decision": r["decision"],
             "sent_at": r["finished_at"].isoformat() if r["finished_at"] else None,
             "posted_at": r["posted_at"].isoformat() if r.get("posted_at") else None, "recipients": r["recipients"],
             "accepted": r["accepted"], "failed": r["failed"], "bounced": r["bounced"],
             "complaints": r["complaints"], "unsubscribes": r["unsubscribes"], "soft_bounces": r["soft_bounces"],
             "complaint_rate": round(r["complaint_rate"], 5), "clicks": r["clicks"],
             "links": [{"url": link["url"], "thread": link["thread"], "post": link["post"], "clicks": link["clicks"]}
                       for link in r["links"]]}
            for r in sorted(rows, key=lambda r: r["id"])]


def edition_record(db: Database, listed: MailingList, edition_id: int) -> dict[str, Any] | None:
    """One edition of the list as sent (its row and counts), or None."""
    return next((row for row in editions_table(db, listed) if row["id"] == edition_id), None)


def clicked_threads(db: Database, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The threads of a sent edition in the order they were shown, with their clicks, who
    wrote the top comment and on which post; then the posts' own links (`thread` None)."""
    briefs = db.picks.briefs([link["thread"] for link in record["links"] if link["thread"]])
    rows: dict[str, dict[str, Any]] = {}
    for link in record["links"]:
        key = link["thread"] or f"post:{link['post'] or link['url']}"
        brief = briefs.get(link["thread"] or "")
        row = rows.setdefault(key, {"thread": link["thread"], "position": link["position"], "clicks": 0,
                                    "author": brief.author if brief else "",
                                    "post": brief.post_title if brief else "", "url": link["url"]})
        row["clicks"] += link["clicks"]
    return sorted(rows.values(), key=lambda row: (row["thread"] is None, row["position"] or 0))


def sent_html(settings: Settings, db: Database, listed: MailingList, edition_id: int) -> tuple[str, str] | None:
    """(HTML, text) of an edition exactly as it was frozen, with a subscriber's sample values."""
    row = db.ledger.info(edition_id)
    if row is None or row.list_name != listed.name:
        return None
    from .editions import sample_values
    return db.ledger.edition(edition_id).personalise(sample_values(settings))


def subscribers_page(db: Database, listed: MailingList, words: str = "", state: str = "", origin: str = "",
                 after: int = 0) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the list's subscribers and the id the next page starts after (None: the last page)."""
    state = state if state in STATES else ""
    origin = origin if origin in {o.value for o in Origin} else ""
    rows = db.subscribers.page(listed.name, words[:200], state, origin, after, PAGE + 1)
    return rows[:PAGE], (rows[PAGE - 1]["id"] if len(rows) > PAGE else None)


def read_list_file(settings: Settings, db: Database, listed: MailingList, now: datetime) -> list[str]:
    """Sync the list file before counting who a send would reach (as `digest send` does
    before its prompt); what could not be read, one line each."""
    try:
        return sync_list(settings, db, listed, now).problems
    except DigestError as error:
        return [f"{error}; the edition would go to the subscribers stored"]


def repeats(db: Database, listed: MailingList, built: Built, since: datetime, until: datetime) -> list[str]:
    """One line per sent edition whose period overlaps and that showed some of the same threads."""
    return repeated_threads(db, listed, since, until, built)


# ------------------------------------------------------------------ send now, through the scheduler

def scheduler_alive(db: Database, now: datetime) -> bool:
    """A scheduler beat for this database in the last few minutes (it carries out orders)."""
    state = db.locks.state(SCHEDULER_LOCK)
    return state is not None and not state[2] and now - state[1] <= SCHEDULER_FRESH


def send_now(db: Database, listed: MailingList, since: datetime, until: datetime, now: datetime) -> int:
    """Order the period's edition sent to every subscriber; the running scheduler carries it out
    within seconds. The order's id (the one already waiting, if the editor asked twice)."""
    return db.orders.place(listed.name, "send", now, since=since, until=until)


def deliver_later(db: Database, listed: MailingList, edition_id: int, now: datetime) -> int:
    """Order an approved edition delivered by the running scheduler."""
    return db.orders.place(listed.name, "deliver", now, edition_id=edition_id)


@dataclass(frozen=True)
class OrderView:
    id: int
    kind: str
    status: str
    requested_at: datetime
    outcome: str | None
    counts: dict[str, int]              # the edition's ledger so far: progress
    edition_id: int | None
    waiting_too_long: bool              # waiting, and no scheduler is running to carry it out


def order(db: Database, listed: MailingList, order_id: int, now: datetime) -> OrderView | None:
    row = db.orders.get(order_id)
    if row is None or row.list_name != listed.name:
        return None
    edition_id = row.edition_id
    if edition_id is None and row.since is not None:
        found = db.ledger.latest(listed.name, row.since, row.until)
        edition_id = found.id if found is not None and found.created_at >= row.requested_at else None
    counts = {str(k): v for k, v in db.ledger.counts(edition_id).items()} if edition_id else {}
    stuck = row.status == "waiting" and not scheduler_alive(db, now)
    return OrderView(row.id, row.kind, row.status, row.requested_at, row.outcome, counts, edition_id, stuck)



# ------------------------------------------------------------------ asked by mail, kept for the editor

ASKED_WITHIN = timedelta(days=30)       # how far back the dashboard lists plain "unsubscribe" mails


@dataclass(frozen=True)
class AskedToLeave:
    """A plain "unsubscribe" by mail (no token: anyone could have written its From) from an
    address still on a list: the editor removes it with one click, or lets it be."""

    list_name: str
    title: str                  # the list's title, as readers see it
    address: str
    received_at: datetime


def asked_to_leave(settings: Settings, db: Database, now: datetime) -> list[AskedToLeave]:
    """The plain unsubscribes of the last 30 days whose From is still on a list, one per
    list and address, newest first."""
    found: dict[tuple[str, str], AskedToLeave] = {}
    for list_name, address, when in db.inbox.kept("unsubscribe", now - ASKED_WITHIN):
        names = [list_name] if list_name else [item.name for item in settings.lists]
        for name in names:
            if (name, address) not in found and db.lists.is_active(name, address):
                listed = settings.mailing_list(name)
                title = list_title(settings, listed) if listed else name
                found[name, address] = AskedToLeave(name, title, address, when)
    return list(found.values())
