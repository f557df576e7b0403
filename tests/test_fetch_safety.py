"""The fetcher's limits against real servers on loopback: a deadline for each request
however slowly the server sends, links followed only to the source's hosts, and
mirror files read in the encoding they declare."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.config import Fetch
from digest.read import parse
from digest.read.errors import FetchError
from digest.read.fetch import Fetcher, allowed_hosts_for, check_host
from digest.read.mirror import LOCAL_HOST, start_url

from .support.feedserver import FeedServer

ENCODINGS = Path(__file__).resolve().parent / "data" / "encodings"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TITLES = ["Café au lait — première", "Über den Fluss — zweite"]


# ------------------------------------------------------------------ servers

class Drip:
    """A raw HTTP server on loopback: full headers at once, then the body one byte
    every `every` seconds for ever (or, with every=None, nothing at all). With
    in_headers, the status line, then one header line every `every` seconds instead."""

    def __init__(self, every: float | None, in_headers: bool = False) -> None:
        self.every = every
        self.in_headers = in_headers
        self.stopped = threading.Event()
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed"

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                data = connection.recv(4096)
                if not data:
                    return
                request += data
            if self.in_headers:
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
            else:
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                                   b"Content-Length: 1000000\r\n\r\n")
            try:
                while not self.stopped.wait(self.every if self.every is not None else 0.1):
                    if self.every is not None:
                        connection.sendall(b"X-Slow: a\r\n" if self.in_headers else b" ")
            except OSError:         # the client gave up and hung up: what we want
                return


class Recorder:
    """A tiny HTTP server on another loopback address that records every request."""

    def __init__(self, address: str, body: bytes) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                recorder.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((address, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def atom(title: str, next_url: str | None = None) -> bytes:
    link = f'<link rel="next" href="{next_url}"/>' if next_url else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f'<title>{title}</title><id>urn:t</id><updated>2024-03-01T00:00:00Z</updated>{link}'
            f'<entry><id>urn:t:{title}</id><title>{title}</title><link href="https://t.example/1"/>'
            f'<updated>2024-03-01T00:00:00Z</updated></entry></feed>').encode()


@pytest.fixture
def drip() -> Iterator[Drip]:
    server = Drip(every=0.2)
    yield server
    server.stop()


@pytest.fixture
def header_drip() -> Iterator[Drip]:
    server = Drip(every=0.2, in_headers=True)
    yield server
    server.stop()


@pytest.fixture
def silent() -> Iterator[Drip]:
    server = Drip(every=None)
    yield server
    server.stop()


@pytest.fixture
def blog(feed_server: FeedServer) -> FeedServer:
    """Here the blog is the bare feed server (conftest's `blog` wraps it in the sample)."""
    return feed_server


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    server = Recorder("127.0.0.2", atom("Elsewhere"))
    yield server
    server.stop()


# ------------------------------------------------------------------ 1. a deadline for each request

def test_a_server_dripping_bytes_is_cut_off_at_the_deadline(drip):
    client = Fetcher(Fetch(deadline=1, timeout=5, retries=0), sleep=lambda _: None)
    started = time.monotonic()
    with pytest.raises(FetchError) as raised:
        client.get(drip.url)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 4
    message = str(raised.value)
    assert message == (f"{drip.url}: took longer than 1 s in all (the server sends too slowly) "
                       "after 1 attempts; try again later or raise [fetch].deadline")
    assert "\n" not in message


def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline(header_drip):
    """httpx's read timeout restarts with every line of headers: the deadline does not."""
    client = Fetcher(Fetch(deadline=1, timeout=5, retries=0), sleep=lambda _: None)
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        client.get(header_drip.url)
    assert time.monotonic() - started < 2.5
    assert "took longer than 1 s in all (the server sends too slowly)" in str(caught.value)


def test_the_deadline_is_retried_like_a_timeout(drip):
    slept: list[float] = []
    client = Fetcher(Fetch(deadline=0.6, timeout=5, retries=1, backoff=0.5), sleep=slept.append)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"took longer than 0.6 s in all .* after 2 attempts"):
        client.get(drip.url)
    assert time.monotonic() - started < 4
    assert client.requests == 2 and len(slept) == 1 and 0.5 <= slept[0] <= 0.75
    assert drip.connections == 2


