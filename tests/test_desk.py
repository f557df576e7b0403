"""The editor's desk on the web (Flask's test client): the dashboard answers "did it go
out, and is the list growing?", the readers page (search, filters, pages by keyset, add,
remove, export), "send now" through the scheduler, past editions as they went out, the
archive with dates, and a notice to the editor after every run (mail and webhook)."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from digest import actions
from digest.models import Origin, Reason
from digest.web import create_app

from .support.world import World

PASSWORD = "desk editor password"
NOW = datetime(2017, 11, 1, 9, tzinfo=UTC)


@pytest.fixture
def world(make_world, db_url, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "desk-test-secret-0123456789")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", PASSWORD)
    made = make_world(db_url, 5)
    made.data["editor"] = {"email": "editor@onprobation-digest.org"}
    made.reload()
    return made


def editor(world: World, clock=lambda: datetime.now(UTC)):
    client = create_app(world.settings, world.db, clock=clock).test_client()
    page = client.get("/editor/login").get_data(as_text=True)
    client.post("/editor/login", data={"csrf": csrf(page), "password": PASSWORD})
    return client


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_dashboard_says_how_the_list_is_doing_and_what_each_edition_did(world):
    actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    edition = world.db.ledger.latest("weekly", world.since, world.until)
    world.db.lists.suppress("reader00001@example.org", "*", Reason.BOUNCED, "hard bounce", NOW)
    world.db.lists.suppress("reader00002@example.org", "weekly", Reason.UNSUBSCRIBED, "one-click",
                            datetime.now(UTC))
    with world.db.engine.begin() as db:
        from digest.db.tables import deliveries
        db.execute(deliveries.update().where(deliveries.c.email == "reader00001@example.org")
                   .values(event="bounce"))
        db.execute(deliveries.update().where(deliveries.c.email == "reader00003@example.org")
                   .values(event="spamreport"))
    world.db.signups.asked("weekly", "someone@example.net", datetime.now(UTC))
    page = editor(world).get("/editor/").get_data(as_text=True)
    assert "On Probation: the week&#39;s discussion" in page                  # the list's title, not "weekly"
    assert re.search(r'id="confirmed-weekly">3<', page)                       # 5, less a bounce and a leaver
    assert "<dt>Pending</dt><dd>1</dd>" in page and "<dt>Left</dt><dd>1</dd>" in page
    assert "<dt>Bounced</dt><dd>1</dd>" in page
    assert "<svg class=\"growth\"" in page and "Readers, last 12 weeks" in page
    assert "Next run: " in page and "GMT" in page
    row = re.search(rf'<tr data-edition="{edition.id}">(.*?)</tr>', page, re.DOTALL).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
    assert f'href="/editor/weekly/editions/{edition.id}"' in cells[2]
    shown = [re.sub(r"<[^>]+>", "", c).strip() for c in cells[3:]]
    assert shown == ["5", "5", "0", "1", "1 (20.00 %)", "1", "0"]     # recipients ... unsubscribed after, clicks
    assert re.search(r'<td class="over" title="over the 0.3 %[^"]*">1 ', row)       # one complaint in five: over


def test_the_readers_page_searches_filters_pages_adds_removes_and_exports(world):
    world.write_list([f"reader{n:05d}@example.org" for n in range(120)])
    actions.sync_list(world.settings, world.db, world.weekly, NOW)
    world.db.lists.suppress("reader00007@example.org", "*", Reason.BOUNCED, "hard bounce", NOW)
    client = editor(world)
    first = client.get("/editor/weekly/subscribers").get_data(as_text=True)
    assert first.count("<tr data-reader=") == 50 and 'id="next-page"' in first
    second = client.get(re.search(r'href="([^"]+)" id="next-page"', first).group(1).replace("&amp;", "&"))
    third_link = re.search(r'href="([^"]+)" id="next-page"', second.get_data(as_text=True)).group(1)
    third = client.get(third_link.replace("&amp;", "&")).get_data(as_text=True)
    seen = set(re.findall(r'<tr data-reader="([^"]+)"', first + second.get_data(as_text=True) + third))
    assert len(seen) == 120 and 'id="next-page"' not in third
    found = client.get("/editor/weekly/subscribers?q=reader0011").get_data(as_text=True)
    assert set(re.findall(r'<tr data-reader="([^"]+)"', found)) == {f"reader{n:05d}@example.org"
                                                                       for n in range(110, 120)}
    bounced = client.get("/editor/weekly/subscribers?state=bounced").get_data(as_text=True)
    assert re.findall(r'<tr data-reader="([^"]+)"', bounced) == ["reader00007@example.org"]
    token = csrf(first)
    added = client.post("/editor/weekly/subscribers/add", data={"csrf": token, "email": "New.One@Example.net",
                                                                "name": "New One"})
    assert added.status_code == 303
    assert "Added New.One@example.net." in client.get(added.headers["Location"]).get_data(as_text=True)
    mine = client.get("/editor/weekly/subscribers?source=editor").get_data(as_text=True)
    assert re.findall(r'<tr data-reader="([^"]+)"', mine) == ["New.One@example.net"]
    removed = client.post("/editor/weekly/subscribers/remove", data={"csrf": token, "email": "reader00003@example.org"})
    assert "Removed reader00003@example.org" in client.get(removed.headers["Location"]).get_data(as_text=True)
    assert world.db.lists.suppression("weekly", "reader00003@example.org").reason == Reason.REMOVED
    refused = client.post("/editor/weekly/subscribers/add", data={"csrf": token, "email": "reader00003@example.org"})
    assert "it is suppressed" in client.get(refused.headers["Location"]).get_data(as_text=True)   # removal wins
    exported = client.get("/editor/weekly/subscribers.csv")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    emails = {row["email"] for row in rows}
    assert "New.One@example.net" in emails and "reader00003@example.org" not in emails
    assert "reader00007@example.org" not in emails and len(rows) == 119


def test_send_now_is_an_order_the_scheduler_carries_out(world):
    client = editor(world, clock=lambda: NOW)
    form = client.get("/editor/weekly/send?since=2017-10-25&until=2017-11-01").get_data(as_text=True)
    assert "25–31 Oct 2017" in form and 'id="send-subject"' in form and "5 (the list file is read again" in form
    assert 'id="no-scheduler"' in form                                   # nobody would carry it out: said so
    placed = client.post("/editor/weekly/send", data={"csrf": csrf(form), "since": "2017-10-25",
                                                     "until": "2017-11-01"})
    order_page = placed.headers["Location"]
    assert placed.status_code == 303 and re.fullmatch(r"/editor/weekly/orders/\d+", order_page)
    waiting = client.get(order_page).get_data(as_text=True)
    assert 'data-status="waiting"' in waiting and "http-equiv=\"refresh\"" in waiting
    assert "digest send weekly" in waiting and world.db.ledger.latest("weekly", world.since, world.until) is None
    again = client.post("/editor/weekly/send", data={"csrf": csrf(form), "since": "2017-10-25", "until": "2017-11-01"})
    assert again.headers["Location"] == order_page                       # asked twice: one order
    done = actions.tend(world.settings, world.db, NOW)
    assert done == [f"order {order_page.rsplit('/', 1)[1]}: recipients 5, accepted 5, failed 0, unknown 0"]
    finished = client.get(order_page).get_data(as_text=True)
    assert 'data-status="done"' in finished and "accepted 5" in finished and "http-equiv" not in finished
    assert actions.tend(world.settings, world.db, NOW) == []            # nothing more to do


def test_a_send_whose_period_overlaps_a_sent_edition_names_the_threads_it_would_repeat(world):
    actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    page = editor(world, clock=lambda: NOW).get("/editor/weekly/send?since=2017-10-28&until=2017-11-04")
    text = page.get_data(as_text=True)
    assert "Warning: this period overlaps the edition sent" in text and "thread(s) would go out again" in text
    planned = actions.plan(world.settings, world.db, world.weekly,
                           *actions.dates(world.weekly, datetime(2017, 10, 28).date(), None).bounds)
    assert any("would go out again" in problem for problem in planned.problems)


def test_a_past_edition_is_shown_as_it_went_out_not_rebuilt(world):
    actions.set_subject(world.db, world.weekly, "The subject that went out", NOW)
    actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    edition = world.db.ledger.latest("weekly", world.since, world.until)
    actions.set_subject(world.db, world.weekly, "Next week's subject", NOW)
    client = editor(world)
    page = client.get(f"/editor/weekly?edition={edition.id}").get_data(as_text=True)
    assert 'id="subject">The subject that went out<' in page and "past edition" in page
    assert 'id="voice"' not in page and 'action="/editor/weekly/pick"' not in page     # no next-edition forms
    assert "Send a test" not in page
    frame = client.get(f"/editor/weekly/editions/{edition.id}/email.html").get_data(as_text=True)
    assert "The subject that went out" in frame
    archive = client.get("/archive/weekly/").get_data(as_text=True)
    assert '<time datetime="2017-10-25">25–31 Oct 2017</time>' in archive


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook():
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()


def test_a_failed_run_tells_the_editor_the_error_and_the_command_that_resumes_it(world, hook):
    url, received = hook
    notice = actions.runs.failed_notice(world.settings, world.weekly, NOW - timedelta(hours=2),
                                        "SMTP server 127.0.0.1:1 is not reachable",
                                        "retry 1 of 6 at 2017-11-01 09:01 UTC")
    assert notice.command == "digest send weekly --since 2017-10-25 --until 2017-11-01"
    from digest.actions.notices import _post
    assert _post(url, notice) == []
    [posted] = received
    assert "digest send weekly --since 2017-10-25 --until 2017-11-01" in posted["text"]
    assert posted["content"] == posted["text"] and posted["digest"]["kind"] == "failed"
    assert "SMTP server 127.0.0.1:1 is not reachable" in posted["text"]
    problems = actions.notices.notify(world.settings, world.weekly, notice, NOW)
    assert problems == []
    mailed = sorted((world.folder / ".." / "demo" / "outbox").resolve().glob("notice-failed-*/*.eml"))
    assert len(mailed) == 1 and b"digest send weekly --since 2017-10-25 --until 2017-11-01" in mailed[0].read_bytes()


def test_a_run_of_the_scheduler_that_fails_posts_its_notice(world, hook, monkeypatch):
    """Through the scheduler's own recorder: the run fails (the relay is down), the notice
    (which cannot go by mail, the same relay) is posted to the webhook, resume command and all."""
    url, received = hook
    world.data["editor"]["webhook_url"] = url.replace("http://", "https://")
    world.reload()
    from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
    from apscheduler.schedulers.background import BackgroundScheduler

    from digest import schedule
    from digest.actions import notices
    monkeypatch.setattr(notices, "_post", lambda target, notice: received.append(notice.as_json()) or [])
    failed = JobExecutionEvent(EVENT_JOB_ERROR, "list:weekly", "default", NOW,
                               exception=RuntimeError("the relay is down"))
    running = schedule.build(world.settings, world.config_path, world.db, scheduler_class=BackgroundScheduler)
    try:
        schedule._recorder(world.db, running.scheduler, world.settings, world.config_path)(failed)
    finally:
        running.stop()
    [posted] = [r for r in received if r["digest"]["kind"] == "failed"]
    assert "the relay is down" in posted["text"] and "digest send weekly --since 2017-10-25" in posted["text"]
    assert "Retry 1 of 6 at " in posted["text"]
    assert Origin.EDITOR.value == "editor"
