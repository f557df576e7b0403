"""The email: golden files on the fixture week, hostile comments, the size budget."""

from __future__ import annotations

import email.parser
import html
import html.parser
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import config
from digest.db import Database
from digest.models import Picks
from digest.pick.select import select
from digest.read.ingest import ingest
from digest.write.edition import as_json, build, fit, period
from digest.write.render import Renderer

from .conftest import NOW
from .support.discussions import SINCE, UNTIL, comment, discussion, post, text

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
LONDON = ZoneInfo("Europe/London")
VALUES = {"greeting": "Hello Reader One,", "email": "reader.one@example.org",
          "unsubscribe_url": "http://localhost:8000/unsubscribe/TOKEN"}


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """The sample blog stored in SQLite, and the settings of the demo."""
    folder = tmp_path_factory.mktemp("week")
    shutil.copytree(ROOT / "examples", folder / "examples")
    settings = config.load(folder / "examples" / "config.toml")
    db = Database.open(settings.database_url())
    report = ingest(settings.sources[0], settings.fetch, db, settings.root, NOW)
    assert report.error is None
    yield settings, db
    db.close()


def week_edition(settings, db, picks=Picks(), renderer=None):
    mailing_list = settings.lists[0]
    since, until = period(mailing_list, NOW, datetime(2017, 10, 25).date(), datetime(2017, 11, 1).date())
    write = settings.write_settings()
    return build(write, db, renderer or Renderer(write), mailing_list, since, until, picks, nonce="golden")


def check_golden(name: str, actual: str, regen: bool) -> None:
    path = GOLDEN / name
    if regen:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run pytest --regen-golden and review it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed: review, then pytest --regen-golden"


def test_fixture_week_matches_the_golden_files(week, regen_golden):
    built = week_edition(*week)
    html_part, text_part = built.edition.personalise(VALUES)
    check_golden("week-2017-10-25.html", html_part, regen_golden)
    check_golden("week-2017-10-25.txt", text_part, regen_golden)
    assert built.edition.subject == "On Probation: the best of the discussion, 25–31 October 2017"


def test_fixture_week_has_every_post_the_best_threads_and_a_star(week):
    settings, db = week
    built = week_edition(settings, db)
    data = as_json(built)
    titles = [p["title"] for p in data["posts"]]
    assert len(titles) == 7 and all(p["section"] == "new" for p in data["posts"])
    assert {"Napo Responds To Panorama", "Reaction To Panorama", "MoJ In Damage Limitation Mode"} <= set(titles)
    star = data["comment_of_the_week"]
    assert star["post"]["title"] in ("Napo Responds To Panorama", "Reaction To Panorama")
    panorama = next(p for p in data["posts"] if p["title"] == "Reaction To Panorama")
    assert len(panorama["threads"]) == 3 and panorama["comments_total"] == 22 and panorama["new_comments"] == 22
    assert built.html_bytes <= 102_000 and data["html_bytes"] == built.html_bytes
    html_part, text_part = built.edition.personalise(VALUES)
    for thread in panorama["threads"] + [star]:
        first = thread["comment"]["text"].split("\n")[0][:50]
        assert first in html.unescape(html_part)
        assert " ".join(first.split()[:6]) in " ".join(text_part.split())


def test_json_agrees_with_the_html(week):
    built = week_edition(*week)
    html_part, _ = built.edition.personalise(VALUES)
    shown_ids = set(re.findall(r"#c(\d+)\"", html_part))
    data = as_json(built)
    star = data["comment_of_the_week"]
    json_ids = {star["comment"]["id"]} | {r["id"] for r in star["replies"]}
    for p in data["posts"]:
        for t in p["threads"]:
            json_ids |= {t["comment"]["id"]} | {r["id"] for r in t["replies"]}
    assert json_ids == shown_ids


def test_email_structure_for_mail_clients(week):
    built = week_edition(*week)
    html_part, text_part = built.edition.personalise(VALUES)
    assert html_part.startswith("<!DOCTYPE html>") and '<html lang="en-GB"' in html_part
    head, body = html_part.split("<body", 1)
    assert "@media only screen and (max-width: 480px)" in head          # kept for phones
    assert "<style" not in body and "class=\"thread\" style=" in body  # the rest is inlined
    assert 'width="600"' in body and "max-width:600px" in body
    assert re.search(r"<td class=\"masthead\" style=['\"][^>]*background-color:#fff", body)
    assert "color:#1f1f1f" in body                                       # explicit text colour
    assert "<h1" in body and "<h2" in body and "<h3" in body
    assert re.search(r'href="http://localhost:8000/unsubscribe/TOKEN"[^>]*>Unsubscribe</a>', body)
    assert 'href="http://localhost:8000/archive/weekly/2017-10-25"' in body
    assert 'class="preheader"' in body and "Comment of the week:" in body
    assert "[[digest-" not in html_part + text_part
    assert "<" not in text_part and "&amp;" not in text_part
    assert "Unsubscribe: http://localhost:8000/unsubscribe/TOKEN" in text_part
    assert max(len(line) for line in text_part.splitlines() if "http" not in line) <= 80


