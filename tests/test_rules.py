"""Editorial rules that hold on threads nobody labelled (issue 26): the blog owner's
housekeeping, abuse and shouting, and one-line thanks or clarifications are never shown;
the comment of the week has substance of its own. Written examples of each, and the
comments that look like them but are contributions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import Selection as Knobs
from digest.models import Picks
from digest.pick.rules import STAR_MIN_WORDS, abusive, never_shown, shouting
from digest.pick.select import select

from .support.discussions import SINCE, UNTIL, comment, discussion, post, text

OWNER = "Jim"                       # support.discussions.post's author

HOUSEKEEPING = ["Comments are now closed on this post. Thanks to everyone who took part.",
                "Please keep it civil folks, I have had to delete a comment this morning.",
                "I've removed a comment that named a colleague. Personal attacks will be deleted.",
                "Off-topic comments will go. Use the private message device for anything personal."]
ABUSE = ["You're a complete idiot and everyone in this office knows it, frankly.",
         "What a moron. Typical management scum who never did a day on the front line.",
         "THIS IS AN OUTRAGE AND EVERYONE RESPONSIBLE SHOULD BE SACKED TODAY WITHOUT A PENNY",
         "Unbelievable!!! Who signed this off??? Nobody will answer for it!!!"]
THANKS = ["Thanks, well said.", "@Getafix Agreed!", "Sorry, I meant 2015 not 2016.", "Anon 12:19 - spot on.",
          "Typo: should read 'CRC' in my last line."]
CONTRIBUTIONS = [
    "Thanks for the post. I think the real problem is caseloads: mine went from 40 to 70 in two years, and "
    "nobody in management will say how that squares with supervision that protects the public.",
    "The NO TO PRIVATISATION banners were everywhere at conference, and for good reason: the CRCs have failed "
    "on every measure the ministry set for them.",
    "I agree with the last poster about the training, because the new recruits get six weeks where we had two "
    "years, and it shows in every report I countersign.",
]


@pytest.mark.parametrize("body", HOUSEKEEPING)
def test_the_owners_housekeeping_is_never_shown(body):
    p = post()
    assert never_shown(comment(p, body, author=OWNER), p, len(body.split()), answering=False) == "housekeeping"
    assert never_shown(comment(p, body, author="A Reader"), p, len(body.split()), answering=False) != "housekeeping"


@pytest.mark.parametrize("body", ABUSE)
def test_abuse_and_shouting_are_never_shown(body):
    p = post()
    assert abusive(body) and never_shown(comment(p, body), p, len(body.split()), answering=False) == "abusive"


@pytest.mark.parametrize("body", THANKS)
def test_a_one_line_thanks_or_clarification_answering_someone_is_never_shown(body):
    p = post()
    assert never_shown(comment(p, body), p, len(body.split()), answering=True) == "thanks"
    assert never_shown(comment(p, body), p, len(body.split()), answering=False) is None   # not answering: kept


@pytest.mark.parametrize("body", CONTRIBUTIONS)
def test_contributions_that_look_like_them_are_kept(body):
    p = post()
    for author in ("Anonymous", OWNER):
        assert never_shown(comment(p, body, author=author), p, len(body.split()), answering=True) is None, body


def test_shouting_needs_enough_letters_and_mostly_capitals():
    assert not shouting("NO NO NO")                                 # too short to tell
    assert not shouting("The CRC and NPS and MoJ and HMPPS acronyms are not shouting at all, honestly")
    assert shouting("WHY HAS NOBODY FROM THE MINISTRY ANSWERED A SINGLE QUESTION")


def test_in_a_thread_the_rules_drop_and_a_pin_overrides():
    p = post()
    top = comment(p, text(60, 1))
    thanks = comment(p, "Thanks, well said, and thank you for putting it so clearly for all of us who read "
                        "this blog every day.", parent=top)
    rant = comment(p, "You're a complete idiot and everyone knows it. " + text(30, 2), parent=top)
    owner = comment(p, "Please keep it civil everyone, I have had to delete a comment this morning that named "
                       "a colleague.", author=OWNER)
    selection = select([discussion(p, top, thanks, rant, owner)], SINCE, UNTIL, Knobs())
    assert selection.dropped.get("thanks") == 1 and selection.dropped.get("abusive") == 1
    assert selection.dropped.get("housekeeping") == 1
    shown = {s.comment.key for _, t in selection.threads() for s in (t.top, *t.replies)}
    assert shown.isdisjoint({thanks.key, rant.key, owner.key}) and top.key in shown
    pinned = select([discussion(p, top, thanks, rant, owner)], SINCE, UNTIL, Knobs(),
                    Picks(pinned=frozenset({rant.key})))
    assert rant.key in {s.comment.key for _, t in pinned.threads() for s in (t.top, *t.replies)}


def test_the_comment_of_the_week_has_substance_of_its_own():
    p = post()
    drew = comment(p, text(20, 3))                          # short, but it drew the most replies
    replies = [comment(p, text(25, 10 + n), parent=drew) for n in range(4)]
    substantial = comment(p, text(STAR_MIN_WORDS + 10, 4))
    selection = select([discussion(p, drew, *replies, substantial)], SINCE, UNTIL, Knobs())
    crowned = next(s for s in (selection.star.top, *selection.star.replies)
                   if s.comment.key == selection.star_key)
    assert crowned.words >= STAR_MIN_WORDS and selection.star_key != drew.key


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400), st.booleans())
def test_whatever_a_stranger_writes_the_rules_answer(body, answering):
    p = post()
    assert never_shown(comment(p, body), p, len(body.split()), answering) in (None, "housekeeping", "abusive",
                                                                                "thanks")
