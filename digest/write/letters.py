"""The short mails one subscriber gets outside an edition (the confirmation, the welcome),
and later the editor's notices: the edition's look (templates/mail/), written once per
mail. In: a letter's name and what it says. Out: a models.Letter (a subject, an inlined
HTML part and a text part)."""

from __future__ import annotations

from typing import Any

from ..config import WriteSettings
from ..models import Letter
from .preheader import PADDING
from .render import doctype, environment, inliner, template, tidy


class Letters:
    """Templates and premailer, set up once for the letters of a process."""

    def __init__(self, settings: WriteSettings) -> None:
        self.settings = settings
        self.env = environment(settings.templates)
        self.premailer = inliner()

    def write(self, name: str, list_name: str, subject: str, preheader: str, **values: Any) -> Letter:
        """templates/mail/<name>.html and .txt with values (escaped in the HTML), about list_name."""
        context = {"subject": subject, "preheader": preheader, "preheader_padding": PADDING,
                   "site_title": self.settings.site_title, **values}
        html = template(self.env, f"mail/{name}.html", self.settings.templates_setting).render(context)
        text = template(self.env, f"mail/{name}.txt", self.settings.templates_setting).render(context)
        return Letter(list_name, subject, doctype(self.premailer.transform(html=html, pretty_print=False)), tidy(text))
