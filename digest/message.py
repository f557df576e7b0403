"""One subscriber's copy of an edition: values, headers, and the MIME message."""

from __future__ import annotations

import binascii
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import lru_cache

from .config import Settings
from .errors import ConfigError
from .models import Edition
from .signing import unsubscribe_token


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


def wire(edition: Edition, origin: Address, to: Recipient, now: datetime) -> tuple[bytes, str]:
    """The message as bytes and its Message-ID: multipart/alternative, the text part
    first and the HTML last (the preferred one), both quoted-printable UTF-8.

    Built by hand rather than with EmailMessage: the email package's encoders cost
    milliseconds a message; binascii's quoted-printable is C."""
    html, text = edition.personalise(to.values)
    message_id = make_msgid(domain=origin.domain)
    boundary = f"=_digest_{uuid.uuid4().hex}"
    headers = {
        "From": _address(origin.display_name, origin.addr_spec),
        "To": _address(to.name, to.email),
        "Subject": _subject(edition.subject),
        "Date": format_datetime(now),
        "Message-ID": message_id,
        "List-Id": list_id(edition.list_name, origin),
        **to.headers,
        "MIME-Version": "1.0",
        "Content-Type": f'multipart/alternative; boundary="{boundary}"',
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    parts = [_part("plain", text), _part("html", html)]
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part for part in parts)
    return head.encode("ascii") + b"\r\n" + body + b"--" + boundary.encode() + b"--\r\n", message_id


def _part(subtype: str, content: str) -> bytes:
    encoded = binascii.b2a_qp(content.encode("utf-8"), istext=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")
    return head + encoded + b"\r\n"


def _address(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8") if name else address


@lru_cache(maxsize=64)
def _subject(subject: str) -> str:
    return Header(subject, "utf-8", maxlinelen=998).encode() if not subject.isascii() else subject
