"""The blog's own Pick of the Week: each edition, once its list send finished, goes once to
[publish].mail_to as a post, with nothing personal in it; in mail mode "view in a browser"
is [publish].url."""

from __future__ import annotations

import email
import email.policy
import html
import html.parser
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.actions import finish_unfinished, pin, send_edition, send_test, set_note, tend
from digest.actions.desk import editions_json
from digest.actions.publish import after_send
from digest.actions.runs import sent_notice
from digest.cli import cli
from digest.db import Database
from digest.models import Comment
from digest.send.deliver import AlreadySent

from .support import smtp_server
from .support.world import World
from .test_render import HOSTILE

MAIL_TO = "onprobation.pickoftheweek42@blogger.com"
BLOG_PAGE = "https://probationmatters.blogspot.com/search/label/Pick%20of%20the%20Week"
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]
HOSTILE_NOTE = "Read **this** <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>"


@pytest.fixture
def smtp():
    controller, recorder = smtp_server.start()
    yield controller, recorder
    controller.stop()


def smtp_world(make_world, db_url: str, smtp, readers: int = 3) -> World:
    """Readers and the blog behind a real SMTP relay on loopback; a public base_url, so the
    readers' links go through digest's click address."""
    controller, _ = smtp
    world = make_world(db_url, readers, backend="smtp", smtp={"host": "127.0.0.1", "port": controller.port})
    world.data["publish"] = {"mail_to": MAIL_TO}
    world.reload()
    return world


def posts(recorder) -> list[email.message.EmailMessage]:
    return [m for m, r in zip(recorder.messages, recorder.received, strict=True) if r.rcpt_tos == [MAIL_TO]]


def outbox_posts(world: World) -> list[Path]:
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob("post-*/*.eml"))


def posted_at(world: World, edition_id: int) -> datetime | None:
    row = world.db.ledger.info(edition_id)
    assert row is not None
    return row.posted_at


def hostile_comments(world: World) -> list[str]:
    """HOSTILE (tests/test_render.py) as comments on the week's busiest post, by a hostile
    author, stored raw (past the reader's sanitiser) and pinned: the edition must show them."""
    discussion = max(world.db.content.discussions(world.since, world.until), key=lambda d: len(d.comments))
    source = world.db.content.source_id("on-probation", "onprobation", "blogger")
    when = world.since + timedelta(days=3)
    made = [Comment(key=f"hostile{n}", post_key=discussion.post.key, author="<img src=x onerror=alert(1)>",
                    author_uri=None, published=when + timedelta(minutes=n), updated=when + timedelta(minutes=n),
                    url=f"{discussion.post.url}?showComment={n}#c{n}", html=body, text=body)
            for n, body in enumerate(HOSTILE)]
    world.db.content.save_comments(source, made)
    for comment in made:
        pin(world.db, world.weekly, comment.key, datetime.now(UTC))
    set_note(world.db, world.weekly, HOSTILE_NOTE, datetime.now(UTC))
    return [c.key for c in made]


class Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def test_after_a_send_the_blog_gets_one_post_with_nothing_personal(make_world, db_url, smtp):
    world = smtp_world(make_world, db_url, smtp)
    hostile_comments(world)
    _, recorder = smtp

    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)

    assert report.counts == {"accepted": 3} and report.problems == []
    readers = [m for m in recorder.messages if m["To"].addresses[0].addr_spec != MAIL_TO]
    assert len(readers) == 3 and all("/c/" in m.get_body(("html",)).get_content() for m in readers)  # tracked
    [post] = posts(recorder)
    assert post["Subject"] == report.subject
    assert post["List-Unsubscribe"] is None and post["List-Unsubscribe-Post"] is None
    page, text = post.get_body(("html",)).get_content(), post.get_body(("plain",)).get_content()
    for part in (page, text):
        assert "reader0000" not in part and "Reader 0000" not in part and "Hello" not in part
        assert "/unsubscribe" not in part.lower() and "/c/" not in part and "[[digest-" not in part
        assert "digest.onprobation-digest.org" not in part            # no click, archive or unsubscribe address
        assert "subscribed" not in part and "View on the web" not in part and "on the web" not in part
    links = world.db.ledger.links(report.edition_id)                  # what the readers' /c/ links stood for
    assert any(link.thread for link in links)
    for link in links:                                                # comment permalinks, posts, the blog: direct
        assert f'href="{html.escape(link.url)}"' in page
    assert all(f"#c{n}\"" in page for n in range(len(HOSTILE)))       # the pinned hostile comments are shown
    tags = Tags()
    tags.feed(page)
    assert not {tag for tag, _ in tags.found} & {"script", "img", "iframe", "style", "link", "b", "i"}
    for _, attrs in tags.found:
        assert not any(name.startswith("on") for name in attrs)
        assert not (attrs.get("href") or "").lower().startswith("javascript:")
    assert "&lt;script&gt;alert(" in page and "&lt;/style&gt;&lt;style&gt;" in page
    assert "<strong>this</strong>" in page                            # the editor's note, as sanitised
    assert posted_at(world, report.edition_id) is not None


def test_a_send_resumed_or_tried_again_posts_nothing_more(make_world, db_url, smtp):
    world = smtp_world(make_world, db_url, smtp, readers=25)
    _, recorder = smtp
    asked = iter(range(100))
    first = send_edition(world.settings, world.db, world.weekly, world.since, world.until,
                         should_stop=lambda: next(asked) > 0)          # stopped after its first batch
    assert not first.finished and posts(recorder) == []               # not finished: not posted
    assert posted_at(world, first.edition_id) is None

    [resumed] = finish_unfinished(world.settings, world.db, world.weekly)
    assert resumed.finished and len(posts(recorder)) == 1

    assert finish_unfinished(world.settings, world.db, world.weekly) == []
    with pytest.raises(AlreadySent):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert after_send(world.settings, world.db, datetime.now(UTC)) == []
    tend(world.settings, world.db, datetime.now(UTC) + timedelta(minutes=30))
    assert len(posts(recorder)) == 1 and len(recorder.messages) == 26


def test_senders_at_once_post_once(make_world, db_url, smtp):
    """Four senders, each with its own connections, finish the same edition at the same moment."""
    world = smtp_world(make_world, db_url, smtp)
    _, recorder = smtp
    world.data["publish"] = {}
    world.reload()
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)   # sent, not posted
    world.data["publish"] = {"mail_to": MAIL_TO}
    world.reload()
    barrier, results, errors = threading.Barrier(4), [], []

    def sender() -> None:
        try:
            with Database.open(world.settings.database_url()) as own:
                barrier.wait(timeout=30)
                results.extend(after_send(world.settings, own, datetime.now(UTC)))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert [(r.edition_id, r.outcome) for r in results] == [(report.edition_id, "posted")]
    assert len(posts(recorder)) == 1


def test_of_eight_callers_at_once_one_claims_the_post(make_world, db_url):
    world = make_world(db_url, 3)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    now = datetime.now(UTC)
    barrier, claimed = threading.Barrier(8), []

    def claim() -> None:
        with Database.open(world.settings.database_url()) as own:
            barrier.wait(timeout=30)
            claimed.append(own.ledger.claim_post(report.edition_id, now, now - timedelta(days=1)))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == [False] * 7 + [True]
    world.db.ledger.release_post(report.edition_id, now)                  # the relay refused it: free again
    assert world.db.ledger.claim_post(report.edition_id, now, now - timedelta(days=1))
    assert not world.db.ledger.claim_post(report.edition_id, now, now - timedelta(days=1))


