"""The inbox line (issue 26): the comment of the week's own first sentence, its reply tags
and quotations taken out, or the editor's note's; at most 100 characters; padded so that
clients do not pull the body in after it."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.db.drafts import Draft
from digest.models import Picks
from digest.write.preheader import MAX, inbox_line, own_words
from digest.write.render import Renderer

from .test_render import VALUES, week, week_edition  # noqa: F401 - the fixture

GETAFIX = "5575225138489704831"          # the reply of 30 October 09:58 that opens "Annon@ 8:33"
LABEL = "Comment of the week"


@pytest.mark.parametrize("tag", ["@Anin 08:33", "Annon@ 8:33", "Anon 12:19", "Anonymous at 10.47 -", "@Getafix,",
                                 "Getafix @ 12:19", "Re:", "@Anin 08:33\n\n@Bob", "Anon@ 9:01 & @Sue:"])
def test_every_kind_of_reply_tag_is_taken_off(tag):
    text = f"{tag}\n\nWhat you hear here is the point. And more besides."
    assert inbox_line(LABEL, text, None, 3) == f"{LABEL}: What you hear here is the point."


def test_quoted_paragraphs_are_not_the_comments_own_words():
    text = ('"You won\'t change people by imposing ludicrous requirements on them."\n\n'
            "> and a line quoted mail-style\n\nThis is where old and new probation divide. More follows.")
    assert own_words(text).startswith("This is where old and new probation divide.")
    assert inbox_line(LABEL, text, None, 3) == f"{LABEL}: This is where old and new probation divide."


def test_the_editors_note_wins_and_a_long_sentence_is_cut_at_a_word():
    assert inbox_line(LABEL, "Mine. Yes.", "A hard week for probation. Read on.", 3) == "A hard week for probation."
    long = "word " * 40 + "end."
    line = inbox_line(LABEL, long, None, 3)
    assert len(line) <= MAX and line.endswith("word…") and line.startswith(f"{LABEL}: Word word")
    assert inbox_line(LABEL, None, None, 1) == "1 post and their discussions"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400), st.one_of(st.none(), st.text(max_size=200)))
def test_whatever_the_comment_the_line_is_short_and_one_line(text, note):
    line = inbox_line(LABEL, text, note, 2)
    assert len(line) <= MAX and "\n" not in line and "\r" not in line


def _preheader(html_part: str) -> str:
    found = re.search(r'<div class="preheader"[^>]*>(.*?)</div>', html_part, re.DOTALL)
    assert found, "the edition has a preheader"
    return htmllib.unescape(found.group(1))


def test_with_getafix_pinned_the_inbox_line_quotes_getafix_not_the_thread(week):  # noqa: F811
    html_part, _ = week_edition(*week, picks=Picks(pinned=frozenset({GETAFIX}))).edition.personalise(VALUES)
    line = _preheader(html_part)
    text = line.rstrip("\u034f\u200c\u00a0 ")
    assert text.startswith(f"{LABEL}: If you broke your leg and found yourself on a trolly")
    assert "@" not in text and "8:33" not in text and len(text) <= MAX
    assert len(line) - len(text) >= 100                      # padded: no body text pulled in after it
    assert "What you hear professionals" not in line         # the thread's first comment is not quoted


def test_the_note_opens_the_inbox_line(week):  # noqa: F811
    settings, db = week
    built = week_edition(settings, db)
    voiced = Renderer(settings.write_settings()).render(built.selection, settings.lists[0], built.trim, "golden",
                                                        Draft(note="**Panorama** week. More below."))
    assert _preheader(voiced.personalise(VALUES)[0]).startswith("Panorama week.")


def test_hidden_characters_never_reach_the_inbox_line():
    """A stranger's bidi override, zero-width or control characters, or the padding's own."""
    line = inbox_line(LABEL, "Pay \u202erof\u202c attention\u200b\ufeff\x07\x1b now. More.", None, 3)
    assert line == f"{LABEL}: Pay rof attention now."
    assert inbox_line(LABEL, "\u034f\u200c\u00a0" * 30, None, 2) == "2 posts and their discussions"


def test_a_huge_word_is_cut_inside_and_a_time_in_a_sentence_is_kept():
    line = inbox_line(LABEL, "x" * 500 + " and more.", None, 3)
    assert line.startswith(f"{LABEL}: Xxx") and len(line) <= MAX
    kept = inbox_line(LABEL, "2.30 am and still writing this. Yes.", None, 3)
    assert kept == f"{LABEL}: 2.30 am and still writing this."
    assert inbox_line(LABEL, "08:33 - Quite right. Yes.", None, 3) == f"{LABEL}: Quite right."
