"""The blog's own Pick of the Week: in mail mode "view in a browser" is [publish].url."""

from __future__ import annotations

import email
import email.policy
import html

import pytest

from digest.actions import send_edition

BLOG_PAGE = "https://probationmatters.blogspot.com/search/label/Pick%20of%20the%20Week"


@pytest.mark.parametrize(("mailbox", "base_url", "expected"), [
    ({"address": "pickoftheweek@example.org"}, "http://localhost:8000", BLOG_PAGE),      # mail mode
    ({}, "http://localhost:8000", "http://localhost:8000/archive/weekly/2017-10-25"),   # no mailbox
    ({"address": "pickoftheweek@example.org"}, "https://news.onprobation-digest.org",            # a public address
     "https://news.onprobation-digest.org/archive/weekly/2017-10-25"),
])
def test_view_in_a_browser_is_the_blogs_page_in_mail_mode(make_world, mailbox, base_url, expected):
    world = make_world(None, 3)
    world.data.update({"mailbox": mailbox, "publish": {"url": BLOG_PAGE}})
    world.data["web"]["base_url"] = base_url
    world.reload()
    assert world.settings.mail_mode == (expected == BLOG_PAGE)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert world.db.ledger.edition(report.edition_id).web_url == expected
    sent = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob("weekly-*/*.eml"))[0]
    page = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default).get_body(("html",)).get_content()
    assert f'href="{html.escape(expected)}"' in page
