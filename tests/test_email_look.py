"""The email as a reader sees it: contents, "Also new", dark mode in a real Chromium at
phone and desktop widths (screenshots in test-artifacts/), the star's label, the
editor's note and subject from the CLI and the web editor to the sent edition, and the
archive copy without personal parts."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from digest import actions
from digest.actions import send_edition
from digest.cli import cli
from digest.db.drafts import Draft
from digest.pick.paste import is_quotation
from digest.web import create_app
from digest.write.edition import build, period
from digest.write.render import Renderer, archive_html, note_parts, star_title
from digest.write.view import QUOTE_WORDS, _own_first, shorten

from .support.smtp_server import free_port
from .support.world import World

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WIDTHS = (390, 1280)
PHONE_SCREENS_PX = 4300      # issue 26: the demo week in about five screens of a 390 px phone
VALUES = {"greeting": "Hello Reader One,", "email": "reader.one@example.org",
          "unsubscribe_url": "http://127.0.0.1:9/unsubscribe/TOKEN"}
NOTE = "A **big** week: read [the Panorama thread](https://example.org/p).\n\n- one\n- two <script>alert(1)</script>"


@pytest.fixture
def world(make_world, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "email-look-secret")
    monkeypatch.setenv("DIGEST_EDITOR_PASSWORD", "editor-pass")
    return make_world(None, 2)


def demo_week(world: World, voice: Draft | None = None) -> str:
    """The demo week's HTML part as a subscriber gets it."""
    if voice is not None:
        actions.set_note(world.db, world.weekly, voice.note, datetime.now(UTC))
        actions.set_subject(world.db, world.weekly, voice.subject, datetime.now(UTC))
    built = build(world.write, world.db, Renderer(world.write), world.weekly, world.since, world.until)
    return built.edition.personalise(VALUES)[0]


# ------------------------------------------------------------------ in a real browser

def test_dark_mode_contents_and_screenshots_at_phone_and_desktop_widths(world, browser):
    html = demo_week(world)
    ARTIFACTS.mkdir(exist_ok=True)
    for width in WIDTHS:
        colours = {}
        for scheme in ("light", "dark"):
            page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
            page.emulate_media(color_scheme=scheme)
            page.set_content(html, wait_until="load")
            colours[scheme] = page.evaluate("""() => [document.body, document.querySelector('.container'),
                document.querySelector('.post h3 a')].map(e => getComputedStyle(e).backgroundColor + '/' +
                getComputedStyle(e).color)""")
            assert page.evaluate("document.documentElement.scrollWidth") <= width      # no sideways scrolling
            tall = page.evaluate("document.documentElement.scrollHeight")
            assert tall <= PHONE_SCREENS_PX, (width, scheme, tall)       # about five phone screens (was 8,212)
            shot = ARTIFACTS / f"email-{scheme}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            _contents_jump_to_their_sections(page)
            page.close()
        light, dark = colours["light"], colours["dark"]
        assert all(a != b for a, b in zip(light, dark, strict=True)), (light, dark)
        assert dark[1].startswith("rgb(30, 30, 30)")            # the dark container, from the media query


def _contents_jump_to_their_sections(page) -> None:
    targets = page.eval_on_selector_all(".contents a", "links => links.map(a => a.getAttribute('href'))")
    assert len(targets) == 4 and targets[0] == "#star" and targets[-1] == "#also-new"
    for target in targets:
        assert target.startswith("#") and page.locator(target).count() == 1, target
    middle = targets[2]                                  # a post's section lands at the top
    page.click(f".contents a[href='{middle}']")
    page.wait_for_function(f"Math.abs(document.querySelector('{middle}').getBoundingClientRect().top) < 2")
    assert page.evaluate("window.scrollY") > 1000
    page.click(".contents a[href='#also-new']")          # the last one comes into view
    page.wait_for_function("""() => { const top = document.querySelector('#also-new').getBoundingClientRect().top;
                                      return top >= 0 && top < window.innerHeight; }""")


# ------------------------------------------------------------------ the email's shape

