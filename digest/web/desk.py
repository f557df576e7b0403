"""The editor's desk: the dashboard (how each list is doing), its subscribers page by page
(search, filters, add, remove, export), and "send now", which records an order the
running scheduler carries out (the page follows its progress)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from ..config import MailingList
from ..errors import UsageError
from ..models import Origin
from . import check_csrf, list_or_404, services
from .login import editors_only

pages = Blueprint("desk", __name__, url_prefix="/editor")


@pages.before_request
def _only_editors() -> None:
    editors_only()


@pages.get("/")
def home() -> str:
    settings, db = services().settings, services().db
    views = [actions.desk.list_view(settings, db, listed, g.now) for listed in settings.lists]
    tables = {listed.name: actions.desk.editions_table(db, listed) for listed in settings.lists}
    return render_template("web/dashboard.html", views=views, tables=tables, checks=actions.last_checks(db),
                           complaint_line=actions.desk.COMPLAINT_LINE,
                           asked=actions.desk.asked_to_leave(settings, db, g.now))


# ------------------------------------------------------------------ subscribers

@pages.get("/<name>/subscribers")
def subscribers(name: str) -> str:
    listed = list_or_404(name)
    args = request.args
    after = int(args["after"]) if args.get("after", "").isdigit() else 0
    rows, next_after = actions.desk.subscribers_page(services().db, listed, args.get("q", ""),
                                                     args.get("state", ""), args.get("source", ""), after)
    kept = {k: args[k] for k in ("q", "state", "source") if args.get(k)}
    later = (url_for("desk.subscribers", name=name, after=next_after, **kept)  # type: ignore[arg-type]
             if next_after else None)
    return render_template("web/subscribers.html", list=listed, rows=rows, filters=kept, states=actions.desk.STATES,
                           origins=[o.value for o in Origin], after=after, next_url=later,
                           counts=actions.desk.list_view(services().settings, services().db, listed, g.now).counts)


@pages.post("/<name>/subscribers/add")
def add_subscriber(name: str) -> ResponseReturnValue:
    check_csrf()
    listed = list_or_404(name)
    try:
        added = actions.add_subscriber(services().settings, services().db, listed, request.form.get("email", ""),
                                       request.form.get("name", ""), Origin.EDITOR, g.now)
    except UsageError as error:
        flash(f"Not added: {error}.", "error")
    else:
        flash(f"Added {added.address}" + (", but it is suppressed: it will not be mailed." if added.suppressed
                                          else "."), "ok")
    return redirect(url_for("desk.subscribers", name=name), code=303)


@pages.post("/<name>/subscribers/remove")
def remove_subscriber(name: str) -> ResponseReturnValue:
    check_csrf()
    listed = list_or_404(name)
    address = request.form.get("email", "")
    try:
        found = actions.remove_subscriber(services().db, listed, address, g.now)
    except UsageError as error:
        flash(f"Not removed: {error}.", "error")
    else:
        flash(f"Removed {address}: it gets nothing more from {actions.list_title(services().settings, listed)}"
              + ("." if found else " (it was not on the list; it is kept off it anyway)."), "ok")
    back = request.form.get("back", "")
    here = url_for("desk.subscribers", name=name)
    return redirect(back if back.startswith(f"/editor/{name}/subscribers") else here, code=303)


@pages.get("/<name>/subscribers.csv")
def export_subscribers(name: str) -> Response:
    listed = list_or_404(name)
    response = Response(actions.export_subscribers(services().db, listed), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{listed.name}-{g.now:%Y-%m-%d}.csv"'
    return response


# ------------------------------------------------------------------ send now

@pages.get("/<name>/send")
def send_form(name: str) -> str:
    """What would go: the same confirmation the CLI gives (subject, recipients, size), and
    the threads subscribers would get twice."""
    listed, settings, db = list_or_404(name), services().settings, services().db
    period = _period(listed)
    problems = actions.desk.read_list_file(settings, db, listed, g.now)     # as the CLI does before its prompt
    built = actions.preview(settings, db, listed, *period.bounds)
    return render_template("web/send.html", list=listed, period=period, built=built,
                           recipients=actions.desk.list_view(settings, db, listed, g.now).counts.confirmed,
                           repeats=problems + actions.desk.repeats(db, listed, built, *period.bounds),
                           alive=actions.desk.scheduler_alive(services().db, g.now),
                           held=actions.approval.held(services().db, listed))


@pages.post("/<name>/send")
def send(name: str) -> ResponseReturnValue:
    check_csrf()
    listed = list_or_404(name)
    since, until = _period(listed).bounds
    order_id = actions.desk.send_now(services().db, listed, since, until, g.now)
    flash("Sending: the scheduler carries it out within seconds; this page follows it.", "ok")
    return redirect(url_for("desk.order", name=name, order_id=order_id), code=303)


def _period(listed: MailingList) -> actions.Period:
    """The period the form names (since, until), or the next edition's."""
    try:
        since = datetime.fromisoformat(request.values["since"]).date() if request.values.get("since") else None
        until = datetime.fromisoformat(request.values["until"]).date() if request.values.get("until") else None
    except ValueError:
        abort(400, "since and until are dates: YYYY-MM-DD.")
    return actions.period(listed, g.now, since, until)


@pages.get("/<name>/orders/<int:order_id>")
def order(name: str, order_id: int) -> str:
    listed = list_or_404(name)
    found = actions.desk.order(services().db, listed, order_id, g.now)
    if found is None:
        abort(404, "No such order.")
    return render_template("web/order.html", list=listed, order=found)
