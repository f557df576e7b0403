"""Pasted text: how much of a comment is somebody else's words.

Commenters paste press articles, government statements and other comments into a thread
to discuss them. That is context, not a contribution: its words are not the commenter's
own, and a comment that is mostly a paste is never the comment of the week. Read from
the text alone, paragraph by paragraph:

- quotation: a paragraph inside quotation marks, or inside a quotation opened in an
  earlier paragraph and not yet closed (an article pasted between quote marks);
- reporting: a paragraph in the style of a news report: a dateline ("LONDON, 5 November
  (Reuters) -"), or an attribution ("said", "according to", "in a statement") next to a
  quotation, written without "I" or "we";
- a source line ("Source: ...", "Read more at ...", a bare link) at the end, which
  makes the paragraphs before it that have no "I" or "we" in them the article it names.

Passages repeated from the post or from earlier comments are counted by words.Context.
"""

from __future__ import annotations

import re

from .words import words

PASTE_SHARE = 0.5          # a comment whose pasted words are at least this share is a paste
MIN_WORDS = 25             # shorter comments are not judged: a one-line quote and a reply is a reply

_OPEN = "\"“«„"
LONG_QUOTE = 8             # words in quotation marks from this many on are a quotation, not a phrase
ATTRIBUTED_QUOTE = 5       # a quotation this long with "said", "according to": a report (with two of them)
_SPAN = re.compile(r'"[^"\n]+"|“[^“”\n]+”|«[^«»\n]+»|„[^„“”\n]+[“”]')      # a body stops at the next opening
                                                                          # mark: linear on "“““…" (no closing)
_ATTRIBUTION = re.compile(r"\b(?:said|says|told|added|according to|in a statement|commented|announced|"
                          r"reported|spokes(?:man|woman|person)|a statement)\b", re.IGNORECASE)
_DATELINE = re.compile(r"\A\s*[A-Z][A-Z .'-]{1,30},?\s+(?:(?:\d{1,2}\s+[A-Z][a-z]+|[A-Z][a-z]+\s+\d{1,2})"
                       r"(?:,?\s+\d{4})?\s*(?:\([^)]{1,30}\))?|\([^)]{1,30}\))\s*[-–—:]")    # LONDON, 3 May (AP) -
_SOURCE = re.compile(r"\A\s*(?:(?:source|read more at|full (?:article|story) at|copyright)\s*:?\s*[^\n]{2,100}"
                     r"|©[^\n]{2,100}|\(c\)[^\n]{2,100})\s*\Z", re.IGNORECASE)     # short, and names the source
_QUOTE_ANY = re.compile(r'"[^"\n]+"|“[^“”\n]+”|‘[^‘\n]+’(?!\w)|«[^«»\n]+»')    # also UK press style ‘…’
_LINK = re.compile(r"\A\s*(?:https?://|www\.)\S+\s*\Z", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|I'd|me|my|mine|we|we're|our|us)\b")


def pasted_words(text: str) -> int:
    """How many words of text are pasted (quotation, reporting, an article with its source)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    flags = _quoted(paragraphs)
    reports = [_reporting(p) for p in paragraphs]
    if sum(reports) < 2 and not any(_DATELINE.match(p) for p in paragraphs):
        reports = [False] * len(paragraphs)        # one attributed quote in a comment is a remark about it
    reported = [quoted or report for quoted, report in zip(flags, reports, strict=True)]
    sourced = bool(paragraphs) and (bool(_SOURCE.match(paragraphs[-1]))           # a link alone names a source
                                    or (bool(_LINK.match(paragraphs[-1])) and any(reported[:-1])))  # of a report
    total = 0
    for paragraph, pasted in zip(paragraphs, reported, strict=True):
        if pasted or (sourced and not _FIRST_PERSON.search(_QUOTE_ANY.sub(" ", paragraph))):
            total += len(words(paragraph))
        else:
            total += sum(n for n in (len(words(span)) for span in _SPAN.findall(paragraph)) if n >= LONG_QUOTE)
    return total


def is_paste(total: int, own: int) -> bool:
    """A comment of `total` words of which `own` are its own is mostly a paste."""
    return total >= MIN_WORDS and own < (1 - PASTE_SHARE) * total


def is_quotation(paragraph: str) -> bool:
    """The paragraph is one quotation, from its first character to its last."""
    return _SPAN.fullmatch(paragraph.strip().rstrip(" .…")) is not None


def _quoted(paragraphs: list[str]) -> list[bool]:
    """For each paragraph: wholly inside quotation marks (it opens a quotation it leaves
    open, or an earlier paragraph did and none has closed it yet)."""
    flags, inside = [], False
    for paragraph in paragraphs:
        if inside:
            flags.append(True)
            inside = not _closes(paragraph)
        else:
            inside = paragraph[:1] in _OPEN and _left_open(paragraph)
            flags.append(inside or is_quotation(paragraph))
    return flags


def _left_open(paragraph: str) -> bool:
    """A paragraph that opens with a quotation mark leaves it open."""
    curly = paragraph.count("“") + paragraph.count("«") - paragraph.count("”") - paragraph.count("»")
    return curly > 0 or paragraph.count('"') % 2 == 1


def _closes(paragraph: str) -> bool:
    """A paragraph inside an open quotation closes it."""
    curly = paragraph.count("”") + paragraph.count("»") - paragraph.count("“") - paragraph.count("«")
    return curly > 0 or paragraph.count('"') % 2 == 1


def _reporting(paragraph: str) -> bool:
    """A paragraph in the style of a news report, not written in the first person."""
    if _FIRST_PERSON.search(_QUOTE_ANY.sub(" ", paragraph)):       # "I", "we" outside the quotation marks
        return False
    if _DATELINE.match(paragraph):
        return True
    quoted = sum(len(words(span)) for span in _QUOTE_ANY.findall(paragraph))
    return quoted >= ATTRIBUTED_QUOTE and bool(_ATTRIBUTION.search(paragraph))