def test_the_email_skims_contents_also_new_and_a_short_greeting(world):
    html = demo_week(world)
    contents = re.search(r'<td class="contents".*?</td>', html, re.DOTALL).group(0)
    anchors = re.findall(r'href="#([\w-]+)"', contents)
    assert len(anchors) == 4 and anchors[0] == "star" and anchors[-1] == "also-new"
    for anchor in anchors:
        assert html.count(f'id="{anchor}"') == 1
    also = re.search(r'id="also-new".*?</td>', html, re.DOTALL).group(0)
    assert also.count("<li") == 5 and "Pick of the Week 28" in also
    assert html.count('class="post"') == 2                     # the 0-comment posts take no block of their own
    assert "<p>Hello Reader One,</p>" in re.sub(r' style="[^"]*"', "", html)
    assert "This edition has 7 new posts and 36 new comments. Here are the discussions" in html
    assert "Why:" not in html


def test_comments_end_at_a_sentence_and_replies_are_shorter_than_top_comments(world):
    """The demo week at its defaults: a top comment at most max_comment_words (60) words, a
    reply at most two thirds of that, each cut at a sentence with "Read the rest" on the
    blog; the comment of the week keeps the top comment's length even as a reply."""
    built = build(world.write, world.db, Renderer(world.write), world.weekly, world.since, world.until)
    limit = world.write.max_comment_words
    star = built.edition.context["star"]["thread"]
    threads = [star] + [t for post in built.edition.context["posts"] for t in post["threads"]]
    tops = [t["comment"] for t in threads]
    replies = [r for t in threads for r in t["replies"] if not r.get("star")]
    assert limit == 60 and replies and all(c["trimmed"] for c in tops + replies if len(c["text"].split()) > limit)
    assert all(_own(c) <= limit + 1 for c in tops)                              # + the "…"
    assert all(_own(r) <= limit * 2 // 3 + 1 for r in replies)
    assert any(_own(c) > limit * 2 // 3 + 1 for c in tops)                     # tops really get more
    cut = [c for c in tops + replies if c["trimmed"]]
    assert cut and all(re.search(r"[.!?…]\W*$", c["text"]) for c in cut)     # at a sentence, or "…"
    html = built.edition.personalise(VALUES)[0]
    assert html.count("Read the rest on the blog &rarr;") + html.count("Read the rest on the blog →") == len(cut)


def test_the_contents_and_the_boxes_work_where_outlook_and_gmail_read_them(world):
    """caniemail: Outlook for Windows and Gmail on the web follow `<a name>`, not `id`;
    Outlook drops the padding and borders of a div. Every contents link has its named
    anchor, and every padded or bordered box of the inlined email is a table cell."""
    html = demo_week(world)
    contents = re.search(r'<td class="contents".*?</td>', html, re.DOTALL).group(0)
    for anchor in re.findall(r'href="#([\w-]+)"', contents):
        assert len(re.findall(rf'<a name="{anchor}"[^>]*></a>', html)) == 1, anchor
    body = html.split("<body", 1)[1]
    styled = re.findall(r"""<(\w+)[^>]*?style=("[^"]*"|'[^']*')""", body)
    boxed = [tag for tag, style in styled if "padding" in style or "border-left" in style]
    assert boxed.count("td") >= 8 and set(boxed) <= {"td", "ul"}, set(boxed)       # lists keep their indent
    assert body.count('class="thread"') >= 4 and body.count('class="reply"') >= 4


def _own(comment: dict) -> int:
    """Words shown after an opening quotation (which has its own allowance, cut with "…")."""
    opening, _, rest = comment["text"].partition("\n\n")
    quoted = is_quotation(opening) or (opening[:1] in "\"“" and opening.endswith("…"))
    return len((rest if rest and quoted else comment["text"]).split())


def test_a_reply_that_opens_with_a_quote_shows_its_own_answer():
    quote = '"' + " ".join(f"quoted{n}" for n in range(40)) + '."'
    answer = " ".join(f"own{n}" for n in range(10)) + ". " + " ".join(f"more{n}" for n in range(50)) + "."
    text, cut = _own_first(f"{quote}\n\n{answer}", 40)
    shown_quote, shown_answer = text.split("\n\n")
    assert cut and len(shown_quote.split()) <= QUOTE_WORDS + 1 and shown_answer.startswith("own0 own1")
    assert _own_first("Plain words. " * 5, 40) == shorten("Plain words. " * 5, 40)


def test_dark_styles_survive_inlining_and_the_colour_scheme_is_declared(world):
    html = demo_week(world)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    dark = re.search(r"@media \(prefers-color-scheme: dark\) \{(.*?)\n\s*\}\s*\n?</style>", html, re.DOTALL)
    assert dark and "background-color: #1e1e1e !important" in dark.group(1)


@pytest.mark.parametrize(("days", "label"), [(1, "Comment of the day"), (7, "Comment of the week"),
                                             (28, "Comment of the month"), (31, "Comment of the month"),
                                             (3, "Star comment"), (14, "Star comment")])
def test_the_star_label_follows_the_period(days, label):
    since = datetime(2017, 10, 1, tzinfo=UTC)
    assert star_title(since, since + timedelta(days=days)) == label


def test_a_one_day_edition_has_a_comment_of_the_day(world):
    since, until = period(world.weekly, datetime.now(UTC), date(2017, 10, 27), date(2017, 10, 28))
    built = build(world.write, world.db, Renderer(world.write), world.weekly, since, until)
    html, text = built.edition.personalise(VALUES)
    assert built.selection.star is not None
    assert "Comment of the day" in html and "== COMMENT OF THE DAY ==" in text and "of the week" not in html


# ------------------------------------------------------------------ the editor's voice

def test_note_is_markdown_sanitised_in_html_and_plain_in_text():
    parts = note_parts(NOTE + '\n\n<img src=x onerror=alert(1)> [x](javascript:alert(1))')
    html = str(parts["html"])
    assert "<strong>big</strong>" in html and '<a href="https://example.org/p"' in html
    assert not re.search(r"<(script|img)", html) and 'href="javascript' not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html      # shown as text
    assert parts["text"].startswith("A big week: read the Panorama thread (https://example.org/p).\n\n- one\n- two")


def test_note_and_subject_from_the_cli_go_out_frozen_then_clear(world):
    def run(*args: str):
        return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])

    assert "no note set" in run("note", "weekly").output
    assert run("note", "weekly", NOTE).exit_code == 0
    assert run("subject", "weekly", "  Panorama:   the week after ").exit_code == 0
    assert run("subject", "weekly").output == "weekly: subject for the next edition: Panorama: the week after\n"
    assert "**big**" in run("note", "weekly").output
    both = run("note", "weekly", "x", "--clear")
    assert both.exit_code == 2 and "Error: give note TEXT or --clear, not both" in both.output

    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.subject == "Panorama: the week after"
    with sqlite3.connect(world.settings.database_url().removeprefix("sqlite:///")) as db:
        note, subject, html = db.execute("SELECT note, subject, html FROM editions").fetchone()
    assert note == NOTE and subject == "Panorama: the week after" and "<strong>big</strong>" in html
    assert world.db.drafts.get("weekly") == Draft()             # cleared for the next edition
    assert "no subject set" in run("subject", "weekly").output
    sent = sorted((world.folder.parent / "demo" / "outbox").rglob("*.eml"))[0].read_text(encoding="utf-8")
    assert "Subject: Panorama: the week after" in sent and "A big week: read the Panorama thread" in sent


