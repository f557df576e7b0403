"""What a person's reply says: the words of its own text, not of the mail it quotes.

A reply to the review mail (approve by reply) is read here: its text part (or, in an
HTML-only reply, its HTML sanitised and turned into text), decoded by the email package
(quoted-printable, base64, its charset), then cut to its own lines: quoted lines (`>`),
an attribution ("On ... wrote:") and the unmarked quote below it, a forwarded or
"Original Message" block and a signature (after "-- ") are not the person's words. The
first line of what is left decides (`Reply.word`: its first word, lower-case), and only
when it is that word alone (`Reply.doubt` empty): trailing `.` or `!` and "please" or
"thanks" may follow it; a `?`, an ellipsis, a word of doubt ("not", "wait", "but" ...) or
any other word on it is a doubt, and so is a `?` or a word of doubt on the lines right
below it ("ok" then "wait, not yet": a line cut in two) before a blank line; a sign-off
("Thanks, J") is none. A doubtful line decides nothing. A line starting `note:` starts a
note (the rest of that line and the lines after it, until a blank line or the quote), and
when the note comes first the line after it decides. Everything is bounded (parts walked,
characters read, tags sanitised), and no part a stranger built makes the email package
raise out of here. No database.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from functools import partial
from typing import TypeVar

import nh3

from ..sanitize import MAX_TAGS

MAX_PARTS = 50                  # MIME parts of a reply looked at
MAX_CHARS = 20_000              # characters of its text read
MAX_HTML = 200_000              # characters of an HTML-only reply sanitised
MAX_LINE = 200                  # characters of the deciding line kept (to tell the editor what was read)
ATTRIBUTION_LINES = 3           # an attribution may be wrapped over this many lines
PARAGRAPH_LINES = 10            # lines below the deciding one looked at for a doubt (to the first blank line)
HTML_LINES = {"br", "p", "div", "li", "tr", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
CUT = "_" * 20                  # where an HTML reply's <hr> was: what follows is not the person's

_WORD = re.compile(r"[^\W_]+")
_DECORATION = "*_\"'“”‘’„«» \t"                 # emphasis and quotes around the word: "**OK**", "'approve'"
_EMPHASIS = re.compile(r"[*_\"“”„«»]")         # wherever they are: '**OK**, thanks', '"Approve", thank you!'
_POLITE = r"(?:please|pls|thanks|thank\s+you|thx)"
_ALONE = re.compile(rf"[^\W_]+(?:\s*[,.!\-–—]?\s*{_POLITE})?\s*(?:\.|!+)?\s*", re.IGNORECASE)
_DOUBT = re.compile(r"\b(not|no|don'?t|do\s+not|never|wait|hold|stop|but|until|unless|before|after|first|later"
                    r"|yet)\b|n't\b", re.IGNORECASE)
_NOTE = re.compile(r"^\s*note\s*:\s?(.*)$", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"(wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu|skrev|napisał(?:\(a\))?"
                              r"|kirjoitti)\s*:\s*$", re.IGNORECASE)
_HARD_CUT = re.compile(r"^\s*(-{2,}\s*(original message|forwarded message|message d'origine|ursprüngliche "
                       r"nachricht|mensaje original)\s*-{2,}|_{10,}|-{10,}|(sent from my|get outlook for)\b.*)\s*$",
                       re.IGNORECASE)
_HEADER_BLOCK = re.compile(r"^\s*(from|de|von)\s*:\s*\S", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*(sent|date|to|subject|envoyé|gesendet|datum|an|à|objet|betreff)\s*:", re.IGNORECASE)
_TAG = re.compile(r"(<[^>]*>)")
_TAG_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z0-9]+)")


T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    word: str                   # the first word of the deciding line, lower-case ("" when there is none)
    line: str                   # that line, at most MAX_LINE characters
    note: str | None            # the note's text when a `note:` line is there ("" when it was left empty)
    doubt: str = ""             # why the line is not the word alone ("a question mark", ...); "": it is


def read(message: EmailMessage) -> Reply:
    """What the message says in its own words (see the module's docstring)."""
    return words(own_lines(body_text(message)))


# ------------------------------------------------------------------ the text of a message

def body_text(message: EmailMessage) -> str:
    """The text of the reply's first text/plain part (not an attachment, nor inside a
    forwarded message), else its first text/html part as text; at most MAX_CHARS."""
    plain = html_part = None
    for part in _parts(message):
        kind = _safely(part.get_content_type, "")
        if kind == "text/plain" and plain is None:
            plain = _content(part, MAX_CHARS)
            if plain.strip():
                return plain
        elif kind == "text/html" and html_part is None:
            html_part = _content(part, MAX_HTML)
    return html_text(html_part)[:MAX_CHARS] if html_part else (plain or "")


def _parts(message: Message) -> Iterator[Message]:
    """At most MAX_PARTS parts, depth first, not into attached messages or attachments."""
    stack, seen = [message], 0
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        if _safely(part.is_multipart, True):
            if _safely(part.get_content_maintype, "") == "multipart":
                children = _safely(part.get_payload, None)
                if isinstance(children, list):
                    stack.extend(child for child in reversed(children[:MAX_PARTS]) if isinstance(child, Message))
            continue
        if _safely(partial(_disposition, part), "unreadable") == "inline":
            yield part                  # a disposition the email package cannot read: taken for an attachment


def _disposition(part: Message) -> str:
    return part.get_content_disposition() or "inline"


def _safely(call: Callable[[], T], otherwise: T) -> T:
    """What the email package says of a stranger's part, or otherwise when it raises on it
    (a Content-Disposition of `a;\\x00*` raises IndexError in Python's own parser)."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - whatever a stranger's header makes the email package raise
        return otherwise


def _content(part: Message, limit: int) -> str:
    """The part decoded (quoted-printable, base64, its charset), whatever a stranger put in it."""
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except Exception:  # noqa: BLE001 - an unknown charset, a broken encoding: read the bytes as UTF-8
        content = None
    if not isinstance(content, str):
        try:
            raw = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a stranger's part the email package cannot decode: no words
            raw = b""
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content[:limit]


def html_text(markup: str) -> str:
    """An HTML reply's own text: sanitised (no scripts, styles or attributes), line
    breaks where blocks end, each blockquote (the quoted mail) one `>` line, an <hr> a cut."""
    markup = markup[:MAX_HTML]
    if markup.count("<") > MAX_TAGS:                    # markup a sanitiser would take seconds over: its text only
        return html.unescape(_TAG.sub("\n", markup))
    cleaned = nh3.clean(markup, tags={*HTML_LINES, "blockquote", "hr"}, attributes={}, strip_comments=True)
    out, depth = [], 0
    for piece in _TAG.split(cleaned):
        tag = _TAG_NAME.match(piece) if piece.startswith("<") else None
        if tag is None:
            if depth == 0 and not piece.startswith("<"):
                out.append(html.unescape(piece).replace("\u00a0", " "))
            continue
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        if name == "blockquote":
            depth = max(0, depth - 1) if closing else depth + 1
            if depth == (0 if closing else 1):
                out.append("\n" if closing else "\n> \n")
        elif name == "hr" and depth == 0:
            out.append(f"\n{CUT}\n")
        elif name in HTML_LINES and depth == 0:
            out.append("\n")
    return "".join(out)


# ------------------------------------------------------------------ the person's own lines

def own_lines(text: str) -> list[str | None]:
    """The lines the person wrote, in order; None where a quote was (a note ends there).
    Quoted lines and attributions are left out; a signature, a forwarded or original
    message, or an unmarked quote below an attribution ends the text."""
    lines = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str | None] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip() in ("--", "-- ") or _HARD_CUT.match(line) or _headers_follow(lines, index):
            break
        if line.lstrip().startswith(">"):
            if not out or out[-1] is not None:
                out.append(None)
            index += 1
            continue
        span = _attribution(lines, index)
        if span:
            after = next((later for later in lines[index + span:] if later.strip()), "")
            if not after.lstrip().startswith(">"):
                break                                   # the quote below is not marked: all of it is quoted
            index += span
            continue
        out.append(line.rstrip())
        index += 1
    return out


def _attribution(lines: list[str], index: int) -> int:
    """How many lines from index make an attribution ("On ..., X <x@y> wrote:"), or 0."""
    if not lines[index].strip():
        return 0
    joined = ""
    for span in range(1, ATTRIBUTION_LINES + 1):
        if index + span > len(lines) or (span > 1 and not lines[index + span - 1].strip()):
            return 0
        joined = f"{joined} {lines[index + span - 1].strip()}"
        if _ATTRIBUTION_END.search(joined):
            return span
    return 0


def _headers_follow(lines: list[str], index: int) -> bool:
    """An Outlook quote: "From: ..." and, on the next lines, "Sent:" or "Date:"."""
    if not _HEADER_BLOCK.match(lines[index]):
        return False
    return any(_HEADER_NEXT.match(later) for later in lines[index + 1:index + 3])


# ------------------------------------------------------------------ the words

def words(lines: list[str | None]) -> Reply:
    """The deciding line's first word and the note, from the person's own lines."""
    note, note_at, note_end = _note(lines)
    first = _first_line(lines, 0)
    if first is not None and first == note_at:
        first = _first_line(lines, note_end)
    line = (lines[first] or "").strip() if first is not None else ""
    word = _WORD.match(line.lstrip(_DECORATION))                 # "Approve.", "**OK**", "yes, send it"
    said = (doubt(line) or _doubt_below(lines, first)) if word and first is not None else ""
    return Reply(word.group(0).casefold() if word else "", line[:MAX_LINE], note, said)


def doubt(line: str) -> str:
    """Why the deciding line is not its first word alone, in words; "" when it is (with
    trailing `.` or `!`, and "please" or "thanks" after it: "Yes please", "ok.", "send!")."""
    bare = _EMPHASIS.sub("", line[:MAX_CHARS]).replace("’", "'").strip(_DECORATION)
    if _ALONE.fullmatch(bare):
        return ""
    if "?" in bare:
        return "a question mark"
    if ".." in bare or "…" in bare:
        return "an ellipsis"
    if bare.endswith(","):
        return "a comma, as if more were to follow"
    found = _DOUBT.search(bare)
    if found:
        return f"“{' '.join(found.group(0).split()).lower()}”"
    return "other words"


def _doubt_below(lines: list[str | None], first: int) -> str:
    """A `?` or a word of doubt on the lines right below the deciding one, before a blank
    line, the quote or a note ("ok" then "wait, not yet"); a sign-off ("Thanks, J") is none."""
    for later in lines[first + 1:first + 1 + PARAGRAPH_LINES]:
        if not later or _NOTE.match(later):
            return ""
        if "?" in later:
            return "a question mark on the line below"
        found = _DOUBT.search(later[:MAX_LINE * 5].replace("’", "'"))
        if found:
            return f"“{' '.join(found.group(0).split()).lower()}” on the line below"
    return ""


def _first_line(lines: list[str | None], start: int) -> int | None:
    return next((n for n in range(start, len(lines)) if lines[n]), None)


def _note(lines: list[str | None]) -> tuple[str | None, int | None, int]:
    """(the note, the index of its line, the index after its last line), or (None, None, 0)."""
    for index, line in enumerate(lines):
        found = _NOTE.match(line) if line else None
        if found is None:
            continue
        parts, end = [found.group(1).strip()], index + 1
        while end < len(lines) and lines[end]:
            parts.append(lines[end] or "")
            end += 1
        return "\n".join(part for part in parts if part).strip(), index, end
    return None, None, 0
