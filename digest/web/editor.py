"""The editor's pages: the next edition exactly as the email, its text part, its size
against the budget, the reasons for every pick; pin, exclude, send a test to me."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, g, redirect, render_template, request, session, url_for

from ..deliver import NothingToSend, send_test
from ..edition import as_json, build, period, picks_for
from ..errors import DigestError
from ..render import Renderer
from . import check_csrf, env, state

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
def login() -> Response | tuple[str, int]:
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


def _built(name: str):  # noqa: ANN202
    settings, store = state()["settings"], state()["store"]
    mailing_list = settings.mailing_list(name)
    if mailing_list is None:
        abort(404, f"There is no list called {name!r}.")
    since, until = _period(mailing_list)
    return mailing_list, build(settings, store, Renderer(settings, show_why=True), mailing_list, since, until,
                               picks_for(store, name))


def _period(mailing_list):  # noqa: ANN001, ANN202
    try:
        since = datetime.fromisoformat(request.args["since"]).date() if "since" in request.args else None
        until = datetime.fromisoformat(request.args["until"]).date() if "until" in request.args else None
    except ValueError:
        abort(400, "since and until are dates: YYYY-MM-DD.")
    return period(mailing_list, datetime.now(UTC), since, until)


@pages.get("/<name>")
def preview(name: str) -> str:
    _guard()
    mailing_list, built = _built(name)
    data = as_json(built)
    picks = state()["store"].picks(name)
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
def pick(name: str) -> Response:
    _guard()
    check_csrf()
    store = state()["store"]
    comment, action = request.form.get("comment", ""), request.form.get("action", "")
    if state()["settings"].mailing_list(name) is None or action not in ("pin", "exclude", "clear"):
        abort(400, "Unknown list or action.")
    if not store.has_comment(comment):
        abort(400, "No such comment.")
    if action == "clear":
        store.clear_picks(name, comment)
    else:
        store.set_pick(name, comment, action, g.now)
    query = request.form.get("query", "")
    return redirect(url_for("editor.preview", name=name) + (f"?{query}" if _safe_query(query) else ""), code=303)


def _safe_query(query: str) -> bool:
    """Only our own since/until go back into the redirect (no open redirect)."""
    return all(part.split("=")[0] in ("since", "until") and "/" not in part for part in query.split("&") if part)


@pages.post("/<name>/test")
def test(name: str) -> tuple[str, int] | str:
    _guard()
    check_csrf()
    mailing_list, _ = _built(name)
    since, until = _period(mailing_list)
    address = request.form.get("email", "")
    try:
        send_test(state()["settings"], state()["store"], name, since, until, address, state()["mailer"]())
    except (DigestError, NothingToSend) as error:
        return render_template("web/message.html", title="Test not sent", message=str(error)), 400
    return render_template("web/message.html", title="Test sent",
                           message=f"A test copy went to {address}; nothing was recorded for {name}.")
