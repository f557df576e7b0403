"""Public pages: list index, archive (and its Atom feed), subscribe with confirmation,
and unsubscribe (RFC 8058 one-click POST; GET only shows a button)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, Response, abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import actions
from ..config import MailingList
from ..errors import StoreError, UsageError
from ..oneline import clean_name
from . import busy, check_csrf, client_address, list_or_404, services

log = logging.getLogger(__name__)
pages = Blueprint("public", __name__)
FEED_ENTRIES = 20                      # the newest editions in the Atom feed
PER_CLIENT, PER_ADDRESS = 20, actions.PER_MAILBOX_HOUR   # sign-ups an hour from one client, to one mailbox (both forms)
PER_ADDRESS_DAY, DAY = actions.PER_MAILBOX_DAY, 86_400.0  # confirmation mails a day to one mailbox, however spelled
EMBED_PER_CLIENT, EMBED_GLOBAL = 10, 200   # the form on the blog (no CSRF token): an hour, per client and in all
SIGNUP_GLOBAL = actions.SIGNUPS_AN_HOUR    # confirmation emails an hour in all, from both forms together
# (sign-ups by mail have the same limits, counted in the database: actions/by_mail/subscribe.py)


def list_title(listed: MailingList) -> str:
    """What subscribers see as the list's name: its title, or one made from the site's title."""
    return actions.list_title(services().settings, listed)


def list_description(listed: MailingList) -> str:
    return actions.list_description(services().settings, listed)


@pages.app_context_processor
def _helpers() -> dict[str, object]:
    return {"list_title": list_title, "list_description": list_description}


@pages.get("/")
def index() -> str:
    lists = services().settings.lists
    return render_template("web/index.html", lists=lists, samples={m.name: _latest_url(m) for m in lists})


@pages.get("/health")
def health() -> Response:
    """That this instance answers, with an id only it knows (`digest doctor`'s public_url check)."""
    body = json.dumps({"ok": True, "instance": actions.instance(services().settings, services().key)})
    return Response(body, mimetype="application/json")


# ------------------------------------------------------------------ archive

@pages.get("/archive/<name>/")
def archive(name: str) -> str:
    mailing_list = list_or_404(name)
    zone = mailing_list.timezone
    rows = [{"day": r.since.astimezone(zone).date().isoformat(), "subject": r.subject,
             "date": actions.of_edition(mailing_list, r.since, r.until).label()}
            for r in actions.sent_editions(services().db, mailing_list)]
    return render_template("web/archive.html", list=mailing_list, editions=rows)


@pages.get("/archive/<name>/<day>")
def edition(name: str, day: str) -> ResponseReturnValue:
    mailing_list = list_or_404(name)
    db, zone = services().db, mailing_list.timezone
    found = next((r for r in actions.sent_editions(db, mailing_list)
                  if r.since.astimezone(zone).date().isoformat() == day), None)
    if found is None:
        return _preview_for_editor(mailing_list, day)
    html = actions.archive_html(db, found.id)
    response = Response(_with_prompt(html, mailing_list), mimetype="text/html")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _preview_for_editor(mailing_list: MailingList, day: str) -> tuple[str, int]:
    """A test copy's "View on the web" names a day that has not gone out: a 404, which
    offers the editor the preview of that period (the list's period from that day; the
    editor's pages ask for the login, whose cookie is not sent to the archive)."""
    try:
        since = date.fromisoformat(day)
        until = since + timedelta(days=max(1, mailing_list.period.days))
    except (ValueError, OverflowError):            # not a date, or a period past the year 9999
        abort(404, "No edition of that list went out that day.")
    preview = url_for("editor.preview", name=mailing_list.name, since=since.isoformat(), until=until.isoformat())
    message = f"No edition of {list_title(mailing_list)} has gone out for {since.day} {since:%B %Y} yet."
    return render_template("web/message.html", title="Not sent yet", message=message,
                           link=preview, link_text="Editors: open the preview of this edition"), 404


def _with_prompt(html: str, mailing_list: MailingList) -> str:
    """The archive copy with a subscribe prompt at the top of its body."""
    prompt = render_template("web/archive_prompt.html", list=mailing_list)
    found = re.search(r"<body[^>]*>", html, re.IGNORECASE)
    return html[:found.end()] + prompt + html[found.end():] if found else prompt + html


@pages.get("/archive/<name>/feed.atom")
def feed(name: str) -> Response:
    mailing_list = list_or_404(name)
    settings, db = services().settings, services().db
    zone = mailing_list.timezone
    entries = [{"day": r.since.astimezone(zone).date().isoformat(), "subject": r.subject,
                "updated": _rfc3339(r.finished_at or r.until), "content": _feed_content(r.id)}
               for r in actions.sent_editions(db, mailing_list)[:FEED_ENTRIES]]
    updated = max((e["updated"] for e in entries), default=_rfc3339(g.now))
    body = render_template("web/feed.atom.xml", list=mailing_list, entries=entries,
                           base=settings.web.base_url, updated=updated)
    return Response(body, mimetype="application/atom+xml")


def _rfc3339(moment: datetime) -> str:
    """UTC, to the second: equal instants compare equal as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _feed_content(edition_id: int) -> str:
    """The edition's HTML body for a feed entry (escaped by the template), without the
    document around it, and without personal parts (as in the archive)."""
    html = actions.archive_html(services().db, edition_id)
    found = re.search(r"<body[^>]*>(.*)</body>", html, re.IGNORECASE | re.DOTALL)
    return (found.group(1) if found else html).strip()


def _latest_url(mailing_list: MailingList) -> str | None:
    """The newest edition of the list in the archive (None before the first goes out)."""
    return actions.latest_edition_url(services().settings, services().db, mailing_list)


# ------------------------------------------------------------------ subscribe

@pages.get("/subscribe/<name>")
def subscribe_form(name: str) -> str:
    mailing_list = list_or_404(name)
    return _form(mailing_list)


def _form(mailing_list: MailingList, error: str | None = None, address: str = "", person: str = "") -> str:
    return render_template("web/subscribe.html", list=mailing_list, error=error, email=address, name=person,
                           sample=_latest_url(mailing_list))


@pages.post("/subscribe/<name>")
def subscribe(name: str) -> tuple[str, int] | str:
    """The form on this site: it carries a CSRF token."""
    mailing_list = list_or_404(name)
    check_csrf()
    return _sign_up(mailing_list, [])


@pages.get("/subscribe/<name>/embed")
def embed(name: str) -> str:
    """The HTML to paste into the blog (a Blogger HTML/JavaScript gadget, a WordPress
    Custom HTML widget), shown as text to copy and as it will look: the form, and the
    mailto sign-up beside it when a mailbox has an address; in mail mode only the mailto
    (nobody outside can reach the form's address)."""
    mailing_list, settings = list_or_404(name), services().settings
    snippet = None if settings.mail_mode else render_template("web/embed_snippet.html", list=mailing_list,
                                                              base=settings.web.base_url)
    by_mail = actions.signup_snippet(settings, mailing_list) if settings.mailbox.address else None
    mailto = actions.signup_mailto(settings, mailing_list) if settings.mailbox.address else None
    return render_template("web/embed.html", list=mailing_list, snippet=snippet, by_mail=by_mail, mailto=mailto)


@pages.post("/subscribe/<name>/from-blog")
def subscribe_from_blog(name: str) -> tuple[str, int] | str:
    """The form pasted into the blog posts here from the blog's own site, so it cannot
    carry our CSRF token. Nothing but a confirmation email can come of it (double
    opt-in), so the honeypot and rate limits (per client, and in all) stand in for it."""
    mailing_list = list_or_404(name)
    return _sign_up(mailing_list, [(f"embed-client:{client_address()}", EMBED_PER_CLIENT),
                                   ("embed-global", EMBED_GLOBAL)])


Limit = tuple[str, int] | tuple[str, int, float]         # (key, most) an hour, or (key, most, window in seconds)


def _sign_up(mailing_list: MailingList, limits: list[Limit]) -> tuple[str, int] | str:
    address, person = request.form.get("email", "").strip(), clean_name(request.form.get("name", ""))[:100]
    if request.form.get("website"):                      # the honeypot: only robots fill it
        return _check_your_inbox(mailing_list)
    try:
        address = actions.signup_address(services().settings, address)
    except ValueError as error:
        return _form(mailing_list, f"That address does not work: {error}", address, person), 400
    box = actions.mailbox(address)
    limits = [*limits, (f"client:{client_address()}", PER_CLIENT), (f"address:{box}", PER_ADDRESS),
              (f"address-day:{box}", PER_ADDRESS_DAY, DAY), ("signup-global", SIGNUP_GLOBAL)]
    if not services().limits.allow_all(limits):
        return render_template("web/message.html", title="Too many requests",
                               message="Too many sign-ups for now (from here, for this address or in "
                                       "all); please try again in an hour."), 429
    try:
        _send_confirmation(mailing_list, address, person)
    except (actions.MailerError, actions.NotReady) as error:
        log.warning("confirmation to %s not sent: %s", address, error)
        return render_template("web/message.html", title="Could not send",
                               message="The confirmation email could not be sent; please try again later."), 503
    return _check_your_inbox(mailing_list)


def _check_your_inbox(mailing_list: MailingList) -> str:
    return render_template("web/message.html", title="Check your inbox",
                           message=f"If the address is right, a message to confirm your subscription to "
                                   f"{list_title(mailing_list)} is on its way.")


def _send_confirmation(mailing_list: MailingList, address: str, person: str) -> None:
    actions.send_confirmation(services().settings, services().db, services().mailer(), services().key, mailing_list,
                              address, person, g.now)


def _send_welcome(mailing_list: MailingList, address: str, person: str) -> None:
    """Once per list and address; a failure is logged and lets a later click of the
    confirmation link try again."""
    try:
        actions.send_welcome(services().settings, services().db, services().mailer(), services().key, mailing_list,
                             address, person, g.now)
    except (actions.MailerError, actions.NotReady) as error:
        log.warning("welcome to %s not sent: %s", address, error)


@pages.get("/confirm/<token>")
def confirm_page(token: str) -> str:
    name, address, _, _ = _read_confirmation(token)
    return render_template("web/confirm.html", token=token, list=list_or_404(name), address=address)


@pages.post("/confirm/<token>")
def confirm(token: str) -> ResponseReturnValue:
    check_csrf()
    name, address, person, asked_at = _read_confirmation(token)
    mailing_list = list_or_404(name)
    try:
        link = json.dumps([name, address, person, asked_at.timestamp()])    # the link's meaning, not its spelling
        actions.confirm_subscription(services().settings, services().db, mailing_list, address, person, asked_at,
                                     link, g.now)
    except StoreError as error:
        if not error.busy:
            raise
        log.warning("confirmation of %s to %s waited for the database: %s", address, name, error)
        return busy("The site is busy right now (a long job holds the database); please try the link again "
                    "in a minute. It still works: it has not been used up.")
    except (actions.SubscribeRefused, UsageError) as refused:      # 409 or 400, said on the page
        return render_template("web/message.html", title="Not subscribed", message=str(refused)), refused.http_status
    _send_welcome(mailing_list, address, person)
    return render_template("web/message.html", title="Subscribed",
                           message=f"{address} will get the next edition of {list_title(mailing_list)}.")


def _read_confirmation(token: str) -> tuple[str, str, str, datetime]:
    """What the link asked for; a link not ours or too old is a 400 page saying so."""
    name, address, person, asked_at = actions.read_confirmation(services().settings, services().key, token, g.now)
    list_or_404(name)
    return name, address, person, asked_at


# ------------------------------------------------------------------ unsubscribe

@pages.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> str:
    name, address = _read_unsubscribe(token)
    return render_template("web/unsubscribe.html", token=token, list=list_or_404(name), address=address)


@pages.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> tuple[str, int] | str:
    """RFC 8058: a POST with List-Unsubscribe=One-Click unsubscribes at once, 200, no redirect."""
    name, address = _read_unsubscribe(token)
    if request.form.get("List-Unsubscribe") != "One-Click":
        abort(400, "Send List-Unsubscribe=One-Click to unsubscribe.")
    mailing_list = list_or_404(name)
    actions.unsubscribe(services().db, mailing_list, address, "one-click", g.now)
    return render_template("web/message.html", title="Unsubscribed",
                           message=f"{address} will get no more editions of {list_title(mailing_list)}.")


def _read_unsubscribe(token: str) -> tuple[str, str]:
    found = actions.read_unsubscribe(services().key, token)
    if found is None:
        abort(400, "This unsubscribe link is not valid.")
    list_or_404(found[0])
    return found