def test_a_draft_changed_after_the_build_waits_for_the_next_edition(world):
    actions.set_note(world.db, world.weekly, "first", datetime(2017, 11, 1, 8, tzinfo=UTC))
    built = build(world.write, world.db, Renderer(world.write), world.weekly, world.since, world.until)
    actions.set_note(world.db, world.weekly, "second", datetime(2017, 11, 1, 10, tzinfo=UTC))
    world.db.ledger.freeze(built.edition, datetime(2017, 11, 1, 11, tzinfo=UTC), datetime(2017, 11, 1, 9, tzinfo=UTC))
    assert world.db.drafts.get("weekly").note == "second"


def test_the_archive_copy_has_no_personal_parts(world):
    actions.set_note(world.db, world.weekly, NOTE, datetime.now(UTC))
    send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    client = create_app(world.settings, world.db).test_client()
    page = client.get("/archive/weekly/2017-10-25").get_data(as_text=True)
    assert "<strong>big</strong>" in page and "Reaction To Panorama" in page
    assert "Hello" not in page and "/unsubscribe/" not in page and ">Unsubscribe<" not in page
    assert "View this digest on the web" not in page and "View on the web" not in page
    assert "subscribed to On Probation" not in page and "[[digest-" not in page
    assert "Visit the blog" in page


