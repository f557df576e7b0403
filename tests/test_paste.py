"""Never crown a paste (issue 26): a comment that is mostly somebody else's words (a press
article, a government statement, another comment, the post itself) is shown as context
but never the comment of the week, and its pasted words are not counted as its own.
Written examples of each kind, and the real one: the Interserve article pasted into the
discussion of "Reaction To Panorama" (30 October 2017)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import Selection as Knobs
from digest.models import Picks
from digest.pick.paste import is_paste, pasted_words
from digest.pick.select import select
from digest.pick.words import strip_noise, words

from .support.discussions import SINCE, UNTIL, comment, discussion, post, text

ARTICLE = ('"Interserve\'s hiring of consultants follows sustained pressure from concerned lenders. Earlier in '
           "October a consortium of the firm's backers recruited advisors amid fears their debts would not be "
           "repaid.\n\n"
           "Following the appointment, the chief executive said, “Despite our challenges, we have a strong client "
           "base and many strengths as an organisation.”\n\n"
           "However, the company also commented in a statement that, due to profit deterioration in its "
           "construction services, it may not meet the test contained in its financial covenants.\n\n"
           "Weakened foundations\n\n"
           "The multinational support services company previously boasted a revenue of three billion pounds and "
           "a workforce of more than eighty thousand people worldwide.")

PASTES = {
    "an article between quotation marks, over paragraphs": ARTICLE,
    "a news report with a dateline and attributions": (
        "LONDON, 3 November (Reuters) - The Ministry of Justice said on Friday that the contracts of community "
        "rehabilitation companies would end two years early, according to a statement.\n\n"
        "“We have listened to the concerns,” a spokesman said, adding that a new model would follow in 2020 "
        "after a consultation with providers and staff across England and Wales."),
    "an article with its source line at the end": (
        "The inspectorate found that caseloads in the division had risen by a third in a year and that "
        "supervision of high risk cases was poor in half of the files inspected.\n\n"
        "The chief inspector called the findings deeply troubling and demanded a plan within three months from "
        "the company that runs the service in the region.\n\n"
        "Source: The Guardian, 3 November 2017"),
    "a government statement in quotation marks": (
        "“Probation services will be strengthened by the changes announced today, with new standards for "
        "supervision, more officers in every region and a single national model for the supervision of "
        "offenders released from prison on licence.”"),
}

PASTES.update({
    "a UK press report with single quotes": (
        "‘We have listened to the concerns of staff and providers across the country,’ a spokesman for the "
        "ministry said, adding that the new model would be announced in the spring after a consultation.\n\n"
        "‘The changes will bring stability to a service that has been through a great deal,’ the minister told "
        "the justice committee on Tuesday, according to a statement released afterwards."),
    "an undated dateline": (
        "LONDON (Reuters) - The company that runs probation services in five regions warned on Friday that it "
        "would breach the terms of its loans unless the ministry agreed to change the contracts before Christmas."),
})

OWN = {
    "a sign-off that begins with From": (
        "Nobody in the division has had a pay rise in seven years and the caseloads keep going up while the "
        "managers talk about agile working and hot desks.\n\nFrom a very tired PO in the North West"),
    "an update in the first person with a date": (
        "Update, 3 November: the staff meeting was cancelled again, so we still know nothing about the new "
        "contracts, the redundancies or who will run the service from April."),
    "third-person sarcasm quoting a minister": (
        'The minister said "nothing will change for frontline staff" and, funnily enough, everything changed for '
        "frontline staff within the month, from the rotas to the buildings to the computers."),
    "a short quote, then the commenter's own view": (
        '"If the idea was to improve standards, protect the public, reduce re-offending" etc. I for my part have '
        "been very slow in realising these were never the real aims of the changes in spite of what was said "
        "at the time by the ministry and the companies that took over the contracts."),
    "a first-person comment that reports what was said": (
        "The minister said it would work, and “nothing will change for the staff” was the line. I was there "
        "and I can tell you that nothing about it worked for us, and our caseloads doubled within a year."),
    "a plain comment with a link at the end": (
        "We were told the new system would free us from paperwork but I now spend more time on the computer "
        "than with the people I supervise, and my colleagues say the same in every office I know of.\n\n"
        "https://example.org/my-blog-post"),
}


def _share(body: str) -> float:
    return pasted_words(body) / len(words(strip_noise(body)))


@pytest.mark.parametrize("kind", sorted(PASTES))
def test_each_kind_of_paste_is_found(kind):
    body = PASTES[kind]
    total = len(words(strip_noise(body)))
    assert is_paste(total, total - pasted_words(body)), (kind, _share(body))


@pytest.mark.parametrize("kind", sorted(OWN))
def test_a_comment_in_its_own_words_is_not_a_paste(kind):
    body = OWN[kind]
    total = len(words(strip_noise(body)))
    assert not is_paste(total, total - pasted_words(body)), (kind, _share(body))


def test_a_paste_is_shown_as_context_but_never_crowned_and_its_words_are_not_its_own():
    p = post()
    top = comment(p, "Where are the questions in Parliament about the contracts and the bonuses? " + text(30, 1))
    paste = comment(p, ARTICLE + "\n\n" + text(12, 2), parent=top)          # a long paste and a line of its own
    other = comment(p, text(70, 3))
    selection = select([discussion(p, top, paste, other)], SINCE, UNTIL, Knobs())
    assert selection.star_key != paste.key
    said = {s.comment.key: s for _, t in selection.threads() for s in (t.top, *t.every)}
    assert said[paste.key].pasted and said[paste.key].words < 0.3 * len(words(ARTICLE))
    assert paste.key in said                                                   # still there, as context
    pinned = select([discussion(p, top, paste, other)], SINCE, UNTIL, Knobs(), Picks(pinned=frozenset({paste.key})))
    assert pinned.star_key == paste.key                                       # the editor's pin still wins


def test_a_comment_that_repeats_the_post_is_not_crowned():
    body = text(80, 5)
    p = post(body=body)
    copy = comment(p, body)                                                   # the post pasted back
    mine = comment(p, text(40, 6))
    selection = select([discussion(p, copy, mine)], SINCE, UNTIL, Knobs())
    assert selection.star_key == mine.key


def test_the_interserve_article_is_not_crowned_in_its_week(tmp_path):
    """The sample blog, 30 October to 5 November 2017, no pins."""
    import shutil
    from pathlib import Path

    from digest import config
    from digest.db import Database
    from digest.read.ingest import ingest
    from digest.write.edition import build, period
    from digest.write.render import Renderer

    from .conftest import NOW
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples", tmp_path / "examples")
    settings = config.load(tmp_path / "examples" / "config.toml")
    with Database.open(settings.database_url()) as db:
        assert ingest(settings.sources[0], settings.fetch, db, settings.root, NOW).error is None
        weekly = settings.lists[0]
        since, until = period(weekly, NOW, datetime(2017, 10, 30).date(), datetime(2017, 11, 6).date())
        built = build(settings.write_settings(), db, Renderer(settings.write_settings()), weekly, since, until)
    star = built.selection.star
    crowned = next(s for s in (star.top, *star.replies) if s.comment.key == built.selection.star_key)
    assert "Interserve" not in crowned.comment.text and not crowned.pasted
    paste = [s for _, t in built.selection.threads() for s in (t.top, *t.every) if s.comment.key == INTERSERVE]
    assert paste and paste[0].pasted and paste[0].words < 60                 # 458 words, about 40 its own


INTERSERVE = "8289724876996292414"


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(list("ab \n\"“”«»„.,:-—I") + ["LONDON, 3 May (AP) -", "said", "Source:", "\n\n"]),
                max_size=200).map("".join))
def test_whatever_a_stranger_writes_the_paste_count_is_within_its_words(body):
    assert 0 <= pasted_words(body) <= len(words(body))
