"""The links of an edition's HTML part, and the same HTML with them sent through digest.

Every link that leads away from digest (a post, a comment, "read the rest", "+N more
replies", the blog, a link in the editor's note) gets a number in the order it first
appears, and the thread and post it belongs to. `tracked` swaps each for the address
`address(link)` makes (digest's click redirect); the edition as stored, its archive copy,
previews and the plain-text part keep the direct links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..models import Edition, Link

HREF = re.compile(r'(<a\b[^>]*?\shref=")([^"]*)(")', re.IGNORECASE)
TRACKED_URL_EXTRA = len("/c/") + len("2147483647.99999.") + 12     # a click address past base_url, at most


def links_of(edition: Edition, base_url: str) -> list[Link]:
    """The edition's links that leave digest, each once (the same address twice is one link)."""
    owners: dict[str, tuple[str | None, str | None, int | None]] = {}
    for url, owner in _owners(edition.context):
        owners.setdefault(url, owner)
    found: dict[str, Link] = {}
    for url in _hrefs(edition.html):
        if url not in found and leads_away(url, base_url):
            thread, post, position = owners.get(url, (None, None, None))
            found[url] = Link(len(found) + 1, url, thread, post, position)
    return list(found.values())


def tracked(page: str, links: list[Link], address: Callable[[Link], str]) -> str:
    """page with every link of `links` replaced by address(link); others untouched."""
    targets = {link.url: html.escape(address(link), quote=True) for link in links}

    def swap(match: re.Match[str]) -> str:
        target = targets.get(html.unescape(match.group(2)))
        return match.group(1) + target + match.group(3) if target else match.group(0)
    return HREF.sub(swap, page)


def growth(page: str, base_url: str) -> int:
    """Bytes the page would grow by at most if its links went through base_url."""
    longest = len(base_url) + TRACKED_URL_EXTRA
    return sum(max(0, longest - len(match.group(2))) for match in HREF.finditer(page)
               if leads_away(html.unescape(match.group(2)), base_url))


def leads_away(url: str, base_url: str) -> bool:
    """A web address that is not digest's own (the archive, unsubscribe, a click)."""
    lowered = url.lower()
    return lowered.startswith(("http://", "https://")) and not (url == base_url or url.startswith(base_url + "/"))


def _hrefs(page: str) -> Iterator[str]:
    for match in HREF.finditer(page):
        yield html.unescape(match.group(2))


def _owners(context: dict[str, Any]) -> Iterator[tuple[str, tuple[str | None, str | None, int | None]]]:
    """(url, (thread, post, position)) for the addresses the context shows, threads first
    (so a comment's link is its thread's even when a post links to it too)."""
    threads = []
    star = context.get("star")
    if star:
        threads.append((star["thread"], star["post"]["id"]))
    threads += [(thread, post["id"]) for post in context.get("posts", []) for thread in post["threads"]]
    for position, (thread, post) in enumerate(threads, 1):
        key = thread["comment"]["id"]
        for url in (thread["comment"]["url"], thread["url"], *(reply["url"] for reply in thread["replies"])):
            yield url, (key, post, position)
    for head in [*([star["post"]] if star else []), *context.get("posts", []), *context.get("more_posts", [])]:
        yield head["url"], (None, head["id"], None)
