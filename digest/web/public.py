"""Public pages: list index, archive (and its Atom feed), subscribe with confirmation,
and unsubscribe (RFC 8058 one-click POST; GET only shows a button)."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, Response, abort, g, render_template, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .. import actions
from ..errors import UsageError
from ..mailers import MailerError
from ..message import recipient
from ..models import DeliveryStatus, Edition, email_key
from ..names import clean_name
from ..signing import read_unsubscribe_token
from ..subscribers import check_address
from . import check_csrf, client_address, list_or_404, state

pages = Blueprint("public", __name__)
CONFIRM = "digest-subscribe"


@pages.get("/")
def index() -> str:
    return render_template("web/index.html", lists=state()["settings"].lists)


# ------------------------------------------------------------------ archive

@pages.get("/archive/<name>/")
def archive(name: str) -> str:
    mailing_list = list_or_404(name)
    zone = mailing_list.timezone
    rows = [{"day": r.since.astimezone(zone).date().isoformat(), "subject": r.subject}
            for r in state()["db"].ledger.sent_editions(name)]
    return render_template("web/archive.html", list=mailing_list, editions=rows)


@pages.get("/archive/<name>/<day>")
def edition(name: str, day: str) -> Response:
    mailing_list = list_or_404(name)
    ledger = state()["db"].ledger
    zone = mailing_list.timezone
    found = next((r for r in ledger.sent_editions(name) if r.since.astimezone(zone).date().isoformat() == day), None)
    if found is None:
        abort(404, "No edition of that list went out that day.")
    html, _ = ledger.edition(found.id).personalise(_public_values(name))
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@pages.get("/archive/<name>/feed.atom")
def feed(name: str) -> Response:
    mailing_list = list_or_404(name)
    settings = state()["settings"]
    zone = mailing_list.timezone
    entries = [{"day": r.since.astimezone(zone).date().isoformat(), "subject": r.subject,
                "updated": (r.finished_at or r.since).isoformat()}
               for r in state()["db"].ledger.sent_editions(name)]
    body = render_template("web/feed.atom.xml", list=mailing_list, entries=entries,
                           base=settings.web.base_url, updated=entries[0]["updated"] if entries else g.now.isoformat())
    return Response(body, mimetype="application/atom+xml")


def _public_values(name: str) -> dict[str, str]:
    base = state()["settings"].web.base_url
    return {"greeting": "Hello,", "email": "a subscriber", "unsubscribe_url": f"{base}/subscribe/{name}"}


# ------------------------------------------------------------------ subscribe

@pages.get("/subscribe/<name>")
def subscribe_form(name: str) -> str:
    return render_template("web/subscribe.html", list=list_or_404(name), error=None, email="", name="")


@pages.post("/subscribe/<name>")
def subscribe(name: str) -> tuple[str, int] | str:
    mailing_list = list_or_404(name)
    check_csrf()
    address, person = request.form.get("email", "").strip(), clean_name(request.form.get("name", ""))[:100]
    if request.form.get("website"):                      # the honeypot: only robots fill it
        return _check_your_inbox(mailing_list.name)
    try:
        address = check_address(address, state()["settings"].sending.smtputf8)
    except ValueError as error:
        return render_template("web/subscribe.html", list=mailing_list, error=f"That address does not work: {error}",
                               email=address, name=person), 400
    limits = state()["limits"]
    if not limits.allow(f"client:{client_address()}", 20) or not limits.allow(f"address:{email_key(address)}", 3):
        return render_template("web/message.html", title="Too many requests",
                               message="Too many sign-ups from here; please try again in an hour."), 429
    try:
        _send_confirmation(mailing_list.name, address, person)
    except MailerError:
        return render_template("web/message.html", title="Could not send",
                               message="The confirmation email could not be sent; please try again later."), 503
    return _check_your_inbox(mailing_list.name)


def _check_your_inbox(name: str) -> str:
    return render_template("web/message.html", title="Check your inbox",
                           message=f"If the address is right, a message to confirm your subscription to {name} "
                                   "is on its way.")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(state()["key"], salt=CONFIRM)


def _send_confirmation(name: str, address: str, person: str) -> None:
    settings = state()["settings"]
    link = f"{settings.web.base_url}/confirm/{_serializer().dumps([name, address, person])}"
    text = (f"Please confirm that you want the {settings.site.title} digest ({name}) at {address}:\n\n{link}\n\n"
            "If you did not ask for it, ignore this message: nothing will be sent to you.\n")
    html = render_template("web/confirm_email.html", link=link, list_name=name, address=address)
    message = Edition(name, g.now, g.now, f"Confirm your subscription to {settings.site.title}", html, text,
                      link, {}, {})
    to = recipient(settings, state()["key"], name, 0, address, email_key(address), person, None)
    mailer = state()["mailer"]()
    try:
        for outcome in mailer.send(message, [to], lambda ids: None, f"confirm-{g.now:%Y%m%d-%H%M%S-%f}"):
            if outcome.status != DeliveryStatus.ACCEPTED:
                raise MailerError(f"confirmation to {address}: {outcome.status} {outcome.error}")
    finally:
        mailer.close()


@pages.get("/confirm/<token>")
def confirm_page(token: str) -> str:
    name, address, _, _ = _read_confirmation(token)
    return render_template("web/confirm.html", token=token, list_name=name, address=address)


@pages.post("/confirm/<token>")
def confirm(token: str) -> tuple[str, int] | str:
    check_csrf()
    name, address, person, asked_at = _read_confirmation(token)
    try:
        link = json.dumps([name, address, person, asked_at.timestamp()])    # the link's meaning, not its spelling
        actions.confirm_subscription(state()["settings"], state()["db"], list_or_404(name), address, person, asked_at,
                                     link, g.now)
    except actions.SubscribeRefused as refused:
        return render_template("web/message.html", title="Not subscribed", message=str(refused)), 409
    except UsageError as error:
        return render_template("web/message.html", title="Not subscribed", message=str(error)), 400
    return render_template("web/message.html", title="Subscribed",
                           message=f"{address} will get the next edition of {name}.")


def _read_confirmation(token: str) -> tuple[str, str, str, datetime]:
    max_age = state()["settings"].web.confirm_max_age_hours * 3600
    try:
        (name, address, person), asked_at = _serializer().loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        abort(400, "This confirmation link has expired; subscribe again to get a new one.")
    except (BadSignature, ValueError, TypeError):
        abort(400, "This confirmation link is not valid.")
    list_or_404(name)
    return name, address, person, asked_at


# ------------------------------------------------------------------ unsubscribe

@pages.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> str:
    name, address = _read_unsubscribe(token)
    return render_template("web/unsubscribe.html", token=token, list_name=name, address=address)


@pages.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> tuple[str, int] | str:
    """RFC 8058: a POST with List-Unsubscribe=One-Click unsubscribes at once, 200, no redirect."""
    name, address = _read_unsubscribe(token)
    if request.form.get("List-Unsubscribe") != "One-Click":
        abort(400, "Send List-Unsubscribe=One-Click to unsubscribe.")
    actions.unsubscribe(state()["db"], list_or_404(name), address, "one-click", g.now)
    return render_template("web/message.html", title="Unsubscribed",
                           message=f"{address} will get no more editions of {name}.")


def _read_unsubscribe(token: str) -> tuple[str, str]:
    found = read_unsubscribe_token(state()["key"], token)
    if found is None:
        abort(400, "This unsubscribe link is not valid.")
    list_or_404(found[0])
    return found

