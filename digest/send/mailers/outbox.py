"""The outbox: one .eml file per message, in a folder per edition. No account needed,
and nobody gets anything: the demo, tests, a look at the messages before going live."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ...backends import Backend, register
from ...config import SendSettings
from ...models import DeliveryStatus, Mail, Outcome
from ..message import HeaderInjection, Recipient, sender, wire
from . import MailerError, MarkInFlight


class OutboxMailer:
    batch_size = 200
    record_each = False

    def __init__(self, settings: SendSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.root = settings.outbox_dir
        self.origin = sender(settings)
        self.clock = clock

    def send(self, edition: Mail, recipients: list[Recipient], in_flight: MarkInFlight,
             folder: str) -> Iterator[Outcome]:
        target = self.root / folder
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise MailerError(f"cannot create {target} ({error.strerror}); check [sending.outbox].dir") from None
        going = set(in_flight([r.delivery_id for r in recipients]))
        recipients = [r for r in recipients if r.delivery_id in going]
        for number, to in enumerate(recipients):
            try:
                yield self._write(edition, to, target)
            except OSError as error:
                raise MailerError(f"cannot write to {target} ({error.strerror}); free some space or change "
                                  "[sending.outbox].dir, then run again to resume",
                                  [r.delivery_id for r in recipients[number:]]) from None

    def _write(self, edition: Mail, to: Recipient, target: Path) -> Outcome:
        path = target / f"{to.delivery_id:08d}.eml"
        if path.exists():          # written before a crash: it went
            return Outcome(to.delivery_id, DeliveryStatus.ACCEPTED, path.name)
        try:
            data, message_id = wire(edition, self.origin, to, self.clock())
        except HeaderInjection as error:
            return Outcome(to.delivery_id, DeliveryStatus.REFUSED, error=str(error))
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, path)
        return Outcome(to.delivery_id, DeliveryStatus.ACCEPTED, message_id)

    def close(self) -> None:
        return None


register(Backend("outbox", OutboxMailer, real=False, smtputf8=True))
