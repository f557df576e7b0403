"""The editor's voice on the web: the note and subject of a list's next edition.

The form (templates/web/editor_voice.html) is included in the editor's page; it reads
the draft through the `voice_draft` template global and posts here."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from . import check_csrf, list_or_404, services
from .login import editors_only

pages = Blueprint("voice", __name__, url_prefix="/editor")
QUERY = re.compile(r"[A-Za-z0-9=&_.-]{0,200}")     # the editor's own period query, sent back after a save


@pages.app_template_global("voice_draft")
def voice_draft(name: str) -> dict[str, str]:
    """{"note": Markdown or "", "subject": text or ""} waiting for the list's next edition."""
    found = actions.draft(services().db, list_or_404(name))
    return {"note": found.note or "", "subject": found.subject or ""}


@pages.post("/<name>/voice")
def save(name: str) -> ResponseReturnValue:
    """Save the note and subject (a blank field clears it), or clear one of them."""
    editors_only()
    check_csrf()
    listed, db = list_or_404(name), services().db
    form = request.form
    action = form.get("action", "save")
    if action not in ("save", "clear-note", "clear-subject"):
        abort(400, "Unknown action.")
    if action in ("save", "clear-note"):
        actions.set_note(db, listed, None if action == "clear-note" else form.get("note", ""), g.now)
    if action in ("save", "clear-subject"):
        actions.set_subject(db, listed, None if action == "clear-subject" else form.get("subject", ""), g.now)
    query = form.get("query", "")
    flash("Saved: the note and subject go out with the next edition." if action == "save" else "Cleared.", "ok")
    back = url_for("editor.preview", name=name)
    return redirect(back + (f"?{query}" if query and QUERY.fullmatch(query) else ""), code=303)
