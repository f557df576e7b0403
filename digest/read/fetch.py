"""Fetch feed bytes over HTTP (or from a local mirror folder), politely and safely.

Timeouts (per read, and a deadline for each request in all, so a server that drips
bytes cannot hold a fetch forever), a size cap, our own User-Agent, conditional GET
with the validators the caller kept, retries with backoff on timeouts, connection
errors, 429 and 5xx, and redirects followed only within the same host. Links read
from a feed are followed only to the hosts the caller allows (`check_host`,
`allowed_hosts_for`), over http(s), without credentials. Nothing here parses or stores.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from ..config import Fetch
from ..models import Validators
from .errors import FetchError
from .mirror import LOCAL_HOST

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
    """GETs URLs with the settings of [fetch]; counts the requests it makes.

    `allowed_hosts` (see `allowed_hosts_for`) are the hosts a URL may be on; None
    allows any host. Either way only http(s) URLs without credentials are fetched.
    """

    def __init__(self, settings: Fetch, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, *,
                 allowed_hosts: frozenset[str] | None = None) -> None:
        self.settings = settings
        self.sleep = sleep
        self.allowed_hosts = allowed_hosts
        self.requests = 0
        self.client = httpx.Client(
            transport=transport or _deadline_transport(),
            # no single read may outlast the deadline the whole request has
            timeout=httpx.Timeout(min(settings.timeout, settings.deadline)),
            headers={"User-Agent": settings.user_agent, "Accept": _ACCEPT, "Accept-Encoding": _ACCEPT_ENCODING},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, validators: Validators = Validators()) -> Fetched:
        """GET url, retrying what is worth retrying; raise FetchError when it cannot.

        A URL on a host that is not allowed is refused before any request is made.
        """
        check_host(url, self.allowed_hosts)
        for attempt in range(self.settings.retries + 1):
            try:
                return self._follow(url, validators)
            except _Retryable as error:
                if attempt == self.settings.retries:
                    raise FetchError(f"{url}: {error.reason} after {attempt + 1} attempts; "
                                     f"try again later or raise [fetch].{error.setting}") from None
                delay = error.wait if error.wait is not None else self._backoff(attempt)
                log.info("retrying %s in %.1fs: %s", url, delay, error.reason)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        base = self.settings.backoff * (2 ** attempt)
        return min(MAX_DELAY, base + random.uniform(0, base / 2))

    def _follow(self, url: str, validators: Validators) -> Fetched:
        host = _host(url)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(current, validators)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(current, response.headers.get("location", ""))
            if _host(target) != host:
                raise FetchError(f"{url}: redirected to another host ({_shown(target)}); "
                                 "put the new address in the source's url in the config file if it is right")
            check_host(target, self.allowed_hosts)
            current = target
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects; check the address")

    def _request(self, url: str, validators: Validators) -> Fetched:
        """One GET, headers and body, within [fetch].deadline seconds in all.

        The per-read timeout bounds each wait for bytes (a silent server); the
        deadline, checked as each chunk arrives, bounds a server that keeps sending
        a little at a time. Either way the request ends no later than the deadline
        plus one read timeout (itself at most the deadline).
        """
        self.requests += 1
        ends = time.monotonic() + self.settings.deadline
        try:
            with _until(ends), self.client.stream("GET", url, headers=validators.headers()) as response:
                self._in_time(ends)
                _raise_for_status(url, response)
                content = b"" if response.status_code == 304 else self._read(url, response, ends)
        except httpx.TimeoutException:
            self._in_time(ends)
            raise _Retryable("timed out") from None
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed ({error.__class__.__name__}: {error})") from None
        return _fetched(url, response, content, validators)

    def _in_time(self, ends: float) -> None:
        if time.monotonic() >= ends:
            raise _Retryable(f"took longer than {self.settings.deadline:g} s in all "
                             "(the server sends too slowly)", setting="deadline")

    def _read(self, url: str, response: httpx.Response, ends: float) -> bytes:
        """The body, decoded by us (gzip or deflate, once) so that max_bytes bounds what
        it unpacks to, not just what came over the wire: a 2 kB bomb stays 2 kB."""
        cap = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_big(url, cap)
        unpack = _decoder(url, response.headers.get("content-encoding", ""))
        chunks, size = [], 0
        for raw in _raw_chunks(response):
            self._in_time(ends)
            chunk = unpack.decompress(raw, cap + 1 - size) if unpack else raw
            size += len(chunk)
            if size > cap or (unpack and unpack.unconsumed_tail):
                raise _too_big(url, cap)
            chunks.append(chunk)
        return b"".join(chunks)


# ------------------------------------------------------------------ a deadline httpx cannot give

_deadline = threading.local()


@contextmanager
def _until(ends: float) -> Iterator[None]:
    """Every socket operation of this thread's request ends by `ends` (monotonic)."""
    _deadline.ends = ends
    try:
        yield
    finally:
        _deadline.ends = None


