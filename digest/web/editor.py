"""The editor's desk: an edition exactly as subscribers get it, its text part, its size
against the budget, the score parts of every thread shown beside it; a period picker
(the next edition by default, past editions, custom dates); pin any comment of the
period (found by author or words, or pasted as a permalink, `#c` anchor or id),
exclude, and undo either; send a test to me."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from ..config import MailingList
from ..errors import UsageError
from ..models import EditionStatus, PickAction
from . import check_csrf, list_or_404, services
from .login import editors_only

pages = Blueprint("editor", __name__, url_prefix="/editor")
PERIOD_KEYS = ("since", "until", "edition", "period")
SAFE_PARAMS = {"since": r"\d{4}-\d\d-\d\d", "until": r"\d{4}-\d\d-\d\d", "edition": r"\d{1,12}", "period": r"next"}
MAX_SEARCH = 200              # characters of a search


def _guard() -> None:
    editors_only()


# ------------------------------------------------------------------ which period

@dataclass(frozen=True)
class Shown:
    """The period on the page, the next edition's, and how to ask for it again."""

    period: actions.Period
    upcoming: actions.Period
    params: tuple[tuple[str, str], ...] = ()    # since/until/edition/period as asked, each checked
    note: str | None = None     # why this period and not the next edition's

    @property
    def query(self) -> str:
        return urlencode(self.params)


def _shown(listed: MailingList, args: dict[str, str]) -> Shown:
    """The period the arguments name (a past edition, dates, the next edition) or by
    default the next edition's; when nothing is stored for that yet, the latest period
    with content, said so."""
    upcoming = actions.next_edition(listed, g.now)
    query = tuple((k, args[k]) for k in PERIOD_KEYS if k in args and _safe_query(f"{k}={args[k]}"))
    if "edition" in args:
        return Shown(_past(listed, args["edition"]), upcoming, query)
    if "since" in args or "until" in args:
        return Shown(_dates(listed, args), upcoming, query)
    if args.get("period") == "next":
        return Shown(upcoming, upcoming, query)
    first, upcoming = actions.first_view(listed, services().db, g.now)
    if first is upcoming:
        return Shown(first, upcoming, query)
    note = (f"The next edition, {upcoming.label()}, has nothing in it yet: no post or comment is stored for "
            f"it. Shown instead: the latest period with content, {first.label()}.")
    return Shown(first, upcoming, query, note)


def _dates(listed: MailingList, args: dict[str, str]) -> actions.Period:
    try:
        since = datetime.fromisoformat(args["since"]).date() if "since" in args else None
        until = datetime.fromisoformat(args["until"]).date() if "until" in args else None
    except ValueError:
        abort(400, "since and until are dates: YYYY-MM-DD.")
    try:
        return actions.dates(listed, since, until)
    except UsageError as error:
        abort(400, f"That period cannot be shown: {error}.")


def _past(listed: MailingList, wanted: str) -> actions.Period:
    found = next((row for row in actions.sent_editions(services().db, listed) if str(row.id) == wanted), None)
    if found is None:
        abort(404, f"{listed.name} has no sent edition {wanted[:20]!r}; choose one from the period picker.")
    return actions.of_edition(listed, found.since, found.until)


def _past_editions(listed: MailingList) -> list[dict[str, Any]]:
    rows = actions.sent_editions(services().db, listed)
    return [{"id": row.id, "label": actions.of_edition(listed, row.since, row.until).label()} for row in rows]


def _built(listed: MailingList, shown: Shown) -> actions.Built:
    return actions.preview(services().settings, services().db, listed, *shown.period.bounds)


# ------------------------------------------------------------------ the desk

@pages.get("/<name>")
def preview(name: str) -> str:
    _guard()
    listed = list_or_404(name)
    if "edition" in request.args:                  # a past edition: as it went out, not rebuilt
        return as_sent(listed, request.args["edition"])
    return _desk(listed, _shown(listed, request.args.to_dict()), request.args.get("q", "")[:MAX_SEARCH])


def as_sent(listed: MailingList, wanted: str) -> str:
    """A past edition exactly as it went out: subject, results, the frozen email; no forms
    of the next edition (its period picker stays, to go elsewhere)."""
    record = actions.desk.edition_record(services().db, listed, int(wanted)) if wanted.isdigit() else None
    if record is None or record["status"] not in (EditionStatus.SENT, EditionStatus.RELEASED):
        abort(404, f"{listed.name} has no sent edition {wanted[:20]!r}; choose one from the period picker.")
    period = actions.of_edition(listed, record["since"], record["until"])
    shown = Shown(period, actions.next_edition(listed, g.now), (("edition", str(record["id"])),))
    return render_template("web/edition_sent.html", list=listed, record=record, period=period, shown=shown,
                           editions=_past_editions(listed),
                           clicked=actions.desk.clicked_threads(services().db, record))


