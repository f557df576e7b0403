"""The inbox line: the hidden text Gmail, iOS Mail and Outlook show beside the subject.

It sells the edition with one sentence a person wrote: the editor's note's first
sentence when there is a note, otherwise the comment of the week's own first sentence,
its reply tags ("@name", "@name 08:33", "Anon 12:19", "Annon@ 8:33") and the text it
quotes taken out. At most MAX characters, cut at a word. The template pads it with
invisible characters so that clients do not pull body text in after it.
"""

from __future__ import annotations

import re

from markupsafe import Markup

from ..pick.tags import untagged

MAX = 100
PADDING = Markup("&#847;&zwnj;&nbsp;" * 60)       # fills the line where clients would continue with the body

_QUOTED = re.compile(r"""\A\s*(?:>|["“‘'].*["”’']\s*\Z)""", re.DOTALL)      # a quoted paragraph, whole
_SENTENCE_END = re.compile(r"""(?<=[.!?…])["”’)\]]*\s+(?=["“‘(]?[A-Z0-9])""")


def inbox_line(star_label: str, star_text: str | None, note_text: str | None, posts: int) -> str:
    """The preheader: the note's first sentence, or the comment of the week's, labelled;
    a count of posts when there is neither."""
    if note_text and (sentence := first_sentence(note_text)):
        return clip(sentence)
    if star_text and (sentence := first_sentence(own_words(star_text))):
        return clip(f"{star_label}: {sentence}")
    return f"{posts} post{'' if posts == 1 else 's'} and their discussions"


def own_words(text: str) -> str:
    """A comment's text without the paragraphs it quotes and the reply tag it opens with."""
    kept = [p for p in re.split(r"\n\s*\n", text) if p.strip() and not _QUOTED.match(p)]
    return untagged(" ".join(" ".join(p.split()) for p in kept))


_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u034f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def visible(text: str) -> str:
    """Without controls, bidi overrides, zero-width and padding characters: a stranger's
    text cannot make the line read otherwise than it says, nor be invisible."""
    return _HIDDEN.sub("", text).replace("\u00a0", " ")


def first_sentence(text: str) -> str:
    """The first sentence, starting with a capital."""
    found = _SENTENCE_END.split(" ".join(visible(text).split()), maxsplit=1)[0].strip()
    return found[:1].upper() + found[1:]


def clip(text: str, limit: int = MAX) -> str:
    """At most `limit` characters, cut at a word with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-–—")
    if len(cut) < limit // 2:                    # one enormous word: cut inside it rather than lose the line
        cut = text[:limit - 1]
    return cut + "…"