def _bounded(timeout: float | None) -> float | None:
    """A socket wait no longer than the time left to the request's deadline."""
    ends = getattr(_deadline, "ends", None)
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes wait no longer than the deadline allows
    (httpx's own timeout restarts with every read, so headers sent one byte at a time
    would never end)."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(super().connect_tcp(host, port, _bounded(timeout), local_address, socket_options))


def _deadline_transport() -> httpx.HTTPTransport:
    """httpx's transport with connections that keep to the deadline. httpx does not pass
    a network backend through, so it is set on its connection pool (httpcore 1.x)."""
    transport = httpx.HTTPTransport()
    pool = transport._pool
    if isinstance(pool, httpcore.ConnectionPool):
        pool._network_backend = _DeadlineBackend()
    return transport


def _raw_chunks(response: httpx.Response) -> Any:
    """The body as it came (a transport may hand over a body already in memory)."""
    try:
        yield from response.iter_raw()
    except httpx.StreamConsumed:
        yield response.content


def _decoder(url: str, encoding: str) -> Any:
    """A bounded decompressor for the one encoding we ask for, or None for none."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)       # gzip or zlib header, detected
    raise FetchError(f"{url}: answered with Content-Encoding {encoding!r}, which digest did not ask for; "
                     "check the address")


_ACCEPT_ENCODING = "gzip, deflate"
_ACCEPT = ("application/atom+xml, application/rss+xml, application/xml;q=0.9, "
           "application/json;q=0.9, text/xml;q=0.8, */*;q=0.5")


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None, setting: str = "retries") -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.setting = setting      # the [fetch] key to raise if it keeps happening


# ------------------------------------------------------------------ which hosts a link may be on

def allowed_hosts_for(source_url: str, extra: list[str], offline: bool = False) -> frozenset[str]:
    """The hosts a source's links may be on: its own URL's host and `extra`.

    `source_url` is the http(s) URL the source is read from (for an offline source,
    the URL `mirror.start_url` begins with); `extra` is its [[sources]].allow_hosts,
    each a host name (any case, Unicode or IDNA) or a URL whose host is taken.
    A host is compared with its port when the port is not the scheme's own (80, 443).
    The mirror's pseudo-host is allowed for offline sources only (online it would go to DNS).
    """
    hosts = {LOCAL_HOST} if offline else set()
    own = _host(source_url) if re.match(r"^https?://", source_url, re.IGNORECASE) else None
    if own:
        hosts.add(own)
    for entry in extra:
        host = _host(entry if "://" in entry else f"http://{entry.strip()}/")
        if not host:
            raise FetchError(f"{entry!r}: not a host name; write [[sources]].allow_hosts "
                             "as names such as \"blog.example.org\"")
        hosts.add(host)
    return frozenset(hosts)


def check_host(url: str, allowed: frozenset[str] | None) -> None:
    """Raise FetchError unless url is http(s), has no user name or password, and is
    on one of the `allowed` hosts (as `allowed_hosts_for` gives them; None = any)."""
    shown = _shown(url)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise FetchError(f"{shown}: not a usable link ({error}); check the feed") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"{shown}: not an http or https link; digest fetches only those")
    if parsed.userinfo:
        raise FetchError(f"{shown}: a link with a user name or password in it; "
                         "digest does not send credentials a feed gives it")
    host = _normal_host(parsed)
    if not host:
        raise FetchError(f"{shown}: a link without a host; check the feed")
    if allowed is not None and host not in allowed:
        raise FetchError(f"{shown}: a link on another host ({host}) than the source's; "
                         "add it to [[sources]].allow_hosts if the blog really lives there")


def _host(url: str) -> str:
    """The host httpx would connect to: lower case, IDNA (xn--), no trailing dot, and
    `:port` when the port is not 80 or 443 (http and https of one name are one blog)."""
    try:
        return _normal_host(httpx.URL(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""


def _normal_host(url: httpx.URL) -> str:
    name = url.raw_host.decode("ascii", "replace").lower().rstrip(".")
    return name if url.port in (None, 80, 443) else f"{name}:{url.port}"


def _shown(url: str) -> str:
    """The URL for a message: without any user name or password, on one line."""
    text = re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@]*@", r"\1", url)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _raise_for_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status}", _retry_after(response))
    if status >= 400:
        raise FetchError(f"{url}: HTTP {status} {response.reason_phrase}; check the source's url in the "
                         "config, or, for a link the feed gave, whether the blog still serves it", status)


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
