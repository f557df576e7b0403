"""One-line text from strangers: a subscriber's name (the subscribe form, list files,
the CLI) and settings that end up in a header. One line, no control characters or bidi
overrides, a sane length."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 200
_SPACE = re.compile(r"\s+")
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")   # can make text read backwards


def unsafe_characters(text: str) -> list[str]:
    """Control characters and line or paragraph separators in text (by code point)."""
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI]


def clean_name(text: str) -> str:
    """The name with control characters and bidi overrides taken out and whitespace
    folded to single spaces, cut at MAX_NAME characters: safe in a header and a greeting.
    (Joiners such as U+200C stay: some scripts need them.)"""
    if text.isprintable() and len(text) <= MAX_NAME and "  " not in text and text == text.strip():
        return text                     # nothing to take out (the usual name): no pass per character
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text if c not in _BIDI)
    return _SPACE.sub(" ", kept).strip()[:MAX_NAME]


def name_problem(text: str) -> str | None:
    """Why a name from a list file cannot be taken as it is, or None."""
    bad = unsafe_characters(text)
    if bad:
        kind = "a line break" if any(c in text for c in "\r\n\u2028\u2029\x85") else "a control character"
        return f"the name holds {kind} ({', '.join(sorted(set(bad))[:3])})"
    if len(text) > MAX_NAME:
        return f"the name is {len(text)} characters long (at most {MAX_NAME})"
    return None


def one_line(text: str, what: str) -> str:
    """A setting that ends up in a header (site title, base URL, sender): refused with
    a reason when it holds a line break or control character."""
    bad = unsafe_characters(text)
    if bad:
        raise ValueError(f"{what} must be one line without control characters (found {', '.join(bad[:3])})")
    return text
