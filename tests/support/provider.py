"""A mail provider as an editor with no server has one (Gmail, Fastmail): one SMTP server on
loopback that is both its submission port (STARTTLS and a login, as digest's relay) and its
MX, and a real IMAP mailbox (dovecot, tests/support/imap_server.py) behind it.

Mail for the mailbox's address, plus addresses included (LOCAL+anything@DOMAIN), is
delivered into the IMAP mailbox the way a receiving server delivers it: a Return-Path with
the envelope sender, a Delivered-To with the address it came to, and an
Authentication-Results that says what the provider checked (SPF passes for an envelope
sender whose domain sends through an authorised server: `senders`; DKIM passes when the
From's domain is such a domain and the mail came from it). Mail for anyone else (readers,
the editor, the blog's post-by-email address) lands in their inbox here, to be read by the
test. `plus_addresses=False` is a provider that refuses plus addresses (550, as some do)."""

from __future__ import annotations

import itertools
import smtplib
import ssl
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parseaddr
from typing import Any

from aiosmtpd.controller import Controller

from .imap_server import ImapServer
from .smtp_server import Logins, free_port, server_tls

SERVER = "mx.provider.test"


class Provider:
    def __init__(self, imap: ImapServer, address: str, senders: set[str], plus_addresses: bool = True) -> None:
        self.imap, self.address, self.senders, self.plus = imap, address.lower(), senders, plus_addresses
        self.inboxes: dict[str, list[bytes]] = defaultdict(list)
        self.delivered: list[tuple[str, bytes]] = []       # (address it came to, the message as delivered)
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)

    # ------------------------------------------------------------------ aiosmtpd's handler
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802, ANN001, ANN201
        if self._ours(address) and "+" in address.partition("@")[0] and not self.plus:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        for address in envelope.rcpt_tos:
            self._deliver(address, envelope.mail_from or "", envelope.content)
        return "250 Message accepted for delivery"

    # ------------------------------------------------------------------ what it does with a message
    def _ours(self, address: str) -> bool:
        local, _, domain = address.lower().rpartition("@")
        own_local, _, own_domain = self.address.rpartition("@")
        return domain == own_domain and local.partition("+")[0] == own_local

    def _deliver(self, address: str, mail_from: str, raw: bytes) -> None:
        if not self._ours(address):
            with self.lock:
                self.inboxes[address.lower()].append(raw)
            return
        stamped = self._stamp(address, mail_from, raw)
        with self.lock:
            self.delivered.append((address, stamped))
            number = next(self.numbers)
        self.imap.deliver(stamped, f"{number:06d}.provider")

    def _stamp(self, address: str, mail_from: str, raw: bytes) -> bytes:
        envelope_domain = mail_from.rpartition("@")[2].lower()
        author = parseaddr(_header(raw, b"From"))[1].lower().rpartition("@")[2]
        spf = "pass" if envelope_domain in self.senders else "fail" if envelope_domain else "none"
        dkim = "pass" if author in self.senders and author == envelope_domain else "none"
        results = (f"Authentication-Results: {SERVER};\r\n dkim={dkim} header.d={author or 'unknown'};\r\n"
                   f" spf={spf} smtp.mailfrom={mail_from or '<>'}\r\n")
        head = f"Return-Path: <{mail_from}>\r\nDelivered-To: {address}\r\n{results}"
        return head.encode() + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    # ------------------------------------------------------------------ for the test
    def inbox(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message_from_bytes(raw, policy=default) for raw in self.inboxes[address.lower()]]


def _header(raw: bytes, name: bytes) -> str:
    for line in raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].decode("utf-8", "replace").strip()
    return ""


@dataclass
class Running:
    provider: Provider
    controller: Controller
    port: int
    user: str
    password: str
    logins: Logins = field(repr=False)

    def send(self, message: EmailMessage, mail_from: str | None = None) -> None:
        """A message from someone else's provider arriving at this one's MX (no login: an MX
        takes mail for its own users from anyone)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.starttls(context=_trusting())
            sender = mail_from if mail_from is not None else parseaddr(str(message["From"]))[1]
            client.send_message(message, from_addr=sender)

    def stop(self) -> None:
        self.controller.stop()


def _trusting() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE      # the test's own server
    return context


def start(imap: ImapServer, address: str, senders: set[str], plus_addresses: bool = True,
          user: str = "pickoftheweek", password: str = "an app password for digest") -> Running:
    """The provider on a free loopback port, with STARTTLS (the IMAP server's certificate) and
    one login (digest's, with its app password) that submission needs; delivery to its own
    users needs none."""
    provider = Provider(imap, address, senders, plus_addresses)
    logins = Logins(user, password)
    options: dict[str, Any] = {"tls_context": server_tls(imap.pki), "require_starttls": True,
                               "auth_required": False, "auth_require_tls": True, "authenticator": logins}
    port = free_port()
    controller = Controller(provider, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return Running(provider, controller, port, user, password, logins)
