"""SMTP: one connection reused for many messages, reopened if the server drops it.

Replies are read the way RFC 5321 means them: 2xx done, 4xx "try again later" (the
message is deferred, never refused), 5xx final. A 421 or a lost connection before
DATA reconnects and sends the same message again (nothing went yet); a connection
lost during DATA leaves that one message of unknown outcome. TLS (implicit on 465,
STARTTLS on 587) is always verified, against [sending.smtp].ca_file or the system's
trust store, unless [sending.smtp].verify is false.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

from ...backends import Backend, Relay, register
from ...config import SendSettings
from ...models import DeliveryStatus, Mail, Outcome
from ..message import HeaderInjection, Recipient, sender, wire
from . import MailerError, MarkInFlight

log = logging.getLogger(__name__)

CONNECTIONS_PER_MESSAGE = 3     # a message that loses this many connections before DATA: the server is broken


class _Dropped(Exception):
    """The connection went away (or the server said 421) before the point of no return."""


class SmtpMailer:
    batch_size = 10         # rows a connection takes at a time: small, so that every sender finds work
    record_each = True      # each outcome committed at once: a crash leaves at most one unknown

    def __init__(self, settings: SendSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 timeout: float | None = None) -> None:
        self.settings = settings.sending.smtp
        self.timeout = timeout or self.settings.timeout
        self.origin = sender(settings)
        self.clock = clock
        self.password = os.environ.get(self.settings.password_env, "")
        if self.settings.username and not self.password:
            raise MailerError(f"{self.settings.password_env} is not set; export the SMTP password "
                              "for [sending.smtp].username")
        self.context = tls_context(settings) if self.settings.security != "none" else None
        self.connection: smtplib.SMTP | None = None

    def send(self, edition: Mail, recipients: list[Recipient], in_flight: MarkInFlight,
             folder: str) -> Iterator[Outcome]:
        for number, to in enumerate(recipients):
            try:
                outcome = self._one(edition, to, in_flight)
            except MailerError as error:
                error.unsent = [to.delivery_id, *(r.delivery_id for r in recipients[number + 1:])]
                raise
            if outcome is not None:
                yield outcome

    def _one(self, edition: Mail, to: Recipient, in_flight: MarkInFlight) -> Outcome | None:
        try:
            data, message_id = wire(edition, self.origin, to, self.clock())
        except HeaderInjection as error:
            return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=str(error))
        for attempt in range(1, CONNECTIONS_PER_MESSAGE + 1):
            connection = self._connect()
            try:
                return self._transaction(connection, to, data, message_id, in_flight)
            except _Dropped as error:
                self._drop()
                if attempt == CONNECTIONS_PER_MESSAGE:
                    raise MailerError(f"SMTP server {self._where()} keeps dropping the connection ({error}); "
                                      "check it, then run again to resume") from None
                log.info("SMTP connection lost before the message to %s (%s); reconnecting", to.email, error)
        raise AssertionError("unreachable")

    def _transaction(self, connection: smtplib.SMTP, to: Recipient, data: bytes, message_id: str,
                     in_flight: MarkInFlight) -> Outcome | None:
        """MAIL, RCPT, then (past the point of no return) DATA, on an open connection;
        None when the message is no longer this sender's to send."""
        options = []
        if to.smtputf8:
            if not connection.has_extn("smtputf8"):
                return Outcome(to.delivery_id, DeliveryStatus.REFUSED,
                               error=f"the SMTP server does not support SMTPUTF8, which {to.email} needs")
            options.append("SMTPUTF8")
        if not data.isascii() and connection.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        code, answer = _ask(connection.mail, to.envelope_from or self.origin.addr_spec, options)
        if code != 250:
            if code // 100 == 4:
                return self._later(connection, to, "MAIL FROM", code, answer)
            self._reset(connection)
            if code == 530:                             # "authentication / STARTTLS required"
                raise MailerError(f"SMTP server {self._where()} takes no mail on this connection "
                                  f"({_reply(code, answer)}); check [sending.smtp] security and username")
            if to.envelope_from:
                raise MailerError(f"SMTP server refused the envelope sender {to.envelope_from} "
                                  f"({_reply(code, answer)}); check [mailbox].return_path: the relay must "
                                  "accept its domain (and + addresses) as a sender")
            raise MailerError(f"SMTP server refused the sender {self.origin.addr_spec} ({_reply(code, answer)}); "
                              "check [sending].from")
        code, answer = _ask(connection.rcpt, to.email)
        if code not in (250, 251):
            if code // 100 == 4:
                return self._later(connection, to, "RCPT TO", code, answer)
            self._reset(connection)
            return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=_reply(code, answer))
        if not in_flight([to.delivery_id]):            # taken by another sender while this one stalled
            self._reset(connection)
            return None
        return self._data(connection, to, data, message_id)

    def _later(self, connection: smtplib.SMTP, to: Recipient, command: str, code: int,
               answer: bytes) -> Outcome:
        """A 4xx before DATA: 421 closes the connection (reconnect, same message);
        any other defers this message and keeps the connection for the next."""
        if code == 421:
            raise _Dropped(f"{command}: {_reply(code, answer)}")
        self._reset(connection)
        return Outcome(to.delivery_id, DeliveryStatus.PENDING, error=f"{command}: {_reply(code, answer)}")

    def _data(self, connection: smtplib.SMTP, to: Recipient, data: bytes, message_id: str) -> Outcome:
        answer: bytes | str
        try:
            code, answer = connection.data(data)
        except smtplib.SMTPDataError as error:          # no 354 for DATA: the message did not go
            code, answer = error.smtp_code, error.smtp_error
            if code // 100 not in (4, 5):               # not even a proper answer: who knows
                self._drop()
                return Outcome(to.delivery_id, DeliveryStatus.UNKNOWN, error=f"DATA: {_reply(code, answer)}")
            if code != 421:
                self._reset(connection)
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            return Outcome(to.delivery_id, DeliveryStatus.UNKNOWN, error=f"connection lost during DATA: {error}")
        if code // 100 == 2:
            return Outcome(to.delivery_id, DeliveryStatus.ACCEPTED, message_id)
        if code == 421:                                 # the server is closing the connection
            self._drop()
        if code // 100 == 4:
            return Outcome(to.delivery_id, DeliveryStatus.PENDING, error=f"DATA: {_reply(code, answer)}")
        if code // 100 == 5:
            return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=f"DATA: {_reply(code, answer)}")
        self._drop()
        return Outcome(to.delivery_id, DeliveryStatus.UNKNOWN, error=f"DATA: {_reply(code, answer)}")

    def _reset(self, connection: smtplib.SMTP) -> None:
        """RSET after a refused step, so the connection serves the next message; a
        connection that cannot even do that is dropped (the next message reconnects)."""
        try:
            code, _ = connection.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except OSError:
                pass
            self.connection = None

    def _connect(self) -> smtplib.SMTP:
        if self.connection is not None:
            return self.connection
        config = self.settings
        connection: smtplib.SMTP | None = None
        try:
            if config.security == "tls":
                connection = smtplib.SMTP_SSL(config.host, config.port, timeout=self.timeout,
                                              context=self.context)
            else:
                connection = smtplib.SMTP(config.host, config.port, timeout=self.timeout)
                if config.security == "starttls":
                    self._starttls(connection)
            connection.ehlo_or_helo_if_needed()
            if config.username:
                self._login(connection)
        except MailerError:
            _close(connection)
            raise
        except ssl.SSLCertVerificationError as error:
            _close(connection)
            raise MailerError(f"the TLS certificate of SMTP server {self._where()} did not verify "
                              f"({error.verify_message}); if the relay's CA is not in the system's trust store, "
                              "set [sending.smtp].ca_file to its PEM file (verify = false skips the check, "
                              "on purpose only)") from None
        except ssl.SSLError as error:
            _close(connection)
            raise MailerError(f"TLS with SMTP server {self._where()} failed ({error.reason or error}); check "
                              "[sending.smtp] port and security (465: tls, 587: starttls)") from None
        except (OSError, smtplib.SMTPException) as error:
            _close(connection)
            raise MailerError(f"SMTP server {self._where()} is not reachable ({error}); "
                              "check [sending.smtp] host, port and security, then run again to resume") from None
        self.connection = connection
        return connection

    def _starttls(self, connection: smtplib.SMTP) -> None:
        try:
            connection.starttls(context=self.context)
        except smtplib.SMTPNotSupportedError:
            raise MailerError(f"SMTP server {self._where()} does not offer STARTTLS; check [sending.smtp] "
                              "port and security (465: tls, 587: starttls)") from None
        except smtplib.SMTPResponseException as error:
            raise MailerError(f"SMTP server {self._where()} refused STARTTLS "
                              f"({_reply(error.smtp_code, error.smtp_error)}); check [sending.smtp] "
                              "port and security") from None

    def _login(self, connection: smtplib.SMTP) -> None:
        config = self.settings
        try:
            connection.login(config.username, self.password)
        except smtplib.SMTPAuthenticationError as error:
            raise MailerError(f"SMTP login as {config.username} refused "
                              f"({_reply(error.smtp_code, error.smtp_error)}); check [sending.smtp].username "
                              f"and the password in {config.password_env}") from None
        except smtplib.SMTPNotSupportedError:
            raise MailerError(f"SMTP server {self._where()} offers no login (AUTH) on this connection; check "
                              "[sending.smtp].security (relays want starttls on 587 or tls on 465) "
                              "or leave [sending.smtp].username empty") from None
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPException as error:
            raise MailerError(f"SMTP login as {config.username} failed ({error}); check "
                              "[sending.smtp].username") from None

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def probe(self) -> str:
        """Connect, STARTTLS and log in exactly as a send does, send nothing, and say how it
        went (MailerError with the fix when it does not)."""
        connection = self._connect()
        secure = isinstance(connection, smtplib.SMTP_SSL) or self.settings.security == "starttls"
        said = [f"{self._where()} answered", "TLS verified" if secure and self.settings.verify else
                "TLS not verified" if secure else "no TLS"]
        said.append(f"logged in as {self.settings.username}" if self.settings.username else "no login")
        self.close()
        return ", ".join(said)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()


