"""One subscriber's copy of an edition: values, headers, and the MIME message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

from .config import Settings
from .errors import ConfigError
from .render import Edition
from .signing import unsubscribe_token


# No folding below 998: a long List-Unsubscribe URL must stay one plain <...> value,
# not become an encoded word that mail providers cannot read.
WIRE = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    email: str
    name: str
    values: dict[str, str]                       # greeting, email, unsubscribe_url
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)


def sender(settings: Settings) -> Address:
    name, address = parseaddr(settings.sending.from_)
    if "@" not in address:
        raise ConfigError([f"config.toml [sending].from: {settings.sending.from_!r} has no address; "
                           "use 'Name <address@example.org>'"])
    user, domain = address.rsplit("@", 1)
    return Address(name, user, domain)


def recipient(settings: Settings, key: str, list_name: str, delivery_id: int, email: str, email_key: str,
              name: str, edition_id: int | None) -> Recipient:
    url = f"{settings.web.base_url}/unsubscribe/{unsubscribe_token(key, list_name, email_key)}"
    greeting = f"Hello {name}," if name else "Hello,"
    headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    args = {"list": list_name, "subscriber": email_key}
    if edition_id is not None:
        args["edition"] = str(edition_id)
    return Recipient(delivery_id, email, name, {"greeting": greeting, "email": email, "unsubscribe_url": url},
                     headers, args)


def list_id(list_name: str, origin: Address) -> str:
    return f"<{list_name}.{origin.domain}>"


def mime(edition: Edition, origin: Address, to: Recipient, now: datetime) -> EmailMessage:
    """multipart/alternative: the text part first, the HTML last (the preferred one)."""
    html, text = edition.personalise(to.values)
    message = EmailMessage()
    message["From"] = origin
    message["To"] = Address(to.name, addr_spec=to.email) if to.name else to.email
    message["Subject"] = edition.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=origin.domain)
    message["List-Id"] = list_id(edition.list_name, origin)
    for name, value in to.headers.items():
        message[name] = value
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message
