"""Editorial rules: comments an editor would never put in a digest, whatever they score.

Written as rules (each with its own tests), not as weights fitted to a sample, so that
they hold on threads nobody labelled:

- housekeeping: the blog owner administering the thread ("comments are closed", "please
  keep it civil", "I have deleted a comment", moderation), in a short comment;
- abusive: an insult aimed at a person ("you idiot", "what a moron"), or shouting (most
  letters capitals) and repeated punctuation ("!!!", "???");
- thanks: a one-line thanks, agreement or clarification that answers a previous comment
  and makes no point of its own ("Thanks, well said", "Sorry, I meant 2015").

An editor's pin always wins over these. The comment of the week must also have substance
of its own: at least STAR_MIN_WORDS own words.
"""

from __future__ import annotations

import re

from ..models import Comment, Post
from .conversation import ANONYMOUS
from .tags import untagged

STAR_MIN_WORDS = 40            # the comment of the week says something a subscriber can take away
HOUSEKEEPING_MAX_WORDS = 80    # the owner's longer comments are contributions, whatever they mention
THANKS_MAX_WORDS = 25          # a line of text; shorter than min_words is dropped as short anyway
SHOUT_MIN_LETTERS = 30
SHOUT_SHARE = 0.6

_HOUSEKEEPING = re.compile(
    r"\b(?:comments?\s+(?:are|is|now)\s+(?:now\s+)?(?:closed|moderated|switched off)|(?:closed|closing)\s+"
    r"(?:the\s+)?comments|comment moderation|moderat(?:ed|ion|ing)\b|keep it civil|be civil|play nicely|"
    r"off[- ]topic|(?:deleted|removed)\s+(?:a|the|this|that|some|your|several)?\s*(?:comments?|posts?)|"
    r"(?:have|had|'ve)\s+(?:had\s+)?to\s+(?:delete|remove)|personal attacks|house rules|spam\b|"
    r"private message|contact (?:me|the blog)|email me|guest (?:post|blog)s? (?:are|is) welcome)",
    re.IGNORECASE)
_INSULT = re.compile(
    r"\b(?:you(?:'re|\s+are)?|what\s+an?|such\s+an?|bunch\s+of|load\s+of|pack\s+of)\s+(?:\w+\s+){0,2}?"
    r"(?:idiot|moron|cretin|imbecile|fool|scum|liar|troll|prat|tosser|twat|wanker|numpty|halfwit|parasite|"
    r"clown|muppet|dickhead|arsehole|asshole)s?\b|\b(?:shut\s+up|get\s+lost|piss\s+off|f\W*off)\b",
    re.IGNORECASE)
_REPEATED = re.compile(r"[!?]{3,}")
_THANKS = re.compile(
    r"\A\W*(?:(?:many\s+)?thanks?|thank\s+you|cheers|ta\b|agreed|i\s+agree|well\s+said|hear,?\s+hear|\+1|"
    r"spot\s+on|exactly|absolutely|yes|this|sorry|apologies|oops|typo|correction|to\s+clarify|i\s+meant|"
    r"meant\s+to\s+say|should\s+(?:have\s+)?read)\b", re.IGNORECASE)


def never_shown(comment: Comment, post: Post, own_words: int, answering: bool) -> str | None:
    """The rule that keeps the comment out of any edition ("housekeeping", "abusive",
    "thanks"), or None. `answering`: it answers an earlier comment."""
    if _housekeeping(comment, post, own_words):
        return "housekeeping"
    if abusive(comment.text):
        return "abusive"
    if answering and own_words <= THANKS_MAX_WORDS and _THANKS.match(untagged(comment.text)):
        return "thanks"
    return None


def abusive(text: str) -> bool:
    """An insult aimed at a person, shouting, or repeated punctuation."""
    return bool(_INSULT.search(text)) or shouting(text) or len(_REPEATED.findall(text)) >= 2


def shouting(text: str) -> bool:
    """Most of its letters capitals (enough letters to tell)."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= SHOUT_MIN_LETTERS and sum(c.isupper() for c in letters) >= SHOUT_SHARE * len(letters)


def _housekeeping(comment: Comment, post: Post, own_words: int) -> bool:
    owner = comment.author.strip().lower()
    by_owner = owner not in ANONYMOUS and owner == post.author.strip().lower()
    return by_owner and own_words <= HOUSEKEEPING_MAX_WORDS and bool(_HOUSEKEEPING.search(comment.text))
