"""Feed HTML is written by strangers: keep an allow-list of markup, and plain text.

`clean_html` is the only way feed HTML enters the database; `to_text` gives the words
the summariser measures and the plain-text email shows.
"""

from __future__ import annotations

import html
import re

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "del", "em", "h2", "h3", "h4",
    "i", "li", "ol", "p", "pre", "q", "s", "strike", "strong", "sub", "sup", "u", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "q": {"cite"}}
URL_SCHEMES = {"http", "https", "mailto"}

_BREAK = re.compile(r"<br\s*/?>|</(?:p|li|blockquote|h[2-4]|pre)>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


MAX_TAGS = 5000         # a comment with more markup than this is kept as its text only


def _absolute_only(tag: str, attribute: str, value: str) -> str | None:
    """A link that works from a mailbox: absolute http(s) or mailto, else dropped."""
    if attribute == "href" and not value.lower().startswith(("http://", "https://", "mailto:")):
        return None
    return value


def clean_html(markup: str, absolute_links: bool = False) -> str:
    """Sanitise untrusted HTML: allowed tags only, safe links, no scripts or styles.
    Markup with more than MAX_TAGS tags (nested 40,000 deep, the sanitiser takes
    seconds, growing with the square of the depth) is kept as escaped text instead."""
    if not markup:
        return ""
    if markup.count("<") > MAX_TAGS:
        text = " ".join(html.unescape(_TAG.sub(" ", markup)).split())
        return f"<p>{html.escape(text)}</p>"
    return nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
        attribute_filter=_absolute_only if absolute_links else None,
    )


def to_text(clean: str) -> str:
    """Plain text of sanitised HTML: paragraphs kept as blank-line breaks, entities decoded."""
    text = _TAG.sub("", _BREAK.sub("\n", clean))
    text = html.unescape(text).replace("\u00a0", " ")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def plain_text(value: str) -> str:
    """A title or an author name: no markup at all, entities decoded, one line."""
    return " ".join(html.unescape(_TAG.sub("", value or "")).split())
