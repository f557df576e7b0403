"""Approval before a scheduled send: the edition is built, frozen and held; only the editor
hears of it (the edition itself, with a sealed, expiring link to review it); approved, it
goes to every reader once, and approving again sends nothing more; skipped, it goes to
nobody; changed while held, it is built again; nobody answering within approve_within
skips or sends it, as the list says."""

from __future__ import annotations

import email
import email.policy
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from digest import actions
from digest.cli import cli
from digest.web import create_app

from .support.world import World

EDITOR = "editor@onprobation-digest.org"
RUN_AT = datetime(2017, 11, 1, 7, tzinfo=UTC)          # the scheduled run that sends 25-31 October
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]
PASSWORD = "approval editor password"


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "approval-test-secret-0123456789")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    made = make_world(db_url, 4)
    made.data["lists"][0].update({"approval": "required", "approve_within": "24h", "on_timeout": "skip"})
    made.data["editor"] = {"email": EDITOR}
    made.reload()
    return made


def mail(world: World, pattern: str) -> list[email.message.EmailMessage]:
    paths = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def readers_got(world: World) -> Counter[str]:
    return Counter(m["To"].addresses[0].addr_spec for m in mail(world, "weekly-*/*.eml"))


def run(world: World, *args: str):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])


def hold(world: World) -> int:
    outcome = actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT)
    assert outcome.outcome.startswith("held for approval: edition "), outcome
    return int(re.search(r"edition (\d+)", outcome.outcome).group(1))


def test_a_scheduled_run_holds_the_edition_and_only_the_editor_hears_of_it(world):
    edition_id = hold(world)
    assert readers_got(world) == Counter()
    [review] = mail(world, "review-*/*.eml")
    assert review["To"].addresses[0].addr_spec == EDITOR and review["Subject"].startswith("[Review] ")
    assert review["List-Unsubscribe"] is None
    html, text = review.get_body(("html",)).get_content(), review.get_body(("plain",)).get_content()
    assert "Held for your approval:" in html and "Comment of the week" in html          # the edition itself
    link = re.search(r"https?://\S+?(/editor/weekly/review/\d+\?key=[\w-]+)", text)
    assert link and f"/review/{edition_id}?" in link.group(1)
    assert "skipped" in text and "digest approve weekly" in text
    assert world.db.ledger.info(edition_id).status == "held"
    assert sum(world.db.ledger.counts(edition_id).values()) == 4
    again = actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT + timedelta(minutes=5))
    assert again.outcome.startswith(f"held for approval: edition {edition_id},")      # the same one, not another
    assert len(mail(world, "review-*/*.eml")) == 1


def test_approve_sends_to_each_reader_once_and_again_sends_nothing(world):
    hold(world)
    first = run(world, "approve", "weekly", "--yes")
    assert first.exit_code == 0, first.output
    assert "4 accepted" in first.output
    assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(4)})
    second = run(world, "approve", "weekly", "--yes")
    assert second.exit_code == 0 and "no edition is waiting for approval; the last one" in second.output
    assert "was approved at" in second.output and "nothing more to send" in second.output
    assert sum(readers_got(world).values()) == 4
    sent = run(world, "send", "weekly", *WEEK, "--yes")                     # and no second edition either
    assert sent.exit_code == 1 and "was sent at" in sent.output


def test_a_held_period_cannot_be_sent_beside_its_held_edition(world):
    hold(world)
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: the edition of weekly for this period is held for approval (since "
                                     "2017-11-01 07:00 UTC); approve it with `digest approve weekly` (or in the "
                                     "web editor), or skip it there")
    assert readers_got(world) == Counter()


def test_skip_sends_nothing_and_the_picks_wait_for_the_next_edition(world):
    edition_id = hold(world)
    comment = _a_comment(world)
    actions.pin(world.db, world.weekly, comment, RUN_AT)
    decided = actions.approval.skip(world.settings, world.db, world.weekly, edition_id, RUN_AT)
    assert decided.done and decided.status == "skipped"
    assert not actions.approval.approve(world.settings, world.db, world.weekly, edition_id, RUN_AT).done
    assert readers_got(world) == Counter()
    assert comment in actions.picks(world.db, world.weekly)                 # still waiting


def _a_comment(world: World) -> str:
    data = actions.as_json(actions.preview(world.settings, world.db, world.weekly, world.since, world.until))
    return next(thread["comment"]["id"] for post in data["posts"] for thread in post["threads"])


def _client(world: World):
    """The web app an hour after the run held the edition (its review link still works)."""
    return create_app(world.settings, world.db, clock=lambda: RUN_AT + timedelta(hours=1)).test_client()


