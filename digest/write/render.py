"""Selection -> Edition: subject, HTML and text, rendered and CSS-inlined once.

Per-subscriber values are tokens with a random per-edition nonce (so no comment can
contain one), replaced in the finished strings by `personalise`: sending to one more
subscriber costs a few string replacements, not a render.
"""

from __future__ import annotations

import logging
import re
import secrets
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from premailer import Premailer

from ..config import MailingList, WriteSettings
from ..db.drafts import Draft
from ..errors import WriteError
from ..models import Edition
from ..pick.select import Selection
from ..resources import templates_dir
from ..sanitize import clean_html, to_text
from .periods import days
from .preheader import PADDING, inbox_line
from .view import Trim, build

log = logging.getLogger(__name__)

TOKEN_NAMES = ("greeting", "email", "unsubscribe_url")
PERSONAL = re.compile(r"<!--digest:personal-->.*?<!--/digest:personal-->", re.DOTALL)
HEAD = re.compile(r"<head\b.*?</head\s*>", re.DOTALL | re.IGNORECASE)
STYLE = re.compile(r"<style\b.*?</style\s*>", re.DOTALL | re.IGNORECASE)
PREHEADER = re.compile(r'<div class="preheader"[^>]*>.*?</div>', re.DOTALL)
BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.DOTALL | re.IGNORECASE)
MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
BUNDLED_TEMPLATES = templates_dir()


class TemplateError(WriteError):
    """A template is missing or broken."""


def environment(folder: Path) -> jinja2.Environment:
    """The templates of folder (the editor's), falling back on the project's own; HTML escaped."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(folder)),
                                    jinja2.FileSystemLoader(str(BUNDLED_TEMPLATES))]),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=False,
    )
    env.filters["wrap"] = _wrap
    return env


def inliner() -> Premailer:
    """premailer as every mail uses it: CSS inlined, @media rules kept, nothing fetched."""
    return Premailer(
        base_url=None, disable_link_rewrites=True, keep_style_tags=False, strip_important=False,
        remove_classes=False, allow_network=False, allow_loading_external_files=False,
        disable_validation=True, cssutils_logging_level=logging.CRITICAL, cache_css_parsing=True,
        disable_basic_attributes=["width"],  # keep width="600" for Outlook; CSS makes it fluid
    )


def template(env: jinja2.Environment, name: str, where: str) -> jinja2.Template:
    """A template by name, or TemplateError saying which and what to do."""
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {name} not found in {where}; "
                            "restore it from the project's templates/ folder") from None
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{error.filename or name} line {error.lineno}: {error.message}; "
                            "fix the template") from None


class Renderer:
    """Templates and one Premailer, set up once and reused for every edition."""

    def __init__(self, settings: WriteSettings, show_why: bool = False) -> None:
        self.settings = settings
        self.show_why = show_why
        self.env = environment(settings.templates)
        self.premailer = inliner()

    def render(self, selection: Selection, mailing_list: MailingList, trim: Trim = Trim(),
               nonce: str | None = None, voice: Draft | None = None) -> Edition:
        """The edition, with the editor's voice: their note under the greeting and their
        subject instead of subject.txt's."""
        zone = mailing_list.timezone
        nonce = nonce or secrets.token_hex(8)
        tokens = {name: f"[[digest-{nonce}:{name}]]" for name in TOKEN_NAMES}
        text_tokens = {name: f"[[digest-{nonce}:{name}:text]]" for name in TOKEN_NAMES}
        context = self._context(selection, mailing_list, trim, zone, tokens)
        voice = voice or Draft()
        context["note"] = note_parts(voice.note) if voice.note and voice.note.strip() else None
        context["note_source"] = voice.note if context["note"] else None
        context["preheader"] = inbox_line(context["star_label"], _star_text(selection),
                                          context["note"]["text"] if context["note"] else None, len(selection.posts))
        context["preheader_padding"] = PADDING
        subject = " ".join((voice.subject or self._template("subject.txt").render(context)).split())
        context["subject"] = subject
        html = self._template("email.html").render(context)
        text = self._template("email.txt").render({**context, "tokens": text_tokens})
        inlined = self.premailer.transform(html=html, pretty_print=False)
        return Edition(mailing_list.name, selection.since, selection.until, subject,
                       doctype(inlined), tidy(text), context["web_url"], tokens, text_tokens, context)

    def _template(self, name: str) -> jinja2.Template:
        return template(self.env, name, self.settings.templates_setting)

    def _context(self, selection: Selection, mailing_list: MailingList, trim: Trim, zone: ZoneInfo,
                 tokens: dict[str, str]) -> dict[str, Any]:
        site = self.settings
        label = period_label(selection.since, selection.until, zone)
        star_label = star_title(selection.since, selection.until)
        return {
            **build(selection, trim, site.site_url, zone),
            "site": {"title": site.site_title, "url": site.site_url},
            "list_name": mailing_list.name,
            "period_label": label,
            "star_label": star_label,
            "intro": _intro(selection),
            "web_url": web_url(self.settings.base_url, mailing_list, selection.since, self.settings.view_url),
            "tokens": tokens,
            "lang": "en-GB",
            "show_why": self.show_why,
        }


