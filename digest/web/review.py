"""The review page of an edition held for approval: the edition as subscribers will get it,
who gets it and by when the editor must answer; pin, exclude, note and subject (each
builds the held edition again); Approve and send, or Skip. Open to a logged-in editor,
or to the sealed, expiring link the review mail carries (for that edition only)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from ..config import MailingList
from ..errors import UsageError
from ..models import PickAction
from . import check_csrf, list_or_404, services
from .login import editors_only, signed_in

pages = Blueprint("review", __name__, url_prefix="/editor")


def _allowed(listed: MailingList, edition_id: int) -> str:
    """The review key this request carries ("" for a logged-in editor); else the login."""
    key = request.values.get("key", "")
    if key:
        actions.approval.read_review_key(services().settings, listed, edition_id, key, g.now)
        return key
    editors_only()
    return ""


def _back(name: str, edition_id: int, key: str) -> ResponseReturnValue:
    query = {"key": key} if key and not signed_in() else {}
    return redirect(url_for("review.page", name=name, edition_id=edition_id, **query), code=303)  # type: ignore[arg-type]


@pages.get("/<name>/review/<int:edition_id>")
def page(name: str, edition_id: int) -> str:
    listed = list_or_404(name)
    key = _allowed(listed, edition_id)
    db, settings = services().db, services().settings
    record = actions.desk.edition_record(db, listed, edition_id)
    if record is None:
        abort(404, f"{listed.name} has no edition {edition_id}.")
    held = record["status"] == "held"
    due = actions.approval.deadline(listed, record["held_at"]) if held and record["held_at"] else None
    draft = actions.draft(db, listed)
    return render_template("web/review.html", list=listed, record=record, held=held, key=key, due=due,
                           picked=actions.picked(db, listed), draft=draft,
                           period=actions.of_edition(listed, record["since"], record["until"]),
                           signed_in=signed_in(), settings_title=actions.list_title(settings, listed))


@pages.get("/<name>/review/<int:edition_id>/email.html")
def email(name: str, edition_id: int) -> Response:
    listed = list_or_404(name)
    _allowed(listed, edition_id)
    found = actions.desk.sent_html(services().settings, services().db, listed, edition_id)
    if found is None:
        abort(404, "No such edition.")
    return Response(found[0], mimetype="text/html")


@pages.post("/<name>/review/<int:edition_id>/approve")
def approve(name: str, edition_id: int) -> ResponseReturnValue:
    """Approved now; the running scheduler delivers it (a web request never sends thousands)."""
    check_csrf()
    listed = list_or_404(name)
    key = _allowed(listed, edition_id)
    decided = actions.approval.approve(services().settings, services().db, listed, edition_id, g.now,
                                       deliver_now=False)
    if not decided.done:
        flash(f"Nothing more to do: this edition was {actions.approval.describe(decided)}.", "error")
        return _back(name, edition_id, key)
    order_id = actions.desk.deliver_later(services().db, listed, edition_id, g.now)
    flash("Approved: it goes to every reader now, once.", "ok")
    if not signed_in():
        return redirect(url_for("review.page", name=name, edition_id=edition_id, key=key), code=303)
    return redirect(url_for("desk.order", name=name, order_id=order_id), code=303)


@pages.post("/<name>/review/<int:edition_id>/skip")
def skip(name: str, edition_id: int) -> ResponseReturnValue:
    check_csrf()
    listed = list_or_404(name)
    key = _allowed(listed, edition_id)
    decided = actions.approval.skip(services().settings, services().db, listed, edition_id, g.now)
    flash("Skipped: this edition goes to nobody; its picks, note and subject wait for the next one." if decided.done
          else f"Nothing more to do: this edition was {actions.approval.describe(decided)}.",
          "ok" if decided.done else "error")
    return _back(name, edition_id, key)


@pages.post("/<name>/review/<int:edition_id>/edit")
def edit(name: str, edition_id: int) -> ResponseReturnValue:
    """A pin, an exclude, an undo, the note or the subject; then the held edition is built again."""
    check_csrf()
    listed = list_or_404(name)
    key = _allowed(listed, edition_id)
    db, form = services().db, request.form
    change = form.get("change", "")
    try:
        _apply(listed, change, form.get("comment", "").strip(), form)
    except UsageError as error:
        flash(f"Not done: {error}.", "error")
        return _back(name, edition_id, key)
    rebuilt = actions.approval.rebuild_held(services().settings, db, listed, edition_id, g.now)
    flash("Done; the held edition was built again with it." if rebuilt else
          "Saved for the next edition: this one is no longer held.", "ok" if rebuilt else "error")
    return _back(name, edition_id, key)


def _apply(listed: MailingList, change: str, comment: str, form: dict) -> None:
    db = services().db
    if change == "voice":
        actions.set_note(db, listed, form.get("note", ""), g.now)
        actions.set_subject(db, listed, form.get("subject", ""), g.now)
    elif change in (PickAction.PIN, PickAction.EXCLUDE) and comment:
        (actions.pin if change == PickAction.PIN else actions.exclude)(db, listed, comment, g.now)
    elif change == "clear" and comment:
        actions.unpick(db, listed, comment)
    else:
        raise UsageError("give a comment (its permalink, #c anchor or id) and what to do with it")