def _review_path(world: World) -> str:
    text = mail(world, "review-*/*.eml")[-1].get_body(("plain",)).get_content()
    return re.search(r"https?://\S+?(/editor/weekly/review/\d+\?key=[\w-]+)", text).group(1)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_review_link_opens_that_edition_only_and_edit_then_approve_sends_the_edited_one(world):
    edition_id = hold(world)
    client = _client(world)
    path = _review_path(world)
    key = path.split("key=")[1]
    page = client.get(path)
    assert page.status_code == 200 and "Approve and send" in page.get_data(as_text=True)    # no login needed
    assert client.get(f"/editor/weekly/review/{edition_id}").status_code == 303           # without the key: log in
    assert client.get(f"/editor/weekly/review/{edition_id}?key={key[:-3]}xyz").status_code == 400
    assert client.get(f"/editor/weekly/review/{edition_id + 1}?key={key}").status_code in (400, 404)
    token = _csrf(page.get_data(as_text=True))
    changed = client.post(f"/editor/weekly/review/{edition_id}/edit",
                          data={"csrf": token, "key": key, "change": "voice", "subject": "Held, then edited",
                                "note": "A word from the editor before it goes."})
    assert changed.status_code == 303
    assert world.db.ledger.info(edition_id).subject == "Held, then edited"               # built again, still held
    assert world.db.ledger.info(edition_id).status == "held"
    approved = client.post(f"/editor/weekly/review/{edition_id}/approve", data={"csrf": token, "key": key})
    assert approved.status_code == 303 and readers_got(world) == Counter()              # the web never sends itself
    done = actions.tend(world.settings, world.db, datetime.now(UTC))
    assert any("accepted 4" in line for line in done), done
    sent = mail(world, "weekly-*/*.eml")
    assert len(sent) == 4 and all(m["Subject"] == "Held, then edited" for m in sent)
    assert "A word from the editor before it goes." in sent[0].get_body(("plain",)).get_content()
    assert actions.draft(world.db, world.weekly).subject is None                         # taken with the edition
    again = client.post(f"/editor/weekly/review/{edition_id}/approve", data={"csrf": token, "key": key})
    assert again.status_code == 303
    assert "Nothing more to do: this edition was approved" in client.get(again.headers["Location"]).get_data(
        as_text=True)
    actions.tend(world.settings, world.db, datetime.now(UTC))
    assert len(mail(world, "weekly-*/*.eml")) == 4


def test_an_expired_review_link_is_refused(world):
    edition_id = hold(world)
    path = _review_path(world)
    late = create_app(world.settings, world.db, clock=lambda: RUN_AT + timedelta(hours=25)).test_client()
    answer = late.get(path)
    assert answer.status_code == 400 and "expired" in answer.get_data(as_text=True)
    assert world.db.ledger.info(edition_id).status == "held"


@pytest.mark.parametrize("on_timeout", ["skip", "send"])
def test_nobody_answering_within_approve_within_skips_or_sends_as_the_list_says(world, on_timeout):
    world.data["lists"][0]["on_timeout"] = on_timeout
    world.reload()
    edition_id = hold(world)
    assert actions.tend(world.settings, world.db, RUN_AT + timedelta(hours=23)) == []           # not yet
    done = actions.tend(world.settings, world.db, RUN_AT + timedelta(hours=25))
    row = world.db.ledger.info(edition_id)
    if on_timeout == "skip":
        assert row.status == "skipped" and row.decision == "timed out: skipped"
        assert readers_got(world) == Counter()
        [notice] = mail(world, "notice-skipped-*/*.eml")
        assert "Nobody approved edition" in notice.get_body(("plain",)).get_content()
    else:
        assert row.status == "sent" and row.decision == "timed out: sent"
        assert sum(readers_got(world).values()) == 4
    assert done and all(notice["To"].addresses[0].addr_spec == EDITOR for notice in mail(world, "notice-*/*.eml"))


def test_approval_none_sends_as_today(world):
    world.data["lists"][0]["approval"] = "none"
    world.reload()
    outcome = actions.scheduled_run(world.settings, world.db, "weekly", RUN_AT)
    assert outcome.outcome.startswith("recipients 4, accepted 4")
    assert mail(world, "review-*/*.eml") == [] and sum(readers_got(world).values()) == 4
    [notice] = mail(world, "notice-sent-*/*.eml")                       # the editor hears of it
    assert notice["To"].addresses[0].addr_spec == EDITOR
    body = notice.get_body(("plain",)).get_content()
    assert "went to 4 reader(s): 4 accepted, 0 failed" in body and "/editor/" in body


def test_send_hold_from_the_command_line(world):
    world.data["lists"][0]["approval"] = "none"
    world.reload()
    result = run(world, "send", "weekly", *WEEK, "--hold")
    assert result.exit_code == 0 and "is held for approval; the review went to" in result.output
    assert readers_got(world) == Counter() and len(mail(world, "review-*/*.eml")) == 1
