"""The web side: the editor's preview, the archive, subscribe, unsubscribe, provider events.

A small Flask app; pages come from templates/web/. Every form carries a CSRF token
(except the RFC 8058 one-click POST, which the signed token in the URL authorises);
every page gets security headers; without a secret the app runs only in the explicit
insecure dev mode, which says so on every page.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets as random_tokens
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Request, Response, abort, g, request, session
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import actions
from ..config import MailingList, Settings
from ..db import Database
from ..errors import DigestError, StoreError, UsageError
from ..resources import templates_dir
from .limits import LoginThrottle, RateLimit

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'self'; base-uri 'none'; frame-src 'self'")


TITLES = {400: "Not done", 403: "Not allowed", 404: "Not found", 409: "Not done", 503: "Not available"}


@dataclass(frozen=True)
class Services:
    """What the views work with: made once by `create_app`, kept in app.extensions and
    read through `services()`."""

    settings: Settings
    db: Database
    key: str                                       # signs tokens and the session
    clock: Callable[[], datetime]
    mailer: Callable[[], actions.Mailer]           # a fresh mailer per message sent
    limits: RateLimit = field(default_factory=RateLimit)
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    clicks: actions.clicks.ClickRule = field(default_factory=actions.clicks.counter)

    @property
    def insecure(self) -> bool:
        """Signed with the public dev key: the explicit insecure dev mode."""
        return self.key == actions.INSECURE_KEY


def create_app(settings: Settings, db: Database, mailer: Callable[[], actions.Mailer] | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Flask:
    key = actions.signing_key(settings)
    folder = settings.path(settings.email.templates)
    app = Flask(__name__, template_folder=str(folder if (folder / "web").exists() else templates_dir()))
    app.config.update(SECRET_KEY=key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.web.base_url.startswith("https://"), MAX_CONTENT_LENGTH=1_000_000)
    made = Services(settings, db, key, clock, mailer or (lambda: actions.mailer(settings)))
    app.extensions[EXTENSION] = made
    app.jinja_env.globals.update(csrf_token=csrf_token, insecure=made.insecure, site=settings.site)
    _register(app)
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.web.trusted_proxies)   # type: ignore[method-assign]
    from . import clicks, desk, editor, login, public, review, voice, webhook
    app.register_blueprint(public.pages)
    app.register_blueprint(clicks.pages)
    app.register_blueprint(login.pages)
    app.register_blueprint(desk.pages)
    app.register_blueprint(review.pages)
    app.register_blueprint(editor.pages)
    app.register_blueprint(voice.pages)
    app.register_blueprint(webhook.pages)
    return app


FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
             "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


class TrustedProxies:
    """X-Forwarded-For, -Proto and -Host are believed from the proxies in [web].trusted_proxies
    (the client's address then comes from the proxy, for the per-client limits), and
    dropped from anyone else, who could otherwise claim any address or scheme."""

    def __init__(self, app: Any, trusted: list[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(item, strict=False) for item in trusted]
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._trusted(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        for header in FORWARDED:
            environ.pop(header, None)
        return self.app(environ, start_response)

    def _trusted(self, remote: str) -> bool:
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


EXTENSION = "digest"


def services(app: Flask | None = None) -> Services:
    """The app's services (the current app's by default)."""
    from flask import current_app
    found: Services = (app or current_app).extensions[EXTENSION]
    return found


def list_or_404(name: str) -> MailingList:
    """The list a URL names, or a 404 page."""
    try:
        return actions.mailing_list(services().settings, name)
    except UsageError:
        abort(404, f"There is no list called {name!r}.")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = random_tokens.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not random_tokens.compare_digest(sent, session.get("csrf", "")):
        abort(400, "The form expired or did not come from this site; reload the page and try again.")


def client_address() -> str:
    """The client, for limits: its IPv4 address, or its IPv6 /56 network (one household or
    one server is handed a /56 or a /64, so counting single addresses counts nothing)."""
    return client_key(request.remote_addr or "unknown")


def client_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


IPV6_PREFIX = 56


def busy(message: str = "The site is busy right now; please try again in a minute.") -> Response:
    """The 503 page for a database that is busy: try again, nothing was lost."""
    from flask import make_response, render_template
    response = make_response(render_template("web/message.html", title="Busy, try again in a minute",
                                             message=message), 503)
    response.headers["Retry-After"] = "60"
    return response


def has_nul(request_: Request) -> bool:
    """A NUL character anywhere in the path, the query or the form: PostgreSQL can neither
    store nor compare one in text, and no honest form or link carries one."""
    values = [request_.path, *(v for pair in request_.args.items(multi=True) for v in pair)]
    if request_.method not in ("GET", "HEAD", "OPTIONS"):
        values += [v for pair in request_.form.items(multi=True) for v in pair]
    return any("\x00" in value for value in values)


def _register(app: Flask) -> None:
    @app.after_request
    def headers(response):  # type: ignore[no-untyped-def]
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(HTTPException)
    def error_page(error: HTTPException):  # type: ignore[no-untyped-def]
        from flask import render_template
        return render_template("web/message.html", title=f"{error.code} {error.name}",
                               message=error.description), error.code

    @app.errorhandler(DigestError)
    def digest_error(error: DigestError):  # type: ignore[no-untyped-def]
        """Every library error, once: its page and its status (`http_status` on the class)."""
        if isinstance(error, StoreError):
            if not error.busy:
                raise error                  # a real fault: the 500 page, and the log
            log.warning("%s %s: %s", request.method, request.path, error)
            return busy()
        if error.http_status >= 500:
            log.error("%s %s: %s", request.method, request.path, error)
        from flask import render_template
        title = TITLES.get(error.http_status, "Not done")
        return render_template("web/message.html", title=title, message=str(error)), error.http_status

    @app.before_request
    def stamp() -> None:
        g.now = services().clock()

    @app.before_request
    def refuse_nul() -> None:
        if has_nul(request):
            abort(400, "The request holds a NUL character (\\0), which no text here can contain; "
                       "remove it (it often comes with text pasted from a binary file) and try again.")


def serve(settings: Settings, db: Database, host: str, port: int) -> None:
    """Serve with waitress (a production WSGI server), in the foreground."""
    from waitress import serve as waitress_serve
    app = create_app(settings, db)
    if services(app).insecure:
        log.warning("insecure dev mode: set %s before serving the public", settings.web.secret_key_env)
    waitress_serve(app, host=host, port=port, threads=4, ident="digest")


def env(name: str) -> str:
    return os.environ.get(name, "")
