"""The editor's login: a password from the environment, throttled per client and for
all clients together (429 with a growing delay), a server-side session (the cookie
holds a random token, the database its SHA-256) that expires after web.session_hours
and ends at logout. Insecure dev mode never opens the editor: it only relaxes link
signing for the demo."""

from __future__ import annotations

import math
import re
import secrets

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from . import check_csrf, client_address, env, services

pages = Blueprint("login", __name__, url_prefix="/editor")
COOKIE = "digest_editor"
COOKIE_PATH = "/editor"
NEXT = re.compile(r"/editor/[A-Za-z0-9_./?&=%-]{0,500}")       # a path of the editor's, nothing else


def signed_in() -> bool:
    """The request carries the token of a live session (not logged out, not expired)."""
    return actions.session_live(services().db, request.cookies.get(COOKIE, ""), g.now)


def editors_only() -> None:
    """A live login, or: a page asked for is the login form, which comes back here after;
    a form posted is refused (403). Insecure dev mode never opens the editor."""
    if signed_in():
        return
    if request.method in ("GET", "HEAD"):
        abort(redirect(url_for("login.form", next=request.full_path.rstrip("?")), code=303))
    abort(403, "Editors only: log in at /editor/login.")


def _next() -> str:
    """Where to go after logging in: an editor's page of this site, never elsewhere."""
    wanted = request.args.get("next") or request.form.get("next") or ""
    return wanted if NEXT.fullmatch(wanted) else url_for("desk.home")


@pages.get("/login")
def form() -> str:
    return render_template("web/login.html", error=None, signed_in=signed_in(), next=_next())


@pages.post("/login")
def log_in() -> ResponseReturnValue:
    check_csrf()
    throttle, client, now = services().login_throttle, client_address(), g.now.timestamp()
    wait = throttle.wait(client, now)
    if wait:
        return _too_many(wait)
    settings = services().settings
    expected = env(settings.web.editor_password_env)
    if not expected:
        return _refused(f"No editor password is set: export {settings.web.editor_password_env} "
                        "where `digest serve` runs.", 403)
    if not secrets.compare_digest(request.form.get("password", "").encode(), expected.encode()):
        throttle.failed(client, now)
        return _refused("That password is not right.", 403)
    throttle.succeeded(client)
    return _start_session()


@pages.post("/logout")
def log_out() -> ResponseReturnValue:
    check_csrf()
    token = request.cookies.get(COOKIE, "")
    if token:
        actions.end_session(services().db, token, g.now)
    session.clear()
    response = redirect(url_for("login.form"), code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=_https(), httponly=True, samesite="Lax")
    return response


def _start_session() -> ResponseReturnValue:
    token = secrets.token_urlsafe(32)
    hours = actions.start_session(services().settings, services().db, token, g.now)
    session.clear()                         # a fresh CSRF token for the logged-in editor
    response = redirect(_next(), code=303)
    response.set_cookie(COOKIE, token, max_age=int(hours * 3600), path=COOKIE_PATH, secure=_https(),
                        httponly=True, samesite="Lax")
    return response


def _refused(message: str, status: int) -> tuple[str, int]:
    return render_template("web/login.html", error=message, signed_in=False, next=_next()), status


def _too_many(wait: float) -> tuple[str, int, dict[str, str]]:
    seconds = math.ceil(wait)
    message = f"Too many failed logins: try again in {seconds} second{'s' if seconds != 1 else ''}."
    return (render_template("web/login.html", error=message, signed_in=False, next=_next()), 429,
            {"Retry-After": str(seconds)})


def _https() -> bool:
    return str(services().settings.web.base_url).startswith("https://")