def check_relay(settings: SendSettings, env: Mapping[str, str], timeout: float) -> str:
    """For the doctor: the relay reached as a send reaches it (TLS, login), nothing sent;
    MailerError for a login the network could read or TLS that believes anyone."""
    smtp = settings.sending.smtp
    if smtp.username and smtp.security == "none":
        raise MailerError(f"[sending.smtp] logs in as {smtp.username} without TLS: the password would cross the "
                          'network in the clear; set [sending.smtp] security = "starttls" (port 587) or "tls" '
                          "(port 465)")
    if smtp.security != "none" and not smtp.verify:
        raise MailerError("[sending.smtp].verify is false: whoever answers is believed to be the relay; remove "
                          "verify = false (give ca_file for a private CA)")
    return SmtpMailer(settings, timeout=timeout).probe()


def tls_context(settings: SendSettings) -> ssl.SSLContext:
    """Verified TLS: the CA in [sending.smtp].ca_file, or the system's trust store;
    unverified only when [sending.smtp].verify is false, and said so."""
    config = settings.sending.smtp
    ca_file = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
        raise MailerError(f"[sending.smtp].ca_file {ca_file}: cannot be read as PEM CA certificates "
                          f"({reason})") from None
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        log.warning("[sending.smtp].verify is false: the TLS certificate of %s:%s is not checked, so anyone "
                    "on the way can read or change the mail and the password", config.host, config.port)
    return context


def _ask(command: Callable[..., tuple[int, bytes]], *args: object) -> tuple[int, bytes]:
    """One SMTP command before DATA; a lost connection means: reconnect and try again."""
    try:
        return command(*args)
    except smtplib.SMTPServerDisconnected as error:
        raise _Dropped(str(error) or "disconnected") from None
    except OSError as error:
        raise _Dropped(str(error) or type(error).__name__) from None


def _reply(code: int, answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    return f"{code} {' '.join(text.split())}"


def _close(connection: smtplib.SMTP | None) -> None:
    if connection is not None:
        try:
            connection.close()
        except OSError:
            pass


register(Backend("smtp", SmtpMailer, smtputf8=True, workers=lambda sending: sending.smtp.connections,
                 relay=Relay(check_relay, host=lambda sending: sending.smtp.host), bounce_mailbox=True))