def web_url(base_url: str, mailing_list: MailingList, since: datetime, view_url: str = "") -> str:
    """The edition's stable public address in the archive; in mail mode with [publish].url,
    that page of the blog instead (digest's own archive is on a machine nobody can reach)."""
    if view_url:
        return view_url
    day = since.astimezone(mailing_list.timezone).date().isoformat()
    return f"{base_url}/archive/{mailing_list.name}/{day}"


def period_label(since: datetime, until: datetime, zone: ZoneInfo) -> str:
    """'25–31 October 2017' for [25 Oct, 1 Nov); until is exclusive."""
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    return days(first, last, month="%B")


def star_title(since: datetime, until: datetime) -> str:
    """The star's label, from the edition's length: of the day, week or month."""
    length = round((until - since) / timedelta(days=1))
    return {1: "Comment of the day", 7: "Comment of the week"}.get(
        length, "Comment of the month" if 28 <= length <= 31 else "Star comment")


def _star_text(selection: Selection) -> str | None:
    """The comment of the week's own text (not its thread's first comment's)."""
    if selection.star is None:
        return None
    said = (selection.star.top, *selection.star.replies)
    return next((s.comment.text for s in said if s.comment.key == selection.star_key), selection.star.top.comment.text)


def _intro(selection: Selection) -> str:
    """Short sentences: what the period brought, then what follows."""
    new = sum(p.new_comments for p in selection.posts)
    posts = sum(1 for p in selection.posts if p.section == "new")
    older = len(selection.posts) - posts
    said = [_count(n, noun) + tail for n, noun, tail in
            ((posts, "new post", ""), (older, "older post", " still being discussed"), (new, "new comment", ""))
            if n]
    if not said:
        return "A quiet time on the blog."
    listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + ("," if len(said) > 2 else "") + " and " + said[-1]
    more = " Here are the discussions most worth reading." if new else ""
    return f"This edition has {listed}.{more}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def note_parts(markdown: str) -> dict[str, Any]:
    """The editor's note: Markdown to HTML, then through the same allow-list as comments
    (a note is typed into a web form); and its plain-text version (links as "text (url)")."""
    clean = clean_html(MARKDOWN.render(markdown), absolute_links=True)   # relative links go nowhere from a mailbox
    linked = re.sub(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>',
                    lambda m: m.group(2) if m.group(2) == m.group(1) else f"{m.group(2)} ({m.group(1)})", clean)
    text = to_text(re.sub(r"</li>\s*", "</li>", linked).replace("<li>", "- "))
    return {"html": Markup(clean), "text": "\n".join(_wrap(line) for line in text.split("\n"))}


def archive_copy(edition: Edition) -> str:
    """The archive copy of a frozen edition's HTML part (see archive_html)."""
    return archive_html(edition.html, edition.tokens)


def archive_html(edition_html: str, tokens: dict[str, str]) -> str:
    """The public archive copy of a frozen edition: the personal parts (greeting, the
    link to itself, unsubscribe) cut out, and any token left filled with nothing."""
    html = PERSONAL.sub("", edition_html)
    for token in tokens.values():
        html = html.replace(token, "")
    return html


def post_copy(edition: Edition) -> tuple[str, str]:
    """(HTML, text) of a frozen edition as the blog's own post ([publish].mail_to): the
    archive copy (nothing personal; the links direct, as frozen: only the copies sent went
    through digest's click address) without the head, whose stylesheet's rules on `body` and
    `td` (the dark palette) would restyle the whole blog page, nor the hidden inbox line.
    The text part loses the lines that were for one subscriber: its footer after the last
    `--` line when that holds a token, any other line holding one, and the line that points
    at the edition on the web."""
    html = HEAD.sub("", archive_copy(edition))
    found = BODY.search(html)
    body = STYLE.sub("", PREHEADER.sub("", found.group(1) if found else html)).strip()
    page = (f"<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{escape(edition.subject)}</title>\n"
            f"</head>\n<body>\n{body}\n</body>\n</html>\n")
    return page, _post_text(edition)


def _post_text(edition: Edition) -> str:
    tokens = list(edition.text_tokens.values())
    lines = edition.text.split("\n")
    rules = [n for n, line in enumerate(lines) if line.strip() == "--"]
    if rules and any(token in "\n".join(lines[rules[-1]:]) for token in tokens):
        lines = lines[:rules[-1]]
    itself = re.compile(rf"(?<!\S){re.escape(edition.web_url)}(?!\S)") if edition.web_url else None
    return tidy("\n".join(line for line in lines if not any(token in line for token in tokens)
                          and not (itself and itself.search(line))))


def _wrap(text: str, indent: str = "", width: int = 72) -> str:
    lines = textwrap.wrap(str(text), width=width, initial_indent=indent, subsequent_indent=indent,
                          break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


def doctype(html: str) -> str:
    return html if html.lstrip().lower().startswith("<!doctype") else "<!DOCTYPE html>\n" + html


def tidy(text: str) -> str:
    """At most one blank line in a row, no trailing spaces."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
