"""`/c/<token>`: a link of a sent edition. Redirects to exactly that link and counts the
click as digest.signals.clicks rules; a token this instance did not make gets an error
page, never a redirect (no open redirect)."""

from __future__ import annotations

from flask import Blueprint, redirect, request
from flask.typing import ResponseReturnValue

from .. import actions
from . import client_address, services

pages = Blueprint("clicks", __name__)


@pages.get("/c/<token>")
def click(token: str) -> ResponseReturnValue:
    db = services().db
    edition_id, n, url = actions.clicks.follow(db, services().key, token)
    if services().settings.tracking.clicks == "edition":
        actions.clicks.count(db, services().clicks, client_address(), edition_id, n, head=request.method == "HEAD")
    response = redirect(url, 302)
    response.headers["Cache-Control"] = "no-store"          # every click reaches us, none is replayed by a cache
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
