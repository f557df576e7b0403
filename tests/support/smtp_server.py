"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can
kill a client process at a chosen point of the conversation, answer "try again later",
hang up, require STARTTLS and a login, or speak TLS from the start (with a CA and
certificate made for the test)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DROP = "DROP"       # a hook's answer that hangs up instead of answering


@dataclass(frozen=True)
class Received:
    """One accepted message's envelope and the session it came in."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    smtputf8: bool
    tls: bool
    login: str | None       # who logged in; None when nobody did
    connection: int         # which connection (1, 2, ...) carried it


class Recorder:
    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.rcpt_count = 0
        self.lock = threading.Lock()
        self.on_rcpt: Callable[[int], str | None] = lambda n: None   # returns an SMTP answer to refuse
        self.on_data: Callable[[int], str | None] = lambda n: None
        self.on_mail: Callable[[int], str | None] = lambda n: None    # n-th MAIL FROM overall
        # ("RCPT" | "DATA", the recipient) -> an answer instead of accepting, or DROP
        self.on_address: Callable[[str, str], str | None] = lambda command, address: None
        self.hang_up_after = 0        # close each connection after it carried this many messages
        self.delay = 0.0
        self.mail_count = 0
        self.connections = 0          # connections that said MAIL FROM at least once
        self.asked: Counter[tuple[str, str]] = Counter()    # (RCPT | DATA, recipient): times asked
        self.received: list[Received] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        with self.lock:
            self.mail_count += 1
            number = self.mail_count
            if not getattr(session, "digest_connection", 0):
                self.connections += 1
                session.digest_connection = self.connections
        answer = self.on_mail(number)
        if answer:
            return await _answer(server, answer)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            self.rcpt_count += 1
            number = self.rcpt_count
            self.asked["RCPT", address] += 1
        answer = self.on_rcpt(number) or self.on_address("RCPT", address)
        if answer:
            return await _answer(server, answer)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            for address in envelope.rcpt_tos:
                self.asked["DATA", address] += 1
        answer = self.on_data(len(self.raw) + 1) or self.on_address("DATA", envelope.rcpt_tos[0])
        if answer:
            return await _answer(server, answer)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.raw.append(envelope.content)
            self.received.append(Received(
                envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options), envelope.smtp_utf8,
                server.transport.get_extra_info("ssl_object") is not None,
                session.auth_data if session.authenticated else None,
                getattr(session, "digest_connection", 0)))
        session.digest_messages = getattr(session, "digest_messages", 0) + 1
        if self.hang_up_after and session.digest_messages >= self.hang_up_after:
            # after the 250 below is written (nothing else runs before this task waits for the next command)
            server.loop.call_soon(server.transport.close)
        return "250 Message accepted for delivery"

    def envelope_recipients(self) -> list[str]:
        return [address for received in self.received for address in received.rcpt_tos]

    @property
    def messages(self) -> list[Message]:
        """What was accepted, parsed (on demand: parsing while receiving slows the server)."""
        return [message_from_bytes(raw, policy=default) for raw in list(self.raw)]

    def recipients(self) -> list[str]:
        return [str(m["To"].addresses[0].addr_spec) for m in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _answer(server: Any, answer: str) -> str:
    if answer != DROP:
        return answer
    server.transport.close()              # hang up; aiosmtpd then cancels this handler
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def start(**options: Any) -> tuple[Controller, Recorder]:
    """A server on a free loopback port; `options` go to aiosmtpd (ssl_context= for
    implicit TLS; tls_context=, require_starttls=, auth_required=, authenticator=,
    enable_SMTPUTF8=, ...)."""
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller, recorder


class Logins:
    """An aiosmtpd authenticator that knows one user and counts the mechanisms used."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.mechanisms: Counter[str] = Counter()
        self.failed = 0

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.mechanisms[mechanism] += 1
        if auth_data.login.decode() == self.user and auth_data.password.decode() == self.password:
            return AuthResult(success=True, auth_data=self.user)
        self.failed += 1
        return AuthResult(success=False, handled=False)


@dataclass(frozen=True)
class Pki:
    ca: Path          # the CA's certificate (PEM): what a client trusts
    cert: Path        # the server's certificate, signed by the CA
    key: Path         # the server's private key


def make_pki(folder: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Pki:
    """A throwaway CA and a server certificate it signs for `names` (IPs or DNS names)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "digest test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pki


def server_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    return context


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
