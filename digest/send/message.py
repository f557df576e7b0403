"""One subscriber's copy of an edition: values, headers, and the MIME message."""

from __future__ import annotations

import binascii
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

from ..config import SendSettings
from ..errors import ConfigError, SendError
from ..models import Mail, wire_address
from ..oneline import clean_name
from .mailto import UNSUBSCRIBE, mailto
from .signing import MAIL_UNSUBSCRIBE, address_token, return_path_token, unsubscribe_token


class HeaderInjection(SendError):
    """A header value holds a line break: the message is refused, never built."""


HEADER_NAME = 64         # characters of a name shown in To: (the greeting keeps it whole)


@dataclass(slots=True)      # not frozen: built per subscriber per send, and a frozen __init__ costs 4x
class Recipient:
    delivery_id: int
    email: str                                   # as it goes on the wire: the domain in punycode
    name: str                                    # cleaned: no control characters, one line
    values: dict[str, str]                       # greeting, email, unsubscribe_url
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)
    smtputf8: bool = False                       # the local part is not ASCII: needs SMTPUTF8
    envelope_from: str = ""                      # SMTP's MAIL FROM (VERP: bounces+TOKEN@); "": the From


def sender(settings: SendSettings) -> Address:
    name, address = parseaddr(settings.sending.from_)
    if "@" not in address:
        raise ConfigError([f"{Path(settings.config_file).name} [sending].from: {settings.sending.from_!r} has no "
                           "address; use 'Name <address@example.org>'"])
    user, domain = address.rsplit("@", 1)
    return Address(name, user, domain)


def recipient(settings: SendSettings, *, key: str, list_name: str, delivery_id: int, email: str, email_key: str,
              name: str = "", edition_id: int | None = None, subscriber_id: int | None = None) -> Recipient:
    """One subscriber's values and headers (delivery_id 0 and no edition_id: a single mail,
    such as a test copy or a confirmation). The name is cleaned again here (it may come
    from a database written before names were checked at input). subscriber_id is the
    subscribers row mail mode's unsubscribe address names (None: no row, as for a test
    copy; its address then names nobody)."""
    url, headers = unsubscribe_headers(settings, key, list_name, email_key, subscriber_id)
    name = clean_name(name)
    greeting = f"Hello {name}," if name else "Hello,"
    args = {"list": list_name, "subscriber": email_key}
    if edition_id is not None:
        args["edition"] = str(edition_id)
    address, smtputf8 = wire_address(email)
    return Recipient(delivery_id, address, name, {"greeting": greeting, "email": email, "unsubscribe_url": url},
                     headers, args, smtputf8, envelope_from(settings, key, delivery_id if edition_id else 0))


def unsubscribe_headers(settings: SendSettings, key: str, list_name: str, email_key: str,
                        subscriber_id: int | None) -> tuple[str, dict[str, str]]:
    """(the footer's unsubscribe address, the List-Unsubscribe headers). With [mailbox]
    address set, List-Unsubscribe carries a mailto that unsubscribes by mail; the https link
    (one-click, RFC 8058) stands beside it only where base_url is public. In mail mode the
    footer's link is the mailto, else the https link."""
    if settings.mail_mode:
        by_mail = unsubscribe_mailto(settings, key, subscriber_id or 0)
        return by_mail, {"List-Unsubscribe": f"<{by_mail}>"}
    link = f"{settings.base_url}/unsubscribe/{unsubscribe_token(key, list_name, email_key)}"
    listed = f"<{link}>, <{unsubscribe_mailto(settings, key, subscriber_id or 0)}>" if settings.mailbox.address \
        else f"<{link}>"
    return link, {"List-Unsubscribe": listed, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def unsubscribe_mailto(settings: SendSettings, key: str, subscriber_id: int) -> str:
    """mailto:LOCAL+unsubscribe-TOKEN@DOMAIN?subject=unsubscribe (or, without plus
    addressing, the token in the subject of a mail to the plain address)."""
    return mailto(settings.mailbox, UNSUBSCRIBE, address_token(key, MAIL_UNSUBSCRIBE, subscriber_id))


def envelope_from(settings: SendSettings, key: str, delivery_id: int) -> str:
    """[mailbox].return_path with the delivery's signed token (VERP) for a message of an
    edition; as it is for any other message; "" (the From) when it is not set."""
    local, _, domain = settings.mailbox.return_path.rpartition("@")
    if not local or not delivery_id:
        return settings.mailbox.return_path
    return f"{local}+{return_path_token(key, delivery_id)}@{domain}"


def list_id(list_name: str, origin: Address) -> str:
    return f"<{list_name}.{origin.domain}>"


def wire(edition: Mail, origin: Address, to: Recipient, now: datetime) -> tuple[bytes, str]:
    """The message as bytes and its Message-ID: multipart/alternative, the text part
    first and the HTML last (the preferred one), both quoted-printable UTF-8.

    Built by hand rather than with EmailMessage: the email package's encoders cost
    milliseconds a message; binascii's quoted-printable is C."""
    html, text = edition.personalise(to.values)
    message_id = make_msgid(domain=origin.domain)
    boundary = f"=_digest_{uuid.uuid4().hex}"
    try:
        head = _head(edition, origin, to, now, message_id, boundary)
    except UnicodeError as error:            # a stored address no header can carry
        raise HeaderInjection(f"refused to build a message to {to.email!r}: it cannot be written in a "
                              f"header ({error.__class__.__name__})") from None
    parts = [_part("plain", text), _part("html", html)]
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part for part in parts)
    return head + b"\r\n" + body + b"--" + boundary.encode() + b"--\r\n", message_id


def _head(edition: Mail, origin: Address, to: Recipient, now: datetime, message_id: str, boundary: str) -> bytes:
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
    head = "".join(_header(name, value) for name, value in headers.items())
    return head.encode("utf-8" if to.smtputf8 else "ascii")     # RFC 6532 headers only with SMTPUTF8


def check_headers(headers: dict[str, str]) -> None:
    """Raise HeaderInjection if any value would break its header line."""
    for name, value in headers.items():
        _header(name, value)


_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")   # control characters but tab


def _header(name: str, value: str) -> str:
    """One header line; a value with a line break (or any control character that could
    end a line) is refused, whatever built it."""
    if _LINE_BREAKING.search(value):
        raise HeaderInjection(f"refused to build a message: the {name} header would hold a line break "
                              f"or control character ({value[:60]!r})")
    return f"{name}: {value}\r\n"


def _part(subtype: str, content: str) -> bytes:
    encoded = binascii.b2a_qp(content.encode("utf-8"), istext=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")
    return head + encoded + b"\r\n"


def _address(name: str, address: str) -> str:
    """`"Name" <address>`: the name RFC 2047-encoded when not ASCII; the address as given
    (its domain already punycode; a UTF-8 local part goes out only with SMTPUTF8)."""
    if not name:
        return address
    local, _, domain = address.rpartition("@")
    name = name[:HEADER_NAME]                # a header line stays under 998 bytes, whatever the script
    if "=?" in name:                         # looks like an encoded word: encode it, so it reads as typed
        return f"{Header(name, 'utf-8', maxlinelen=998).encode()} <{address}>"
    shown = formataddr((name, f"x@{domain}"), charset="utf-8")
    return shown[: shown.rindex("<") + 1] + address + ">"


@lru_cache(maxsize=64)
def _subject(subject: str) -> str:
    return Header(subject, "utf-8", maxlinelen=998).encode() if not subject.isascii() else subject
