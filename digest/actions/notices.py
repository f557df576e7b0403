"""The editor hears from digest: a notice after every run (sent, nothing to send, failed,
held for approval) to [editor] email through the configured mailer, and, optionally, the
same as JSON to [editor] webhook_url (Slack's `text`, Discord's `content`). Subscribers never
get these. A notice that cannot go is logged; it never stops a run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from ..config import MailingList, Settings
from ..errors import DigestError
from ..send.mailers import Mailer, make_mailer
from ..send.signing import secret_key
from ..write.letters import Letters
from .subscribers import list_title, mail_one

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Notice:
    kind: str                       # sent, nothing, failed, held, skipped
    list_name: str
    headline: str
    lines: list[str] = field(default_factory=list)
    command: str = ""               # what the editor can run to do it by hand (resume, approve)
    link: str = ""
    link_text: str = "Open the editor"

    def as_json(self) -> dict[str, object]:
        text = "\n".join([self.headline, *self.lines] + ([f"By hand: {self.command}"] if self.command else [])
                         + ([self.link] if self.link else []))
        return {"text": text, "content": text[:2000], "digest": {
            "kind": self.kind, "list": self.list_name, "headline": self.headline, "lines": self.lines,
            "command": self.command, "link": self.link}}


def notify(settings: Settings, listed: MailingList, notice: Notice, now: datetime,
           mailer: Mailer | None = None) -> list[str]:
    """Mail the notice to the editor and post it to the webhook; what could not be done, in
    one line each (also logged)."""
    problems = []
    if settings.editor.email:
        try:
            _mail(settings, listed, notice, now, mailer)
        except DigestError as error:
            problems.append(f"the notice to {settings.editor.email} was not sent: {error}")
    if settings.editor.webhook_url:
        problems += _post(settings.editor.webhook_url, notice)
    for problem in problems:
        log.warning("%s: %s", listed.name, problem)
    return problems


def _mail(settings: Settings, listed: MailingList, notice: Notice, now: datetime, mailer: Mailer | None) -> None:
    letter = Letters(settings.write_settings()).write(
        "notice", listed.name, f"[digest] {notice.headline}", notice.lines[0] if notice.lines else notice.headline,
        headline=notice.headline, lines=notice.lines, command=notice.command, link=notice.link,
        link_text=notice.link_text, list_title=list_title(settings, listed))
    key = secret_key(settings.send_settings())
    mail_one(settings, mailer or make_mailer(settings.send_settings()), key, listed, settings.editor.email, "",
             letter, f"notice-{notice.kind}", now, unsubscribe=False)


def _post(url: str, notice: Notice) -> list[str]:
    try:
        answer = httpx.post(url, json=notice.as_json(), timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as error:
        return [f"the notice to [editor] webhook_url was not posted ({error.__class__.__name__})"]
    if answer.status_code >= 300:
        return [f"the notice to [editor] webhook_url was refused ({answer.status_code})"]
    return []
