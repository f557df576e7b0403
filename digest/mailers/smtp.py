"""SMTP: one connection reused for many messages, reopened if the server drops it."""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from ..config import Settings
from ..message import Recipient, sender, wire
from ..models import DeliveryStatus, Edition, Outcome
from . import MailerError, Sending

log = logging.getLogger(__name__)


class SmtpMailer:
    batch_size = 100
    record_each = True      # each outcome committed at once: a crash leaves at most one unknown

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings.sending.smtp
        self.origin = sender(settings)
        self.clock = clock
        self.password = os.environ.get(self.settings.password_env, "")
        if self.settings.username and not self.password:
            raise MailerError(f"{self.settings.password_env} is not set; export the SMTP password "
                              "for [sending.smtp].username")
        self.connection: smtplib.SMTP | None = None

    def send(self, edition: Edition, recipients: list[Recipient], sending: Sending,
             folder: str) -> Iterator[Outcome]:
        for number, to in enumerate(recipients):
            try:
                yield self._one(edition, to, sending)
            except MailerError as error:
                error.unsent = [to.delivery_id, *(r.delivery_id for r in recipients[number + 1:])]
                raise

    def _one(self, edition: Edition, to: Recipient, sending: Sending) -> Outcome:
        data, message_id = wire(edition, self.origin, to, self.clock())
        for attempt in (1, 2):
            connection = self._connect()
            try:
                refused = self._envelope(connection, to)
                if refused:
                    return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=refused)
                sending([to.delivery_id])
                return self._data(connection, to, data, message_id)
            except (smtplib.SMTPServerDisconnected, ConnectionError) as error:
                self.connection = None
                if attempt == 2:
                    raise MailerError(f"SMTP server {self._where()} keeps dropping the connection ({error}); "
                                      "check it, then run again to resume") from None
                log.info("SMTP connection dropped before the message; reconnecting")
        raise AssertionError("unreachable")

    def _envelope(self, connection: smtplib.SMTP, to: Recipient) -> str | None:
        code, answer = connection.mail(self.origin.addr_spec)
        if code != 250:
            connection.rset()
            raise MailerError(f"SMTP server refused the sender {self.origin.addr_spec} ({code} {answer!r}); "
                              "check [sending].from")
        code, answer = connection.rcpt(to.email)
        if code not in (250, 251):
            connection.rset()
            return f"{code} {answer.decode('utf-8', 'replace')}"
        return None

    def _data(self, connection: smtplib.SMTP, to: Recipient, data: bytes, message_id: str) -> Outcome:
        try:
            code, answer = connection.data(data)
        except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as error:
            self.connection = None
            return Outcome(to.delivery_id, DeliveryStatus.UNKNOWN, error=f"connection lost during DATA: {error}")
        except smtplib.SMTPDataError as error:
            return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=f"{error.smtp_code} {error.smtp_error!r}")
        if code != 250:
            return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=f"{code} {answer!r}")
        return Outcome(to.delivery_id, DeliveryStatus.ACCEPTED, message_id)

    def _connect(self) -> smtplib.SMTP:
        if self.connection is not None:
            return self.connection
        config = self.settings
        try:
            if config.security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                                            context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
                if config.security == "starttls":
                    connection.starttls(context=ssl.create_default_context())
            connection.ehlo_or_helo_if_needed()
            if config.username:
                connection.login(config.username, self.password)
        except smtplib.SMTPAuthenticationError as error:
            raise MailerError(f"SMTP login as {config.username} refused ({error.smtp_code}); "
                              f"check [sending.smtp].username and {config.password_env}") from None
        except (OSError, smtplib.SMTPException) as error:
            raise MailerError(f"SMTP server {self._where()} is not reachable ({error}); "
                              "check [sending.smtp] host, port and security, then run again to resume") from None
        self.connection = connection
        return connection

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.connection = None
