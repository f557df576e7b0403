"""Fetch feed bytes over HTTP (or from a local mirror folder), politely and safely.

Timeouts, a size cap, our own User-Agent, conditional GET with the validators the
caller kept, retries with backoff on timeouts, connection errors, 429 and 5xx, and
redirects followed only within the same host. Nothing here parses or stores.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from .config import Fetch
from .errors import FetchError
from .models import Validators

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
MAX_DELAY = 30.0


@dataclass(frozen=True)
class Fetched:
    """One answer: the final URL, its status (200 or 304), body and new validators."""

    url: str
    status: int
    content: bytes
    headers: dict[str, str]
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """GETs URLs with the settings of [fetch]; counts the requests it makes."""

    def __init__(self, settings: Fetch, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self.requests = 0
        self.client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(settings.timeout),
            headers={"User-Agent": settings.user_agent, "Accept": _ACCEPT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, validators: Validators = Validators()) -> Fetched:
        """GET url, retrying what is worth retrying; raise FetchError when it cannot."""
        for attempt in range(self.settings.retries + 1):
            try:
                return self._follow(url, validators)
            except _Retryable as error:
                if attempt == self.settings.retries:
                    raise FetchError(f"{url}: {error.reason} after {attempt + 1} attempts; "
                                     "try again later or raise [fetch].retries") from None
                delay = error.wait if error.wait is not None else self._backoff(attempt)
                log.info("retrying %s in %.1fs: %s", url, delay, error.reason)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        base = self.settings.backoff * (2 ** attempt)
        return min(MAX_DELAY, base + random.uniform(0, base / 2))

    def _follow(self, url: str, validators: Validators) -> Fetched:
        host = urlsplit(url).hostname
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(current, validators)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(current, response.headers.get("location", ""))
            if urlsplit(target).hostname != host:
                raise FetchError(f"{url}: redirected to another host ({target}); "
                                 "put the new address in config.toml if it is right")
            current = target
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects; check the address")

    def _request(self, url: str, validators: Validators) -> Fetched:
        self.requests += 1
        try:
            with self.client.stream("GET", url, headers=validators.headers()) as response:
                _raise_for_status(url, response)
                content = b"" if response.status_code == 304 else self._read(url, response)
        except httpx.TimeoutException:
            raise _Retryable("timed out") from None
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed ({error.__class__.__name__}: {error})") from None
        return _fetched(url, response, content, validators)

    def _read(self, url: str, response: httpx.Response) -> bytes:
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_big(url, cap)
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > cap:
                raise _too_big(url, cap)
            chunks.append(chunk)
        return b"".join(chunks)


_ACCEPT = ("application/atom+xml, application/rss+xml, application/xml;q=0.9, "
           "application/json;q=0.9, text/xml;q=0.8, */*;q=0.5")


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _raise_for_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status}", _retry_after(response))
    if status >= 400:
        raise FetchError(f"{url}: HTTP {status} {response.reason_phrase}; "
                         "check the address in config.toml", status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(MAX_DELAY, float(value)) if value.isdigit() else None


def _too_big(url: str, cap: int) -> FetchError:
    return FetchError(f"{url}: response larger than {cap} bytes; "
                      "raise [fetch].max_bytes if the feed is really that big")


def _fetched(url: str, response: httpx.Response, content: bytes, sent: Validators) -> Fetched:
    headers = {k.lower(): v for k, v in response.headers.items()}
    if response.status_code == 304:
        validators = Validators(headers.get("etag", sent.etag),
                                headers.get("last-modified", sent.last_modified))
    else:
        validators = Validators(headers.get("etag"), headers.get("last-modified"))
    return Fetched(url, response.status_code, content, headers, validators)