def test_a_server_silent_after_its_headers_is_cut_off_at_the_deadline(silent):
    """The per-read timeout is never longer than the deadline, so silence ends too."""
    client = Fetcher(Fetch(deadline=1, timeout=5, retries=0), sleep=lambda _: None)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"took longer than 1 s in all"):
        client.get(silent.url)
    assert time.monotonic() - started < 4


def test_a_quick_answer_is_not_touched_by_the_deadline(blog):
    blog.add("/feed", atom("Quick"))
    client = Fetcher(Fetch(deadline=1, timeout=5, retries=0))
    assert client.get(blog.base_url + "/feed").content == atom("Quick")


# ------------------------------------------------------------------ 2. links only on allowed hosts

@pytest.mark.parametrize("where", ["other address", "localhost"])
def test_a_next_link_to_another_host_is_refused_before_connecting(blog, elsewhere, where):
    port = blog.base_url.rsplit(":", 1)[1]
    target = (elsewhere.base_url if where == "other address" else f"http://localhost:{port}") + "/page2"
    blog.add("/feed", atom("Home", next_url=target))
    blog.add("/page2", atom("Page two"))
    client = Fetcher(Fetch(retries=0), allowed_hosts=allowed_hosts_for(blog.base_url + "/feed", []))
    first = client.get(blog.base_url + "/feed")
    next_url = parse.next_link(parse.read(first.content, first.url, first.headers))
    assert next_url == target

    host = ("127.0.0.2" if where == "other address" else "localhost") + f":{target.split(':')[2].split('/')[0]}"
    with pytest.raises(FetchError) as raised:
        client.get(next_url)
    assert str(raised.value) == (f"{target}: a link on another host ({host}) than the source's; "
                                 "add it to [[sources]].allow_hosts if the blog really lives there")
    assert client.requests == 1
    assert elsewhere.paths == [] and [seen.path for seen in blog.requests] == ["/feed"]

    listed = Fetcher(Fetch(retries=0), allowed_hosts=allowed_hosts_for(blog.base_url + "/feed", [host]))
    answer = listed.get(next_url)
    assert answer.status == 200 and answer.url == target
    assert (elsewhere.paths, [seen.path for seen in blog.requests]) == (
        (["/page2"], ["/feed"]) if where == "other address" else ([], ["/feed", "/page2"]))


def test_allowed_hosts_are_compared_without_case_idna_or_trailing_dot():
    allowed = allowed_hosts_for("https://Blog.Example.ORG/feeds/posts/default",
                                ["Bücher.example", "https://CDN.example.net/x", "[::1]:8080"])
    assert allowed == {"blog.example.org", "xn--bcher-kva.example", "cdn.example.net", "::1:8080"}
    for url in ("https://blog.example.org/a", "HTTP://BLOG.EXAMPLE.ORG./a?b=c", "http://blog.example.org:80/a",
                "https://bücher.example/feed", "https://BÜCHER.example/feed",
                "https://xn--bcher-kva.example/feed", "http://[::1]:8080/feed", "http://cdn.example.net/feed"):
        check_host(url, allowed)
    for url in ("https://evil.example/feed", "https://blog.example.org.evil.example/feed",
                "https://example.org/feed", "http://127.0.0.1/feed", "http://localhost/feed",
                "http://blog.example.org:22/x", "http://[::1]:9/feed", "http://cdn.example.net:8443/feed",
                f"http://{LOCAL_HOST}/feed.xml"):              # another port is another service; no mirror online
        with pytest.raises(FetchError, match="a link on another host"):
            check_host(url, allowed)


def test_other_schemes_and_credentials_are_refused_whatever_the_host():
    allowed = allowed_hosts_for("https://blog.example.org/", [])
    for url in ("file:///etc/passwd", "ftp://blog.example.org/feed", "javascript:alert(1)",
                "gopher://blog.example.org/"):
        with pytest.raises(FetchError, match="not an http or https link"):
            check_host(url, allowed)
        with pytest.raises(FetchError, match="not an http or https link"):
            check_host(url, None)
    with pytest.raises(FetchError) as raised:
        check_host("https://user:s3cret@blog.example.org/feed", allowed)
    assert "a user name or password" in str(raised.value) and "s3cret" not in str(raised.value)
    with pytest.raises(FetchError, match="a link without a host"):
        check_host("http:///feed", None)