def test_personal_values_are_escaped_and_only_tokens_are_replaced(week):
    settings, db = week
    built = week_edition(settings, db)
    html_part, text_part = built.edition.personalise({**VALUES, "greeting": "Hello <b>Bob</b> & co,"})
    assert "Hello &lt;b&gt;Bob&lt;/b&gt; &amp; co," in html_part
    assert "Hello <b>Bob</b> & co," in text_part


def test_token_in_a_comment_cannot_be_filled():
    p = post()
    sneaky = comment(p, "Please click [[digest-golden:unsubscribe_url]] right now, "
                        "it is really important to me and to all of you.")
    settings = config.from_dict({"lists": [{"name": "weekly", "file": "w.csv"}]})
    selection = select([discussion(p, sneaky)], SINCE, UNTIL, settings.selection)
    edition = Renderer(settings.write_settings()).render(selection, settings.lists[0])   # random nonce
    html_part, text_part = edition.personalise(VALUES)
    assert "[[digest-golden:unsubscribe_url]]" in html_part and "[[digest-golden:unsubscribe_url]]" in text_part


HOSTILE = [
    "<script>alert('x')</script> a comment long enough to be kept by the summariser rules here",
    '<img src=x onerror="alert(1)"> a comment long enough to be kept by the summariser rules too',
    '<a href="javascript:alert(1)">click</a> this comment is long enough to be kept by the rules',
    "</style><style>body{display:none}</style> and a comment that is long enough to be kept here",
    "<b>unclosed <i>tags and a comment that is long enough for the summariser to keep it",
    "]]></div></td></tr></table><h1>Fake heading</h1> comment long enough for the summariser to keep",
]


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.found.append((tag, dict(attrs)))


def test_hostile_comment_text_cannot_inject_markup():
    p = post(title="<script>alert('title')</script>Title")
    p = p.__class__(**{**p.__dict__, "url": "javascript:alert(1)"})
    comments = [comment(p, body, author="<img src=x onerror=alert(1)>") for body in HOSTILE]
    comments = [c.__class__(**{**c.__dict__, "url": "javascript:alert(2)"}) for c in comments]
    settings = config.from_dict({"site": {"url": "https://blog.example"},
                                 "lists": [{"name": "weekly", "file": "w.csv"}],
                                 "selection": {"threads_per_post": 10, "min_words": 5}})
    selection = select([discussion(p, *comments)], SINCE, UNTIL, settings.selection)
    assert len(selection.threads()) == len(HOSTILE)
    html_part, _ = Renderer(settings.write_settings()).render(selection, settings.lists[0]).personalise(VALUES)
    parser = _Tags()
    parser.feed(html_part)
    tags = {tag for tag, _ in parser.found}
    assert not tags & {"script", "img", "iframe", "i", "b"}
    assert [tag for tag, _ in parser.found].count("h1") == 1
    assert [tag for tag, _ in parser.found].count("style") == 1
    for _, attrs in parser.found:
        assert not any(name.startswith("on") for name in attrs)
        assert not attrs.get("href", "").lower().startswith("javascript:")
    assert "&lt;script&gt;alert(" in html_part and "&lt;/style&gt;&lt;style&gt;" in html_part


def test_a_week_of_2000_long_comments_fits_the_budget():
    posts = [post(f"Post {n}", SINCE + timedelta(hours=n * 3)) for n in range(40)]
    discussions = []
    for number, p in enumerate(posts):
        tops = [comment(p, text(400, number * 1000 + i)) for i in range(25)]
        replies = [comment(p, text(300, number * 1000 + 500 + i), parent=tops[i % 25]) for i in range(25)]
        discussions.append(discussion(p, *tops, *replies))
    assert sum(len(d.comments) for d in discussions) == 2000
    settings = config.from_dict({"lists": [{"name": "weekly", "file": "w.csv"}]})
    selection = select(discussions, SINCE, UNTIL, settings.selection)
    built = fit(selection, Renderer(settings.write_settings()), settings.lists[0], settings.email.max_html_bytes, 250)
    html_part, _ = built.edition.personalise(VALUES)
    assert len(html_part.encode()) <= 102_000 == settings.email.max_html_bytes
    data = as_json(built)
    assert len(data["posts"]) == 40                      # every post stays, threads give way
    assert data["comment_of_the_week"] is not None
    assert any(t["comment"]["trimmed"] for p in data["posts"] for t in p["threads"])
    assert "Read the rest on the blog" in html_part
    shown = sum(len(p["threads"]) for p in data["posts"])
    assert 0 < shown < 40 * 3
    assert html_part.rstrip().endswith("</html>")        # whole markup, never cut
    for thread in (t for p in data["posts"] for t in p["threads"]):
        if thread["comment"]["trimmed"]:
            assert thread["comment"]["text"].endswith(". …")


