"""Blogger's comment feeds read with the standard library's C XML parser.

Blogger writes these feeds itself, always alike, and they are most of what a fetch
reads. feedparser reads them too, at several times the cost (its handlers run in Python
for every element). This reader takes only what it can read exactly as feedparser would:
well-formed UTF-8 Atom from Blogger with no DTD, with xml:base (if any) on the feed alone
and html content. For anything else it answers None and parse.py uses feedparser, so
the two never disagree (tests/test_blogger_atom.py compares them on every kind of
comment feed the tests build, and on hostile text).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from feedparser.mixin import _cp1252  # the same code-point repair feedparser applies to text

from ..models import FeedPage

ATOM = "{http://www.w3.org/2005/Atom}"
THREAD = "{http://purl.org/syndication/thread/1.0}"
GDATA = "{http://schemas.google.com/g/2005}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
OPENSEARCH = ("{http://a9.com/-/spec/opensearchrss/1.0/}", "{http://a9.com/-/spec/opensearch/1.1/}")
HTML_TYPES = ("text/html", "application/xhtml+xml")
_DECLARATION = re.compile(rb"^<\?xml[^>]*?encoding=['\"]([A-Za-z0-9_.-]+)['\"]")
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")


class NotPlain(Exception):
    """Something feedparser would read in its own way: let it."""


def entries(content: bytes, headers: dict[str, str] | None) -> tuple[ET.Element, list[dict[str, Any]]] | None:
    """The feed element and its entries as feedparser-shaped dicts, or None."""
    if not _plain_utf8(content, headers):
        return None
    try:
        root = ET.fromstring(content)
        if root.tag != ATOM + "feed" or not _from_blogger(root):
            return None
        return root, [_entry(element, _base(root)) for element in root.iterfind(ATOM + "entry")]
    except (ET.ParseError, NotPlain, ValueError):
        return None


def page(root: ET.Element, items: list[Any | None], skipped: Counter[str],
         absolute: Callable[[str | None], str | None]) -> FeedPage:
    links = _links(root, _base(root))
    own = next((link["href"] for link in links if link["rel"] == GDATA[1:-1] + "#feed"), None) or next(
        (link["href"] for link in links if link["rel"] == "self"), None)
    feed_url = absolute(own)
    return FeedPage(comments=[c for c in items if c is not None],
                    next_url=absolute(next((link["href"] for link in links if link["rel"] == "next"), None)),
                    total=_total(root), feed_url=feed_url.split("?")[0] if feed_url else None, skipped=skipped)


def _plain_utf8(content: bytes, headers: dict[str, str] | None) -> bool:
    if b"<!DOCTYPE" in content or b"<!doctype" in content or not content.startswith(b"<?xml"):
        return False
    declared = _DECLARATION.match(content)
    charset = (headers or {}).get("content-type", "").lower().partition("charset=")[2].strip(" \"';")
    return declared is not None and declared.group(1).lower() in (b"utf-8", b"utf8") and charset in ("", "utf-8")


def _base(root: ET.Element) -> str:
    """The feed's xml:base: none, or an absolute http(s) address (else feedparser decides)."""
    base = root.get(XML_BASE, "")
    if base and not re.match(r"^https?://[^/?#\s]+", base):
        raise NotPlain
    return base


def _from_blogger(root: ET.Element) -> bool:
    generator = (root.findtext(ATOM + "generator") or "").strip().lower()
    return generator == "blogger" or (root.findtext(ATOM + "id") or "").strip().startswith("tag:blogger.com,1999:blog-")


def _entry(element: ET.Element, base: str) -> dict[str, Any]:
    if any(child.get(XML_BASE) is not None for child in element.iter()):
        raise NotPlain
    content = element.find(ATOM + "content")
    if content is None or content.get("type") != "html" or len(content):
        raise NotPlain
    author = element.find(ATOM + "author")
    links = _links(element, base)
    alternate = [link["href"] for link in links if link["rel"] == "alternate" and link["type"] in HTML_TYPES]
    reply = element.find(THREAD + "in-reply-to")
    return {
        "id": _uri(base, _text(element.find(ATOM + "id"))),
        "published": _date(element.find(ATOM + "published")),
        "updated": _date(element.find(ATOM + "updated")),
        "content": [{"value": _text(content)}],
        "links": links,
        "link": alternate[-1] if alternate else None,
        "author_detail": {} if author is None else _author(author, base),
        "thr_in-reply-to": {} if reply is None else dict(reply.attrib),
        "removed": any(p.get("name") == "blogger.contentRemoved" and p.get("value") == "true"
                       for p in element.iterfind(GDATA + "extendedProperty")),
    }


def _date(element: ET.Element | None) -> str:
    """A date as written; one ISO 8601 does not read is left to feedparser's own parsers."""
    value = _text(element)
    if value:
        datetime.fromisoformat(value)                 # ValueError: not plain
    return value


def _author(element: ET.Element, base: str) -> dict[str, str]:
    found = {}
    name, uri = element.find(ATOM + "name"), element.find(ATOM + "uri")
    if name is not None:
        found["name"] = _text(name, expecting_text=False)
    if uri is not None:
        found["href"] = _uri(base, _text(uri))
    return found


def _links(element: ET.Element, base: str) -> list[dict[str, str]]:
    found = []
    for link in element.iterfind(ATOM + "link"):
        attributes = dict(link.attrib)
        if len(link) or (link.text or "").strip() or "href" not in attributes:
            raise NotPlain                            # a link feedparser reads from its text
        rel = attributes.setdefault("rel", "alternate")
        attributes.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
        attributes["href"] = _join(base, attributes["href"])
        found.append(attributes)
    return found


def _uri(base: str, text: str) -> str:
    """An element feedparser treats as a URI (id, author uri) resolved as it does."""
    return _join(base, text) if text else text


def _join(base: str, uri: str) -> str:
    uri = _URI_FIXER.sub(r"\1\3", uri)
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


def _text(element: ET.Element | None, expecting_text: bool = True) -> str:
    """An element's text as feedparser gives it: stripped and, for the elements it reads
    as text (all but a name), a UTF-8 misread as Latin-1 repaired and Windows-1252 code
    points mapped."""
    if element is None:
        return ""
    if len(element):
        raise NotPlain                                # markup inside: feedparser serialises it
    output = (element.text or "").strip()
    if not expecting_text:
        return output
    try:
        output = output.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return output.translate(_cp1252)


def _total(root: ET.Element) -> int | None:
    for namespace in OPENSEARCH:
        value = root.findtext(namespace + "totalResults")
        if value is not None:
            try:
                number = int(value.strip())
            except ValueError:
                return None
            return number if 0 <= number < 2**31 else None
    return None