@pages.get("/<name>/editions/<int:edition_id>")
def sent_edition(name: str, edition_id: int) -> str:
    _guard()
    return as_sent(list_or_404(name), str(edition_id))


@pages.get("/<name>/editions/<int:edition_id>/email.html")
def sent_email(name: str, edition_id: int) -> Response:
    _guard()
    found = actions.desk.sent_html(services().settings, services().db, list_or_404(name), edition_id)
    if found is None:
        abort(404, "No such edition.")
    return Response(found[0], mimetype="text/html")


def _desk(listed: MailingList, shown: Shown, words: str = "", error: str | None = None) -> str:
    db = services().db
    data = actions.as_json(_built(listed, shown))
    picked = actions.picked(db, listed)
    return render_template(
        "web/editor.html", list=listed, data=data, shown=shown, period=shown.period, query=shown.query,
        editions=_past_editions(listed), picks={key: action for key, action, _ in picked}, picked=picked,
        scores=_scores(data), words=words, found=actions.find_comments(db, shown.period, words) if words else None,
        error=error, budget=services().settings.email.max_html_bytes)


def _scores(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each thread shown (the star first) with its post and score parts, for the side
    panel. Data-driven: whatever parts the selection reports are listed."""
    star = data.get("comment_of_the_week")
    rows = [{**star, "post_title": star["post"]["title"], "star": True}] if star else []
    for post in data["posts"]:
        rows += [{**thread, "post_title": post["title"], "star": False} for thread in post["threads"]]
    return rows


@pages.get("/<name>/email.html")
def email_html(name: str) -> Response:
    return Response(_personalised(name)[0], mimetype="text/html")


@pages.get("/<name>/email.txt")
def email_text(name: str) -> Response:
    return Response(_personalised(name)[1], mimetype="text/plain")


def _personalised(name: str) -> tuple[str, str]:
    """The edition exactly as a subscriber would get it (HTML, text), with sample values."""
    _guard()
    listed = list_or_404(name)
    built = _built(listed, _shown(listed, request.args.to_dict()))
    return built.edition.personalise({"greeting": "Hello,", "email": "you@example.org", "unsubscribe_url": "#"})


# ------------------------------------------------------------------ picks

@pages.post("/<name>/pick")
def pick(name: str) -> ResponseReturnValue:
    _guard()
    check_csrf()
    listed, db = list_or_404(name), services().db
    query = request.form.get("query", "")
    args = dict(parse_qsl(query)) if _safe_query(query) else {}
    shown = _shown(listed, args)
    comment, action = request.form.get("comment", "").strip(), request.form.get("action", "")
    chosen = {PickAction.PIN: lambda: actions.pin(db, listed, comment, g.now, shown.period),
              PickAction.EXCLUDE: lambda: actions.exclude(db, listed, comment, g.now),
              "clear": lambda: actions.unpick(db, listed, comment)}.get(action)
    if chosen is None:
        abort(400, "Unknown action.")
    if not comment:
        return _desk(listed, shown, error="Give a comment: its permalink, #c anchor or id."), 400
    try:
        chosen()
    except UsageError as error:
        return _desk(listed, shown, error=f"Not done: {error}."), 400
    flash({"pin": "Pinned: it is shown", "exclude": "Excluded: it is shown nowhere",
           "clear": "Undone"}.get(action, "Done") + " in the next edition.", "ok")
    return redirect(url_for("editor.preview", name=name) + (f"?{shown.query}" if shown.query else ""), code=303)


def _safe_query(query: str) -> bool:
    """Only our own period parameters go back into the redirect (no open redirect)."""
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key not in SAFE_PARAMS or not re.fullmatch(SAFE_PARAMS[key], value):
            return False
    return True


@pages.post("/<name>/test")
def test(name: str) -> ResponseReturnValue:
    _guard()
    check_csrf()
    listed = list_or_404(name)
    since, until = _shown(listed, request.args.to_dict()).period.bounds
    address = request.form.get("email", "")
    copy = actions.send_test(services().settings, services().db, listed, since, until, address, services().mailer())
    said = " ".join(f"Note: {warning}." for warning in copy.warnings)
    flash(f"Test sent: a copy went to {address}; nothing was recorded for {name}. {said}".strip(), "ok")
    query = request.query_string.decode("ascii", "replace")
    return redirect(url_for("editor.preview", name=name) + (f"?{query}" if _safe_query(query) and query else ""),
                    code=303)