def test_period_defaults_to_the_list_length_ending_at_midnight():
    weekly = config.from_dict({"lists": [{"name": "w", "file": "w.csv"}]}).lists[0]
    since, until = period(weekly, datetime(2017, 10, 30, 7, 0, tzinfo=LONDON))
    assert (since.isoformat(), until.isoformat()) == ("2017-10-23T00:00:00+01:00", "2017-10-30T00:00:00+00:00")
    since, until = period(weekly, NOW, datetime(2017, 10, 25).date())
    assert until.isoformat() == "2017-11-01T00:00:00+00:00"


def test_plain_text_part_is_a_real_rendering(week):
    _, text_part = week_edition(*week).edition.personalise(VALUES)
    assert text_part.startswith("ON PROBATION\nThe best of the discussion, 25–31 October 2017\n")
    assert "== COMMENT OF THE WEEK ==" in text_part and "== NEW POSTS ==" in text_part
    assert "\n    | Anonymous, " in text_part            # replies indented under their comment
    message = email.parser.Parser().parsestr("Content-Type: text/plain; charset=utf-8\n\n" + text_part)
    assert message.get_payload() == text_part


def test_a_300_kb_title_and_a_300_kb_word_still_make_a_sendable_edition():
    huge = post("T" * 300_000, SINCE + timedelta(hours=1), body="w" * 300_000)
    discussions = [discussion(huge, comment(huge, "x" * 300_000), comment(huge, text(40, 3)))]
    settings = config.from_dict({"lists": [{"name": "weekly", "file": "w.csv"}]})
    selection = select(discussions, SINCE, UNTIL, settings.selection)
    built = fit(selection, Renderer(settings.write_settings()), settings.lists[0], settings.email.max_html_bytes, 250)
    html_part, text_part = built.edition.personalise(VALUES)
    assert len(html_part.encode()) <= settings.email.max_html_bytes
    assert "T" * 150 in html_part and "T" * 250 not in html_part          # the title, cut by characters
    assert len(text_part) < 20_000


def test_200_posts_in_one_period_collapse_into_links_then_a_count():
    posts = [post(f"Post {n}", SINCE + timedelta(minutes=n * 40), body=text(60, n)) for n in range(200)]
    discussions = [discussion(p, *[comment(p, text(30, n * 10 + i)) for i in range(n % 3)])
                   for n, p in enumerate(posts)]
    settings = config.from_dict({"lists": [{"name": "weekly", "file": "w.csv"}], "email": {"max_html_bytes": 60_000}})
    selection = select(discussions, SINCE, UNTIL, settings.selection)
    built = fit(selection, Renderer(settings.write_settings()), settings.lists[0], settings.email.max_html_bytes, 250)
    html_part, text_part = built.edition.personalise(VALUES)
    assert len(html_part.encode()) <= 60_000
    context = built.edition.context
    shown, linked, counted = len(context["posts"]), len(context["more_posts"]), context["more_count"]
    assert shown + linked + counted == 200 and linked + counted > 0
    assert "More posts in this period" in html_part and "MORE POSTS IN THIS PERIOD" in text_part
    discussed = {p["title"] for p in context["posts"]}
    quiet = {p["title"] for p in context["more_posts"]}
    most = max(selection.posts, key=lambda pick: pick.new_comments)
    assert most.post.title[:200] in discussed and not discussed & quiet        # the least discussed go first
    tiny = config.from_dict({"lists": [{"name": "weekly", "file": "w.csv"}], "email": {"max_html_bytes": 10_000}})
    small = fit(selection, Renderer(tiny.write_settings()), tiny.lists[0], tiny.email.max_html_bytes, 250)
    assert small.edition.context["more_count"] > 0                              # then only counted
    assert len(small.edition.personalise(VALUES)[0].encode()) <= 10_000