def test_the_fetcher_refuses_a_link_with_credentials_before_connecting(blog):
    blog.add("/feed", atom("Home"))
    host_port = blog.base_url.split("://", 1)[1]
    client = Fetcher(Fetch(retries=0))
    with pytest.raises(FetchError, match="a user name or password"):
        client.get(f"http://me:pw@{host_port}/feed")
    assert client.requests == 0 and blog.requests == []


def test_every_link_in_a_mirror_folder_stays_on_the_blog(tmp_path):
    """Offline sources: the folder's start URL gives the blog's host, and the links
    its feeds hold are all on it; a feed file alone lives on the mirror's pseudo-host."""
    url, transport = start_url(str(EXAMPLES / "onprobation"), tmp_path)
    allowed = allowed_hosts_for(url, [], offline=True)
    with Fetcher(Fetch(retries=0), transport=transport, allowed_hosts=allowed) as client:
        parsed = parse.read(client.get(url).content, url)
        page = parse.posts_page(parsed, "blogger")
        for link in [parse.next_link(parsed), *(p.comments_feed for p in page.posts)]:
            if link:
                assert client.get(link).status == 200
    assert client.requests == 1 + len(page.posts)

    single = ENCODINGS / "atom-utf-8.xml"
    url, transport = start_url(str(single), tmp_path)
    assert url == f"http://{LOCAL_HOST}/atom-utf-8.xml"
    offline = allowed_hosts_for(str(single), [], offline=True)
    with Fetcher(Fetch(), transport=transport, allowed_hosts=offline) as client:
        assert client.get(url).status == 200


# ------------------------------------------------------------------ 3. mirror files in their own encoding

def test_the_fixtures_are_really_in_those_encodings():
    utf16 = (ENCODINGS / "atom-utf-16.xml").read_bytes()
    assert utf16.startswith(b"\xff\xfe") and '"UTF-16"' in utf16.decode("utf-16")
    latin1 = (ENCODINGS / "rss-iso-8859-1.xml").read_bytes()
    assert latin1.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>') and b"Caf\xe9" in latin1
    with pytest.raises(UnicodeDecodeError):
        latin1.decode("utf-8")
    assert "Café" in (ENCODINGS / "atom-utf-8.xml").read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", ["atom-utf-16.xml", "rss-iso-8859-1.xml", "atom-utf-8.xml"])
def test_a_mirror_file_is_read_in_the_encoding_it_declares(tmp_path, name):
    url, transport = start_url(str(ENCODINGS / name), tmp_path)
    offline = allowed_hosts_for(url, [], offline=True)
    with Fetcher(Fetch(retries=0), transport=transport, allowed_hosts=offline) as client:
        answer = client.get(url)
    assert "charset" not in answer.headers["content-type"]
    parsed = parse.read(answer.content, answer.url, answer.headers)
    assert parse.warning(parsed, answer.url) is None
    assert parsed.feed.title == "Blog für Notizen"
    assert [entry.title for entry in parsed.entries] == TITLES
    assert [entry.summary for entry in parsed.entries] == [
        "<p>Un café crème, s'il vous plaît.</p>", "<p>Grüße aus Köln.</p>"]


@pytest.mark.parametrize("name", ["atom-utf-16.xml", "rss-iso-8859-1.xml"])
def test_a_mirror_file_reads_as_it_does_over_http(tmp_path, blog, name):
    body = (ENCODINGS / name).read_bytes()
    blog.add("/feed", body, content_type="application/xml")
    over_http = Fetcher(Fetch(retries=0)).get(blog.base_url + "/feed")
    url, transport = start_url(str(ENCODINGS / name), tmp_path)
    from_mirror = Fetcher(Fetch(retries=0), transport=transport).get(url)
    assert from_mirror.content == over_http.content == body
    read = [parse.read(a.content, a.url, a.headers) for a in (over_http, from_mirror)]
    assert [[e.title for e in r.entries] for r in read] == [TITLES, TITLES]
    assert [parse.warning(r, "u") for r in read] == [None, None]