@pytest.mark.parametrize("answer", ["550 5.1.1 no such mailbox", "451 4.3.0 try again later"])
def test_a_refused_post_is_posted_once_later(make_world, db_url, smtp, answer):
    world = smtp_world(make_world, db_url, smtp)
    _, recorder = smtp
    recorder.on_address = lambda command, address: answer if command == "RCPT" and address == MAIL_TO else None

    result = CliRunner().invoke(cli, ["--config", str(world.config_path), "send", "weekly", *WEEK, "--yes"])

    assert result.exit_code == 0, result.output
    assert f"Warning: the post of edition 1 to the blog ({MAIL_TO}) did not go" in result.stderr
    assert answer in result.stderr and "tries again" in result.stderr
    assert posted_at(world, 1) is None and posts(recorder) == []
    assert len(recorder.messages) == 3                                 # the readers had theirs

    recorder.on_address = lambda command, address: None
    now = datetime.now(UTC)
    tend(world.settings, world.db, now + timedelta(minutes=5))          # too soon after a refusal: left alone
    assert posts(recorder) == []
    done = tend(world.settings, world.db, now + timedelta(minutes=16))
    assert any("was posted to the blog" in line for line in done)
    assert len(posts(recorder)) == 1 and posted_at(world, 1) is not None
    tend(world.settings, world.db, now + timedelta(minutes=40))
    assert after_send(world.settings, world.db, now + timedelta(minutes=40)) == []
    assert len(posts(recorder)) == 1


def test_a_post_cut_off_during_data_is_never_sent_again(make_world, db_url, smtp):
    """The relay may have it (the connection went during DATA): the claim stays; the editor looks."""
    world = smtp_world(make_world, db_url, smtp)
    _, recorder = smtp
    recorder.on_address = lambda command, address: smtp_server.DROP if (command, address) == ("DATA", MAIL_TO) else None
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.counts == {"accepted": 3}
    assert any("may not have arrived" in p and "look for it on the blog" in p for p in report.problems)
    assert posted_at(world, report.edition_id) is not None
    recorder.on_address = lambda command, address: None
    tend(world.settings, world.db, datetime.now(UTC) + timedelta(minutes=30))
    assert recorder.asked["DATA", MAIL_TO] == 1 and posts(recorder) == []


def test_without_mail_to_nothing_is_posted(make_world, db_url):
    world = make_world(db_url, 3)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    tend(world.settings, world.db, datetime.now(UTC) + timedelta(minutes=30))
    assert report.finished and outbox_posts(world) == [] and posted_at(world, report.edition_id) is None


def test_a_test_copy_is_never_posted(make_world, db_url):
    world = make_world(db_url, 3)
    world.data["publish"] = {"mail_to": MAIL_TO}
    world.reload()
    send_test(world.settings, world.db, world.weekly, world.since, world.until, "editor@example.org")
    tend(world.settings, world.db, datetime.now(UTC) + timedelta(minutes=30))
    assert outbox_posts(world) == [] and world.db.ledger.history() == []


def test_an_edition_finished_more_than_a_day_ago_is_never_posted(make_world, db_url):
    world = make_world(db_url, 3)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)   # before mail_to
    world.data["publish"] = {"mail_to": MAIL_TO}
    world.reload()
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    assert tend(world.settings, world.db, later) == [] and after_send(world.settings, world.db, later) == []
    assert outbox_posts(world) == [] and posted_at(world, report.edition_id) is None
    done = tend(world.settings, world.db, datetime.now(UTC) + timedelta(minutes=2))   # within the day: it goes
    assert len(done) == 1 and len(outbox_posts(world)) == 1


def test_the_outbox_keeps_the_post_and_the_notice_says_so(make_world, db_url):
    world = make_world(db_url, 3)
    world.data["publish"] = {"mail_to": MAIL_TO}
    world.reload()
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    [path] = outbox_posts(world)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == MAIL_TO and message["Subject"] == report.subject
    assert "reader0000" not in message.get_body(("html",)).get_content()
    notice = sent_notice(world.settings, world.db, world.weekly, report)
    assert any(line.startswith(f"It was posted to the blog ({MAIL_TO})") for line in notice.lines)
    [listed] = editions_json(world.settings, world.db, "weekly")                  # `digest editions --format json`
    assert listed["posted_at"] == posted_at(world, listed["id"]).isoformat()


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
