"""The fetcher against a real HTTP server on loopback: retries, caps, redirects, 304."""

from __future__ import annotations

import pytest

from digest.config import Fetch
from digest.read.errors import FetchError
from digest.read.fetch import Fetcher, Validators

from .support.feedserver import Fault, FeedServer


@pytest.fixture
def server():
    running = FeedServer().start()
    running.add("/feed", b"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title></feed>")
    yield running
    running.stop()


def fetcher(**settings: object) -> tuple[Fetcher, list[float]]:
    slept: list[float] = []
    base = {"retries": 2, "backoff": 0.5, "timeout": 1.0}
    return Fetcher(Fetch(**{**base, **settings}), sleep=slept.append), slept


def test_conditional_get_gets_a_304(server):
    client, _ = fetcher()
    first = client.get(server.base_url + "/feed")
    assert first.status == 200 and first.validators.etag
    second = client.get(server.base_url + "/feed", first.validators)
    assert second.not_modified and second.content == b""
    assert server.requests[1].headers["if-none-match"] == first.validators.etag
    assert second.validators == first.validators


def test_last_modified_is_sent_back():
    assert Validators(None, "Wed, 01 Nov 2017 09:00:00 GMT").headers() == {
        "If-Modified-Since": "Wed, 01 Nov 2017 09:00:00 GMT"}


def test_5xx_is_retried_with_growing_backoff(server):
    server.fail("/feed", Fault(status=502, times=2))
    client, slept = fetcher()
    assert client.get(server.base_url + "/feed").status == 200
    assert client.requests == 3
    assert 0.5 <= slept[0] <= 0.75 and 1.0 <= slept[1] <= 1.5


def test_429_waits_for_retry_after(server):
    server.fail("/feed", Fault(status=429, headers={"Retry-After": "7"}, times=1))
    client, slept = fetcher()
    assert client.get(server.base_url + "/feed").status == 200
    assert slept == [7.0]


def test_timeout_is_retried_then_reported(server):
    server.fail("/feed", Fault(delay=1.5, times=10))
    client, slept = fetcher(timeout=0.3, retries=1)
    with pytest.raises(FetchError, match=r"/feed: timed out after 2 attempts; try again later"):
        client.get(server.base_url + "/feed")
    assert len(slept) == 1


def test_connection_refused_is_reported(server):
    client, _ = fetcher(retries=0)
    with pytest.raises(FetchError, match="connection failed"):
        client.get("http://127.0.0.1:1/feed")


def test_404_is_not_retried(server):
    client, _ = fetcher()
    with pytest.raises(FetchError, match=r"/nothing: HTTP 404 Not Found; check the source.s url in the config, or"):
        client.get(server.base_url + "/nothing")
    assert client.requests == 1


def test_redirect_within_the_host_is_followed(server):
    server.fail("/old", Fault(status=301, headers={"Location": "/feed"}))
    client, _ = fetcher()
    answer = client.get(server.base_url + "/old")
    assert answer.status == 200 and answer.url.endswith("/feed")


def test_redirect_loop_is_stopped(server):
    server.fail("/loop", Fault(status=302, headers={"Location": "/loop"}))
    client, _ = fetcher()
    with pytest.raises(FetchError, match="more than 5 redirects"):
        client.get(server.base_url + "/loop")


def test_body_over_the_cap_is_refused_while_streaming(server):
    server.add("/big", b"x" * 50_000)
    client, _ = fetcher(max_bytes=10_000)
    with pytest.raises(FetchError, match="larger than 10000 bytes; raise \\[fetch\\].max_bytes"):
        client.get(server.base_url + "/big")
