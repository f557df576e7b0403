"""Clicks: a click address followed (the link it names, or NotFound: never a redirect to
anywhere else), counted by the signals rule (one `ClickRule` per web app, made by
`counter()`), and read back per edition, link and thread."""

from __future__ import annotations

from typing import Any

from ..db import Database
from ..errors import NotFound
from ..send.signing import read_click_token
from ..signals.clicks import ClickRule


class BrokenLink(NotFound):
    """A click address this instance did not make, or for a link it does not have."""


def follow(db: Database, key: str, token: str) -> tuple[int, int, str]:
    """(edition id, link number, where it goes) for a click address made here."""
    found = read_click_token(key, token[:64])
    url = db.ledger.link_url(*found) if found else None
    if found is None or url is None:
        raise BrokenLink("This link is not valid (it was changed, or it is not from one of our emails); "
                         "open the email again and use the link as it is there.")
    return found[0], found[1], url


def counter() -> ClickRule:
    """The rule that judges this process's clicks (repeats, scanner bursts): one per web app."""
    return ClickRule()


def count(db: Database, rule: ClickRule, client: str, edition_id: int, n: int, head: bool = False) -> None:
    """Count a followed link as the rule says: a click, nothing, or a burst's clicks taken back."""
    for link, by in rule.judge(client, edition_id, n, head=head):
        db.ledger.count_click(edition_id, link, by)


def of_editions(db: Database, edition_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per edition: `clicks` (all), `links` (each with its clicks) and `threads` (clicks per
    thread, the most clicked first)."""
    found = {}
    for edition_id, links in db.ledger.clicks(edition_ids).items():
        threads: dict[str, int] = {}
        for link in links:
            if link["thread"]:
                threads[link["thread"]] = threads.get(link["thread"], 0) + link["clicks"]
        found[edition_id] = {"clicks": sum(link["clicks"] for link in links), "links": links,
                             "threads": dict(sorted(threads.items(), key=lambda item: -item[1]))}
    return found
