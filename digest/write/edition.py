"""Build an edition: the period, the selection, and a render that fits the size budget.

Gmail clips a message whose HTML is over about 102 KB. When an edition would be
larger, long comments are shortened at a sentence end (with a link to the rest),
then the lowest-ranked threads are dropped; markup is never cut.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..config import MailingList, WriteSettings
from ..db import Database
from ..db.drafts import Draft
from ..errors import WriteError
from ..models import Edition, Picks
from ..pick.select import Selection, select
from . import links, periods
from .render import Renderer
from .view import Trim, thread_ids

log = logging.getLogger(__name__)

TRIM_STEPS = (300, 200, 120, 80)     # words per comment, tried in turn when over budget
SAMPLE_VALUES = {"greeting": "Hello Alexandra Fotheringham-Smythe,", "email": "a" * 60 + "@example.org",
                 "unsubscribe_url": "https://" + "u" * 240}


class TooBigError(WriteError):
    """Even without any thread the edition is over the budget."""


class NothingToSend(WriteError):
    """The period has no post and no comment worth an edition."""


@dataclass(frozen=True)
class Built:
    edition: Edition
    selection: Selection
    trim: Trim
    html_bytes: int


def period(mailing_list: MailingList, now: datetime, since: date | None = None,
           until: date | None = None) -> tuple[datetime, datetime]:
    """[since, until) in the list's time zone. Dates are local midnights; without them,
    the period a scheduled run at `now` sends: the list's length ending at today's
    midnight (the scheduler's). Preview, the editor and an undated send default to the
    NEXT run's period instead: periods.chosen."""
    if since is None and until is None:
        return periods.ending(mailing_list, now).bounds
    return periods.given(mailing_list, since, until).bounds


def build(settings: WriteSettings, db: Database, renderer: Renderer, mailing_list: MailingList,
          since: datetime, until: datetime, picks: Picks | None = None, nonce: str | None = None) -> Built:
    """Select and render the edition of mailing_list for [since, until), within budget,
    with the editor's waiting picks (unless others are given) and draft (note, subject)."""
    if picks is None:
        picks = Picks.from_actions(db.picks.waiting(mailing_list.name))
    selection = select(db.content.discussions(since, until), since, until, settings.selection, picks,
                       mailing_list.timezone)
    return fit(selection, renderer, mailing_list, settings.max_html_bytes,
               settings.max_comment_words or None, nonce, db.drafts.get(mailing_list.name))


def build_or_refuse(settings: WriteSettings, db: Database, mailing_list: MailingList, since: datetime,
                    until: datetime) -> Built:
    """The edition of the period, or NothingToSend saying why it would be empty."""
    built = build(settings, db, Renderer(settings), mailing_list, since, until)
    if not built.selection.posts:
        raise NothingToSend(quiet_period(db, since, until))
    return built


def quiet_period(db: Database, since: datetime, until: datetime) -> str:
    """Why an edition is empty: nothing fetched yet, or a quiet period."""
    days = f"from {since:%Y-%m-%d} to {until - timedelta(days=1):%Y-%m-%d}"
    fetched = [row["last_fetch_at"] for row in db.content.source_overview() if row["last_fetch_at"]]
    if not fetched:
        return f"nothing fetched yet, so nothing to send {days}; run `digest fetch` first"
    return (f"no new posts or comments {days} (last fetch {max(fetched):%Y-%m-%d %H:%M} UTC); "
            "nothing to send for this period")


def fit(selection: Selection, renderer: Renderer, mailing_list: MailingList, budget: int,
        max_words: int | None = None, nonce: str | None = None, voice: Draft | None = None) -> Built:
    """The fullest render of selection whose HTML stays within budget bytes: comments
    shortened, then the lowest threads dropped, then the least discussed posts shown as
    links ("More posts in this period"), then only counted. What a feed controls never
    makes an edition unsendable; only settings can (a budget too small for the frame)."""
    steps = [max_words] + [n for n in TRIM_STEPS if max_words is None or n < max_words]
    for words in steps:
        built = _try(selection, renderer, mailing_list, Trim(words), nonce, voice)
        if built.html_bytes <= budget:
            return built
    fewer = _try(selection, renderer, mailing_list, Trim(TRIM_STEPS[-1], max_replies=BASE_REPLIES), nonce, voice)
    if fewer.html_bytes <= budget:           # extra replies (the star's, a third) go before any thread
        return fewer
    order = thread_ids(selection)            # lowest ranked first
    make = lambda n: Trim(TRIM_STEPS[-1], frozenset(order[n:]), max_replies=BASE_REPLIES)  # noqa: E731 - n dropped
    best = _least(len(order), make, selection, renderer, mailing_list, budget, nonce, voice)
    if best is not None:
        log.info("edition trimmed to fit %d bytes: %d threads dropped", budget, len(order) - len(best.trim.keep or ()))
        return best
    posts = len(selection.posts)
    collapse = lambda n: Trim(TRIM_STEPS[-1], frozenset(), collapse=n)  # noqa: E731
    best = _least(posts, collapse, selection, renderer, mailing_list, budget, nonce, voice, start=1)
    if best is None:
        hide = lambda n: Trim(TRIM_STEPS[-1], frozenset(), collapse=posts, hide=n)  # noqa: E731
        best = _least(posts, hide, selection, renderer, mailing_list, budget, nonce, voice, start=1)
    if best is None:
        raise TooBigError(f"the edition is over {budget} bytes even with every post only counted; "
                          "raise [email].max_html_bytes or shorten the templates")
    log.warning("edition over %d bytes with its posts: %d posts shown as links, %d only counted",
                budget, best.trim.collapse - best.trim.hide, best.trim.hide)
    return best


def _least(most: int, trim: Callable[[int], Trim], selection: Selection, renderer: Renderer,
           mailing_list: MailingList, budget: int, nonce: str | None, voice: Draft | None,
           start: int = 0) -> Built | None:
    """The render with the smallest n in [start, most] that fits (binary search), or None."""
    low, high, best = start, most, None
    while low <= high:
        middle = (low + high) // 2
        built = _try(selection, renderer, mailing_list, trim(middle), nonce, voice)
        if built.html_bytes <= budget:
            best, high = built, middle - 1
        else:
            low = middle + 1
    return best


def _try(selection: Selection, renderer: Renderer, mailing_list: MailingList, trim: Trim,
         nonce: str | None, voice: Draft | None) -> Built:
    edition = renderer.render(selection, mailing_list, trim, nonce, voice)
    site = renderer.settings
    extra = links.growth(edition.html, site.base_url) if site.track_clicks else 0     # as it will be sent
    return Built(edition, selection, trim, edition.html_bytes(SAMPLE_VALUES) + extra)


BASE_REPLIES = 2          # replies a thread keeps when the edition must shrink, before threads go
TEMPLATE_ONLY = ("paragraphs", "when", "meta", "in_reply_to", "anchor", "day")


def as_json(built: Built) -> dict:
    """The shape scripts read (docs/editor.md, "The JSON shape"): what the subscriber sees,
    with the reasons."""
    edition, context = built.edition, built.edition.context
    star = context["star"]
    return {
        "list": edition.list_name,
        "since": edition.since.isoformat(),
        "until": edition.until.isoformat(),
        "subject": edition.subject,
        "note": context.get("note_source"),
        "html_bytes": built.html_bytes,
        "web_url": edition.web_url,
        "comment_of_the_week": {"post": star["post"], **_plain_dict(star["thread"])} if star else None,
        "dropped": dict(built.selection.dropped),
        "posts": [_plain(post) for post in context["posts"]],
    }


def shown_threads(built: Built) -> list[str]:
    """The keys of the top comments of the threads the edition shows, the star's first."""
    context = built.edition.context
    star = [context["star"]["thread"]["comment"]["id"]] if context.get("star") else []
    return star + [thread["comment"]["id"] for post in context.get("posts", []) for thread in post["threads"]]


def _plain_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in value.items() if k not in TEMPLATE_ONLY}


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in TEMPLATE_ONLY}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
