"""SendGrid's v3 mail/send: the edition once per request, up to 1000 personalizations.

Per-subscriber values travel as substitutions, with List-Unsubscribe headers and
custom_args (list, edition, subscriber) per personalization. 429 waits for
X-RateLimit-Reset (or Retry-After), and so do the send's other workers; 5xx and
connection failures are retried with capped exponential backoff and jitter (that
request only); 400/401/403 stop the send with SendGrid's own message; 413 splits the
batch; a timeout after the request went out leaves the batch's outcome unknown.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import re
import time
import urllib.error
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from ...backends import Backend, Events, Relay, register
from ...config import SendSettings
from ...models import DeliveryStatus, Mail, Outcome
from ..message import HeaderInjection, Recipient, check_headers, list_id, sender
from . import MailerError, MarkInFlight

log = logging.getLogger(__name__)
MAX_DELAY = 60.0
FATAL = {400: "request refused", 401: "API key refused", 403: "not allowed (is the sender verified?)"}
MAX_SCOPES = 64 * 1024          # bytes of /v3/scopes read by the doctor: a server cannot make it read gigabytes


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class SendGridMailer:
    record_each = False
    def __init__(self, settings: SendSettings, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        config = settings.sending.sendgrid
        key = os.environ.get(config.api_key_env, "")
        if not key:
            raise MailerError(f"{config.api_key_env} is not set; export your SendGrid API key "
                              "(or choose another [sending].backend)")
        self.config = config
        self.batch_size = config.batch_size
        self.client = SendGridAPIClient(key, host=config.host)
        self.origin = sender(settings)
        self.sleep, self.clock = sleep, clock
        self.requests = 0
        self.gate: Any = None           # the send's pace (send.pace.Gate): a 429 slows every worker

    def send(self, edition: Mail, recipients: list[Recipient], in_flight: MarkInFlight,
             folder: str) -> Iterator[Outcome]:
        """One request per batch. A recipient SendGrid cannot take (a non-ASCII local part:
        SendGrid has no SMTPUTF8) or whose headers would break is refused alone, first."""
        fit = []
        for to in recipients:
            problem = self._problem(edition, to)
            if problem:
                yield Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=problem)
            else:
                fit.append(to)
        going = set(in_flight([r.delivery_id for r in fit])) if fit else set()
        fit = [r for r in fit if r.delivery_id in going]
        if fit:
            yield from self._send(edition, fit)

    def _problem(self, edition: Mail, to: Recipient) -> str | None:
        if to.smtputf8:
            return (f"{to.email}: SendGrid cannot deliver to an address with non-ASCII characters before the @ "
                    "(no SMTPUTF8); use the smtp backend with a relay that supports it")
        try:
            check_headers({"Subject": edition.subject, "To": to.name, **to.headers})
        except HeaderInjection as error:
            return str(error)
        return None

    def _send(self, edition: Mail, recipients: list[Recipient]) -> Iterator[Outcome]:
        body = self._body(edition, recipients)
        for attempt in range(self.config.retries + 1):
            if attempt and self.gate is not None:
                self.gate.wait_out_pause()                 # another worker's 429 holds this retry too
            try:
                message_id = self._post(body, recipients)
            except _Retry as retry:
                if attempt == self.config.retries:     # not sent: try again later, not refused
                    log.warning("SendGrid: %s after %d attempts; %d messages deferred",
                                retry.reason, attempt + 1, len(recipients))
                    yield from (Outcome(r.delivery_id, DeliveryStatus.PENDING,
                                        error=f"SendGrid: {retry.reason} after {attempt + 1} attempts")
                                for r in recipients)
                    return
                self.sleep(retry.wait if retry.wait is not None else self._backoff(attempt))
                continue
            except _TooLarge:
                yield from self._split(edition, recipients)
                return
            except _Unknown as unknown:
                yield from (Outcome(r.delivery_id, DeliveryStatus.UNKNOWN, error=str(unknown)) for r in recipients)
                return
            yield from (Outcome(r.delivery_id, DeliveryStatus.ACCEPTED, message_id) for r in recipients)
            return

    def _split(self, edition: Mail, recipients: list[Recipient]) -> Iterator[Outcome]:
        if len(recipients) == 1:
            yield Outcome(recipients[0].delivery_id, DeliveryStatus.REFUSED,
                          error="413: message too large for SendGrid")
            return
        half = len(recipients) // 2
        log.info("SendGrid said 413: splitting a batch of %d", len(recipients))
        try:
            yield from self._send(edition, recipients[:half])
        except MailerError as error:              # the second half never went either
            error.unsent = [*error.unsent, *(r.delivery_id for r in recipients[half:])]
            raise
        yield from self._send(edition, recipients[half:])

    def _post(self, body: dict[str, Any], recipients: list[Recipient]) -> str | None:
        self.requests += 1
        try:
            response = self.client.client.mail.send.post(request_body=body, timeout=self.config.timeout)
        except HTTPError as error:
            self._refused(error, recipients)
        except urllib.error.URLError as error:          # before the request was sent: safe to retry
            raise _Retry(f"cannot reach {self.config.host} ({error.reason})") from None
        except (TimeoutError, http.client.HTTPException, ConnectionError) as error:
            raise _Unknown(f"no answer after sending ({error.__class__.__name__}); "
                           "the batch may or may not have gone") from None
        headers = {k.lower(): v for k, v in dict(response.headers).items()}
        return headers.get("x-message-id")

    def _refused(self, error: HTTPError, recipients: list[Recipient]) -> None:
        status = error.status_code
        headers = {k.lower(): v for k, v in dict(error.headers or {}).items()}
        if status == 429:
            wait = _rate_limit_wait(headers, self.clock())
            if self.gate is not None:
                self.gate.pause(wait if wait is not None else self.config.backoff)
            raise _Retry("rate limited (429)", wait)
        if status >= 500:
            raise _Retry(f"HTTP {status}")
        if status == 413:
            raise _TooLarge()
        reason = FATAL.get(status, f"HTTP {status}")
        raise MailerError(f"SendGrid {status}, {reason}: {_provider_message(error.body)}; "
                          f"check {self.config.api_key_env} and [sending].from, then run again to resume",
                          [r.delivery_id for r in recipients])

    def _backoff(self, attempt: int) -> float:
        base = self.config.backoff * 2 ** attempt
        return min(MAX_DELAY, base + random.uniform(0, base / 2))

    def _body(self, edition: Mail, recipients: list[Recipient]) -> dict[str, Any]:
        replies = {r.headers["Reply-To"] for r in recipients if "Reply-To" in r.headers}
        return {
            "personalizations": [self._personalization(edition, r) for r in recipients],
            **({"reply_to": {"email": replies.pop()}} if len(replies) == 1 else {}),   # a header SendGrid reserves
            "from": {"email": self.origin.addr_spec, **({"name": self.origin.display_name}
                                                          if self.origin.display_name else {})},
            "subject": edition.subject,
            "content": [{"type": "text/plain", "value": edition.text},
                        {"type": "text/html", "value": edition.html}],
            "headers": {"List-Id": list_id(edition.list_name, self.origin)},
        }

    @staticmethod
    def _personalization(edition: Mail, to: Recipient) -> dict[str, Any]:
        person = {"email": to.email, **({"name": to.name} if to.name else {})}
        return {"to": [person], "substitutions": edition.substitutions(to.values),
                "headers": {k: v for k, v in to.headers.items() if k != "Reply-To"},
                "custom_args": dict(to.custom_args)}

    def close(self) -> None:
        return None


def _rate_limit_wait(headers: dict[str, str], now: float) -> float | None:
    """Seconds to wait after a 429: X-RateLimit-Reset (a Unix time) or Retry-After
    (seconds), at most MAX_DELAY; None when it says neither (the backoff decides)."""
    reset, after = headers.get("x-ratelimit-reset", "").strip(), headers.get("retry-after", "").strip()
    if _SECONDS.fullmatch(reset):
        return min(MAX_DELAY, max(0.0, float(reset) - now))
    if _SECONDS.fullmatch(after):
        return min(MAX_DELAY, float(after))
    return None


_SECONDS = re.compile(r"[0-9]{1,12}")        # ASCII digits only: "²" is a digit to str.isdigit, not to float


class _TooLarge(Exception):
    pass


class _Unknown(Exception):
    pass


def _provider_message(body: bytes | str | None) -> str:
    try:
        errors = json.loads(body or b"{}").get("errors", [])
        return "; ".join(str(e.get("message", e)) for e in errors) or str(body)[:200]
    except (ValueError, AttributeError):
        return str(body)[:200]


def check_key(settings: SendSettings, env: Mapping[str, str], timeout: float) -> str:
    """For the doctor: SendGrid asked what the API key may do (GET /v3/scopes), nothing
    sent; MailerError unless it may send mail."""
    config = settings.sending.sendgrid
    key, where = env.get(config.api_key_env, ""), config.api_key_env
    if not key:
        raise MailerError(f"{where} is not set; export {where}=<an API key with the Mail Send permission>")
    try:
        status, scopes = _scopes(config.host, key, timeout)
    except httpx.HTTPError as error:
        raise MailerError(f"SendGrid at {config.host} did not answer ({error.__class__.__name__}); check the "
                          "network and [sending.sendgrid].host") from None
    if status in (401, 403):
        raise MailerError(f"SendGrid refused the key in {where} ({status}); create an API key with the Mail Send "
                          "permission and export it")
    if "mail.send" not in scopes:
        raise MailerError(f"the key in {where} cannot send (scopes: {', '.join(scopes[:8]) or 'none'}); give the "
                          "key the Mail Send permission (Settings > API Keys)")
    return f"SendGrid: the key in {where} may send (mail.send)"


def _scopes(host: str, key: str, timeout: float) -> tuple[int, list[str]]:
    """(status, the scopes listed in at most MAX_SCOPES bytes of the answer)."""
    body = b""
    with httpx.stream("GET", f"{host}/v3/scopes", headers={"Authorization": f"Bearer {key}"},
                      timeout=timeout) as answer:
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) >= MAX_SCOPES:
                break
    try:
        found = json.loads(body[:MAX_SCOPES]).get("scopes") if answer.status_code == 200 else None
    except (ValueError, RecursionError, AttributeError):
        found = None
    return answer.status_code, [s for s in found if isinstance(s, str)] if isinstance(found, list) else []


register(Backend(
    "sendgrid", SendGridMailer, workers=lambda sending: sending.sendgrid.concurrency,
    relay=Relay(check_key, spf_include=lambda sending: "sendgrid.net", dkim_selectors=("s1", "s2"),
                dkim_setup="in SendGrid, Settings > Sender Authentication > Authenticate your domain ({domain}), "
                           "then publish the CNAME records it shows: {names}"),
    events=Events("digest.signals.sendgrid", key_env=lambda web: web.webhook_public_key_env,
                  setup="in SendGrid, Settings > Mail Settings > Event Webhook: POST URL {url}, Signature "
                        "Verification on; then export {env}=<its verification key>")))
