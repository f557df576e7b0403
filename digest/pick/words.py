"""How many words of a comment are its own.

Quoted passages (of the post or of earlier comments), quoted date lines
("Anonymous 16 December 2016 at 11:55"), URLs and a closing signature do not count:
a comment that mostly repeats others is not long for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SHINGLE = 8  # a run of this many words found earlier counts as quoted

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DATE_LINE = re.compile(
    rf"^[^\n]{{0,40}}?\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}(?:\s+at)?\s+\d{{1,2}}[:.]\d{{2}}\s*$",
    re.IGNORECASE | re.MULTILINE)
_QUOTE_LINE = re.compile(r"^\s*>.*$", re.MULTILINE)
_WORD = re.compile(r"\w[\w'’-]*")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def strip_noise(text: str) -> str:
    """The text without URLs, quoted date lines, '>' quotes and a closing signature."""
    text = _QUOTE_LINE.sub("", _DATE_LINE.sub("", _URL.sub(" ", text)))
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    if len(paragraphs) > 1 and _is_signature(paragraphs[-1]):
        paragraphs.pop()
    return "\n\n".join(paragraphs)


def _is_signature(paragraph: str) -> bool:
    """A last paragraph of at most three words, not a sentence: "'Getafix", "- Jo"."""
    return len(paragraph.split()) <= 3 and not paragraph.rstrip().endswith((".", "!", "?", ")"))


def is_link_only(text: str) -> bool:
    """Little more than a URL: a link and at most three words around it."""
    return bool(_URL.search(text)) and len(words(_URL.sub(" ", text))) <= 3


class Context:
    """What has been said before in a discussion: runs of words a comment may quote."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.seen: set[tuple[str, ...]] = set()
        for text in texts:
            self.add(words(text))

    def add(self, tokens: list[str]) -> None:
        self.seen.update(tuple(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1))

    def own_words(self, text: str) -> int:
        """Words of text not inside a run already said; then remember text."""
        tokens = words(strip_noise(text))
        quoted = [False] * len(tokens)
        for i in range(len(tokens) - SHINGLE + 1):
            if tuple(tokens[i:i + SHINGLE]) in self.seen:
                quoted[i:i + SHINGLE] = [True] * SHINGLE
        self.add(words(text))
        return quoted.count(False)