def test_archive_html_cuts_marked_parts_and_empties_tokens():
    tokens = {"greeting": "[[digest-n:greeting]]"}
    marked = ("<p>a</p><!--digest:personal--><p>[[digest-n:greeting]]</p><!--/digest:personal-->"
              "<p>b [[digest-n:greeting]]</p>")
    assert archive_html(marked, tokens) == "<p>a</p><p>b </p>"


# ------------------------------------------------------------------ the web editor

@pytest.fixture
def site(world):
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(world.settings, world.db), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield world, f"http://127.0.0.1:{port}"
    server.shutdown()


def test_editor_sets_note_and_subject_and_sees_them_in_the_preview_frame(site, browser):
    world, base = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/editor/login")
    page.fill("input[name=password]", "editor-pass")
    page.click("button[type=submit]")
    week = "since=2017-10-25&until=2017-11-01"
    page.goto(f"{base}/editor/weekly?{week}")
    page.fill("#voice-subject", "Panorama: the week after")
    page.fill("#voice-note", NOTE)
    page.click("button[name=action][value=save]")
    page.wait_for_url(re.compile(rf".*/editor/weekly\?{week}$"))
    assert page.input_value("#voice-note") == NOTE
    page.frame_locator("iframe").locator(".note strong").wait_for()
    frame = next(f for f in page.frames if f.url.endswith(f"/editor/weekly/email.html?{week}"))
    assert frame.title() == "Panorama: the week after"
    assert frame.inner_text(".note").startswith("A big week: read the Panorama thread")
    assert frame.locator(".note script").count() == 0 and "<script>" in frame.inner_text(".note")
    assert world.db.drafts.get("weekly") == Draft(NOTE, "Panorama: the week after")

    page.click("button[name=action][value=clear-note]")
    page.wait_for_url(re.compile(rf".*/editor/weekly\?{week}$"))
    frame = next(f for f in page.frames if f.url.endswith(f"/editor/weekly/email.html?{week}"))
    frame.wait_for_load_state()
    assert frame.locator(".note").count() == 0 and frame.title() == "Panorama: the week after"
    assert world.db.drafts.get("weekly") == Draft(None, "Panorama: the week after")


def test_the_draft_store_on_sqlite_and_postgresql(tmp_path, db_url):
    made = World(tmp_path, db_url, 2)
    try:
        drafts, when = made.db.drafts, datetime(2017, 11, 1, 8, tzinfo=UTC)
        assert drafts.get("weekly") == Draft()
        drafts.set_note("weekly", "note", when)
        drafts.set_subject("weekly", "subject", when)
        assert drafts.get("weekly") == Draft("note", "subject") and drafts.get("other") == Draft()
        drafts.set_note("weekly", None, when)
        assert drafts.get("weekly") == Draft(None, "subject")
        drafts.set_subject("weekly", None, when)
        assert drafts.get("weekly") == Draft()
        drafts.set_subject("weekly", "frozen with the edition", when)
        report = send_edition(made.settings, made.db, made.weekly, made.since, made.until)
        assert report.subject == "frozen with the edition" and drafts.get("weekly") == Draft()
    finally:
        made.close()


def test_a_note_keeps_only_links_that_work_from_a_mailbox():
    """Relative and protocol-relative links in a note lead nowhere (or elsewhere) from an
    email: only absolute http(s) and mailto links keep their href (a stranger's attack)."""
    from digest.write.render import note_parts
    html = str(note_parts("[a](/editor/weekly) [b](//evil.example) [c](https://ok.example/x) "
                          "[d](mailto:ed@ok.example)")["html"])
    assert 'href="https://ok.example/x"' in html and 'href="mailto:ed@ok.example"' in html
    assert "/editor/weekly" not in html and "evil.example" not in html


def test_a_comment_that_fits_is_never_cut_and_a_cut_quote_still_closes():
    short = '"' + " ".join(f"q{n}" for n in range(20)) + '"\n\nMy answer in five words.'
    assert _own_first(short, 40) == (short, False)
    long = '"' + " ".join(f"q{n}" for n in range(30)) + '."\n\n' + "Mine. " * 50
    quote = _own_first(long, 40)[0].split("\n\n")[0]
    assert quote.endswith('…"') and len(quote.split()) <= QUOTE_WORDS + 1
