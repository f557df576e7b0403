"""The editor's pages: the next edition exactly as the email, its text part, its size
against the budget, the reasons for every pick; pin, exclude, send a test to me."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from ..config import MailingList
from ..edition import Built, as_json, period
from ..errors import DigestError, UsageError
from ..models import PickAction
from . import check_csrf, env, list_or_404, state

pages = Blueprint("editor", __name__, url_prefix="/editor")


def _allowed() -> bool:
    return bool(session.get("editor")) or state()["insecure"]


def _guard() -> None:
    if not _allowed():
        abort(403, "Editors only: log in at /editor/login.")


@pages.get("/login")
def login_form() -> str:
    return render_template("web/login.html", error=None)


@pages.post("/login")
def login() -> ResponseReturnValue:
    check_csrf()
    expected = env(state()["settings"].web.editor_password_env)
    given = request.form.get("password", "")
    if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
        return render_template("web/login.html", error="That password is not right."), 403
    session.clear()
    session["editor"] = True
    return redirect(url_for("editor.home"), code=303)


@pages.get("/")
def home() -> str:
    _guard()
    return render_template("web/editor_home.html", lists=state()["settings"].lists)


def _built(name: str) -> tuple[MailingList, Built]:
    listed = list_or_404(name)
    since, until = _period(listed)
    return listed, actions.preview(state()["settings"], state()["db"], listed, since, until, show_why=True)


def _period(mailing_list: MailingList) -> tuple[datetime, datetime]:
    try:
        since = datetime.fromisoformat(request.args["since"]).date() if "since" in request.args else None
        until = datetime.fromisoformat(request.args["until"]).date() if "until" in request.args else None
    except ValueError:
        abort(400, "since and until are dates: YYYY-MM-DD.")
    try:
        return period(mailing_list, datetime.now(UTC), since, until)
    except UsageError as error:
        abort(400, f"That period cannot be shown: {error}.")


@pages.get("/<name>")
def preview(name: str) -> str:
    _guard()
    mailing_list, built = _built(name)
    data = as_json(built)
    picks = actions.picks(state()["db"], mailing_list)
    return render_template("web/editor.html", list=mailing_list, data=data, picks=picks,
                           budget=state()["settings"].email.max_html_bytes, query=request.query_string.decode())


@pages.get("/<name>/email.html")
def email_html(name: str) -> Response:
    return Response(_personalised(name)[0], mimetype="text/html")


@pages.get("/<name>/email.txt")
def email_text(name: str) -> Response:
    return Response(_personalised(name)[1], mimetype="text/plain")


def _personalised(name: str) -> tuple[str, str]:
    """The edition as a subscriber would get it (HTML, text), with sample values."""
    _guard()
    _, built = _built(name)
    return built.edition.personalise({"greeting": "Hello,", "email": "you@example.org", "unsubscribe_url": "#"})


@pages.post("/<name>/pick")
def pick(name: str) -> ResponseReturnValue:
    _guard()
    check_csrf()
    listed, db = list_or_404(name), state()["db"]
    comment, action = request.form.get("comment", ""), request.form.get("action", "")
    chosen = {PickAction.PIN: lambda: actions.pin(db, listed, comment, g.now),
              PickAction.EXCLUDE: lambda: actions.exclude(db, listed, comment, g.now),
              "clear": lambda: actions.unpick(db, listed, comment)}.get(action)
    if chosen is None:
        abort(400, "Unknown action.")
    try:
        chosen()
    except UsageError:
        abort(400, "No such comment.")
    query = request.form.get("query", "")
    return redirect(url_for("editor.preview", name=name) + (f"?{query}" if _safe_query(query) else ""), code=303)


def _safe_query(query: str) -> bool:
    """Only our own since/until go back into the redirect (no open redirect)."""
    return all(re.fullmatch(r"(since|until)=\d{4}-\d\d-\d\d", part) for part in query.split("&") if part)


@pages.post("/<name>/test")
def test(name: str) -> tuple[str, int] | str:
    _guard()
    check_csrf()
    listed = list_or_404(name)
    since, until = _period(listed)
    address = request.form.get("email", "")
    try:
        actions.send_test(state()["settings"], state()["db"], listed, since, until, address, state()["mailer"]())
    except DigestError as error:
        return render_template("web/message.html", title="Test not sent", message=str(error)), 400
    return render_template("web/message.html", title="Test sent",
                           message=f"A test copy went to {address}; nothing was recorded for {name}.")
